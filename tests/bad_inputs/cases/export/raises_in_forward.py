"""A forward that raises: the error names the user's line, not torch's internals."""
import torch


class Broken(torch.nn.Module):
    def forward(self, x):
        raise ValueError("this model is not finished")


def make():
    return Broken(), (torch.randn(2, 8),)
