"""The grouped GEMM kernel of the torch target (tokens sorted by expert, padded to a
block) against naive loops written here, its gradients against the IR reference, and the
torch target's MoE rules against the interpreter (fused and partitioned graphs).
Tolerances: relative error <= 1e-6 (fp32 forward), 1e-5 (gradients)."""
import pytest
import torch

import spikec
from spikec import ir
from spikec.codegen import get_target
from spikec.codegen.torch.kernels.grouped_gemm import (align_block, grouped_matmul, grouped_mm, grouped_swiglu,
                                                       moe_forward)
from spikec.frontend import from_torch
from spikec.ir.ops_moe import grouped_matmul_reference, moe_reference
from spikec.models.moe import SparseMoE
from spikec.runtime.distributed import simulate

TOL = 1e-6


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.parametrize("block", [1, 3, 16])
def test_align_block_layout(block):
    groups = torch.tensor([2, 0, 2, 1, 0, 2, 2, 4, 0])        # group 3 is empty
    plan = align_block(groups, 5, block)
    R = groups.numel()
    counts = torch.bincount(groups, minlength=5).tolist()
    pos = 0
    for g in range(5):
        seg = plan.sorted_rows[plan.offsets[g]:plan.offsets[g + 1]].tolist()
        assert plan.offsets[g] == pos and len(seg) % block == 0
        assert seg[:counts[g]] == [r for r in range(R) if groups[r] == g]     # its rows, in order
        assert all(s == R for s in seg[counts[g]:]) and len(seg) - counts[g] < block   # then padding
        assert plan.block_group[plan.offsets[g] // block:plan.offsets[g + 1] // block].tolist() == \
            [g] * (len(seg) // block)
        pos += len(seg)
    assert sorted(plan.sorted_rows[plan.sorted_rows < R].tolist()) == list(range(R))   # dropless
    assert torch.equal(plan.sorted_rows[plan.position], torch.arange(R))


@pytest.mark.parametrize("block", [1, 4, 16])
def test_grouped_mm_and_swiglu_against_row_loops(block):
    g = torch.Generator().manual_seed(0)
    groups = torch.randint(0, 6, (41,), generator=g)
    groups[groups == 5] = 4                                    # one empty group
    x, w = torch.randn(41, 12, generator=g), torch.randn(6, 7, 12, generator=g)
    plan = align_block(groups, 6, block)
    assert rel(grouped_mm(x, plan, w), torch.stack([w[gi] @ x[r] for r, gi in enumerate(groups.tolist())])) <= TOL
    wg, wu = torch.randn(6, 9, 12, generator=g), torch.randn(6, 9, 12, generator=g)
    wd = torch.randn(6, 12, 9, generator=g)
    want = torch.stack([wd[gi] @ (torch.nn.functional.silu(wg[gi] @ x[r]) * (wu[gi] @ x[r]))
                        for r, gi in enumerate(groups.tolist())])
    assert rel(grouped_swiglu(x, plan, wg, wu, wd), want) <= TOL
    sizes = torch.tensor([[3, 0, 2, 5, 1, 0], [4, 4, 0, 0, 2, 1]])
    xs = torch.randn(int(sizes.sum()), 12, generator=g)
    assert rel(grouped_matmul(xs, sizes, w, block), grouped_matmul_reference(xs, sizes, w)) <= TOL


def moe_args(E=5, D=16, F=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(E, D), (E, F, D), (E, F, D), (E, D, F), (8, D), (8, D), (D, 8)]
    return [torch.randn(*s, generator=g) * 0.3 for s in shapes]


@pytest.mark.parametrize("block", [1, 16])
@pytest.mark.parametrize("top_k,activation,renormalize", [(2, "softmax", False), (1, "sigmoid", False),
                                                          (3, "sigmoid", True)])
def test_moe_forward_and_gradients_match_the_reference(block, top_k, activation, renormalize):
    args = [a.requires_grad_() for a in moe_args()]
    x = torch.randn(2, 13, 16, requires_grad=True)
    kw = dict(top_k=top_k, activation=activation, renormalize=renormalize)
    got = moe_forward(x, *args, block=block, **kw)
    want = moe_reference(x, *args, **kw)
    assert rel(got, want) <= TOL
    w = torch.randn(want.shape, generator=torch.Generator().manual_seed(1))
    g_got = torch.autograd.grad((got * w).sum(), [x, *args])
    g_want = torch.autograd.grad((want * w).sum(), [x, *args])
    for a, b in zip(g_got, g_want):
        assert rel(a, b) <= 1e-5


@pytest.fixture(scope="module")
def layer_graph():
    torch.manual_seed(0)
    layer = SparseMoE(16, 24, 4, 2, 12).eval()
    g = from_torch(layer, (torch.randn(1, 9, 16),), dynamic={"T": (2, 4096)})
    return layer, spikec.passes.run(g, "default,fuse-moe")


def test_torch_target_moe_node(layer_graph):
    layer, fused = layer_graph
    x = torch.randn(1, 21, 16)
    mod = get_target("torch").lower(fused)
    assert "moe_forward(" in "\n".join(mod.sources().values())
    assert rel(mod.run(x)[0], ir.interpret(fused, x)) <= TOL


def test_torch_target_partitioned_graph_on_two_ranks(layer_graph):
    layer, fused = layer_graph
    g = spikec.passes.run(fused, "partition-moe{devices=2,capacity_factor=1.25}")
    mod = get_target("torch").lower(g)
    src = "\n".join(mod.sources().values())
    for op in ("moe_route(", "moe_permute(", "all_to_all(", "grouped_matmul(", "moe_combine(", "shard("):
        assert op in src
    xs = [torch.randn(1, 7 + 5 * r, 16, generator=torch.Generator().manual_seed(r)) for r in range(2)]
    got = simulate(lambda r: mod.run(xs[r])[0], 2)
    want = simulate(lambda r: ir.interpret(g, xs[r]), 2)
    for a, b in zip(got, want):
        assert rel(a, b) <= TOL
