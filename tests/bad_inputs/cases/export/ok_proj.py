"""A valid model: the cases around it get the flags or the factory name wrong."""
import torch


class Proj(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(16, 16)

    def forward(self, x):
        return self.proj(x).relu()


def make():
    return Proj(), (torch.randn(2, 8, 16),)
