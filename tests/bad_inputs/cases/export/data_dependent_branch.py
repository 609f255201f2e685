"""A branch on a tensor's value: torch.export cannot trace it (the branch is taken at run time)."""
import torch


class Gate(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


def make():
    return Gate(), (torch.randn(2, 8),)
