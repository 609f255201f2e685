"""mask_analysis.dropped_values with a mask that drops nothing (found by the chunked-form work)."""
import torch

from spikec.passes.mask_analysis import dropped_values


def test_scalar_fill_with_nothing_dropped_gives_no_values():
    assert dropped_values(torch.tensor(0.0), torch.ones(4, 4, dtype=torch.bool)).numel() == 0
    assert dropped_values(torch.tensor(-1.0), torch.eye(3, dtype=torch.bool)).tolist() == [-1.0]
