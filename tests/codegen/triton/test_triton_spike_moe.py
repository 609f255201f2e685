"""The Triton spike-encode and grouped-GEMM kernels against the IR's reference
implementations (spikec.ir.ops_spike / ops_moe) and plain torch loops, in
Triton's interpreter on CPU tensors when no GPU is present."""
from __future__ import annotations

import pytest
import torch

from spikec.codegen.triton import mode
from spikec.codegen.triton.kernels.moe.api import align_by_expert, align_segments, grouped_gemm
from spikec.codegen.triton.kernels.spike.api import spike_encode
from spikec.ir.ops_moe import grouped_matmul_reference
from spikec.ir.ops_spike import spike_encode_reference

DEV = mode.device()


@pytest.mark.parametrize("shape,axis,k", [((3, 5, 64), -1, 3.0), ((4, 40, 6), 1, 2.0), ((2, 1500), -1, 3.0)])
def test_spike_encode_is_exact_on_dyadic_inputs(shape, axis, k):
    """Multiples of 1/16: every sum is exact in fp32, so the threshold and the
    counts must equal the reference bit for bit (rounding included)."""
    x = (torch.randint(-40, 41, shape, generator=torch.Generator().manual_seed(0)) / 16.0).to(DEV)
    counts, v_th = spike_encode(x, k, axis)
    c_ref, v_ref = spike_encode_reference(x, k, axis)
    assert counts.dtype == torch.int32 and v_th.shape == v_ref.shape
    assert torch.equal(counts, c_ref)
    assert torch.equal(v_th, v_ref)


def test_spike_encode_rounds_half_to_even_and_clamps_the_threshold():
    # mean |x| = 1.125, k = 1.125 -> v_th = 1: the counts are round-half-even of x
    x = torch.tensor([[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.0, 0.0], [0.0] * 8]).to(DEV)
    counts, v_th = spike_encode(x, 1.125)
    assert counts[0].tolist() == [0, 2, 2, 0, -2, -2, 0, 0]
    assert v_th[0].item() == 1.0
    assert v_th[1].item() == pytest.approx(1e-5) and counts[1].abs().sum() == 0    # all-zero token: clamped


def test_spike_encode_random_inputs_agree_up_to_threshold_rounding():
    x = torch.randn(6, 96, generator=torch.Generator().manual_seed(1)).to(DEV)
    counts, v_th = spike_encode(x, 3.0)
    c_ref, v_ref = spike_encode_reference(x, 3.0)
    torch.testing.assert_close(v_th, v_ref, rtol=1e-6, atol=0)
    y = x / v_ref
    near_tie = ((y - y.floor()) - 0.5).abs() < 1e-4           # a 1-ulp threshold difference may flip these
    assert torch.equal(counts[~near_tie], c_ref[~near_tie])


def test_grouped_gemm_matches_grouped_matmul_reference():
    g = torch.Generator().manual_seed(2)
    sizes = torch.tensor([[5, 0, 19], [2, 7, 0]])      # segments of 2 rows of 3 groups; empty groups too
    x = torch.randn(int(sizes.sum()), 40, generator=g).to(DEV)
    w = torch.randn(3, 24, 40, generator=g).to(DEV)
    ids, blocks = align_segments(sizes, 3)
    assert ids.numel() % 16 == 0 and (ids >= 0).sum() == x.shape[0]
    y = grouped_gemm(x, w, ids.to(DEV), blocks.to(DEV), out_rows=x.shape[0])
    torch.testing.assert_close(y, grouped_matmul_reference(x, sizes, w), atol=1e-4, rtol=1e-4)


def test_grouped_gemm_over_expert_slots_with_routing_weights():
    g = torch.Generator().manual_seed(3)
    N, k, E = 9, 2, 4
    x = torch.randn(N, 32, generator=g).to(DEV)
    w = torch.randn(E, 48, 32, generator=g).to(DEV)
    experts = torch.stack([torch.randperm(E, generator=g)[:k] for _ in range(N)]).to(DEV)
    weights = torch.rand(N, k, generator=g).to(DEV)
    ids, blocks = align_by_expert(experts, E)
    y = grouped_gemm(x, w, ids, blocks, out_rows=N * k, row_div=k, row_weight=weights.reshape(-1))
    want = torch.stack([weights[n, j] * (x[n] @ w[experts[n, j]].t()) for n in range(N) for j in range(k)])
    torch.testing.assert_close(y, want, atol=1e-4, rtol=1e-4)
