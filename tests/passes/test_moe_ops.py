"""The MoE IR ops' reference implementations against naive per-token / per-row loops
written here (float64 where it matters), and the op declarations (types, text form).
Tolerances: float64 oracles, relative error <= 1e-6 on fp32 op outputs unless stated."""
import math

import pytest
import torch
import torch.nn.functional as F

from spikec import ir
from spikec.ir import TensorType, sym
from spikec.ir.ops_moe import (capacity_keep, capacity_of, combine_reference, grouped_matmul_reference,
                               moe_reference, permute_reference, record_moe_load, route_reference, shard_reference)
from spikec.models.moe import SparseMoE

TOL = 1e-6


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def naive_moe(x, rw, wg, wu, wd, sg=None, su=None, sd=None, *, top_k, activation="softmax", renormalize=False):
    """Token by token in float64: y = sum over the top-k experts of p_i E_i(x) (+ shared)."""
    out = []
    for h in x.double().reshape(-1, x.shape[-1]):
        logits = rw.double() @ h
        p = logits.softmax(-1) if activation == "softmax" else logits.sigmoid()
        w, idx = p.topk(top_k)
        if renormalize:
            w = w / w.sum()
        y = torch.zeros_like(h)
        for j in range(top_k):
            e = int(idx[j])
            y += w[j] * (wd[e].double() @ (F.silu(wg[e].double() @ h) * (wu[e].double() @ h)))
        if sg is not None:
            y += sd.double() @ (F.silu(sg.double() @ h) * (su.double() @ h))
        out.append(y)
    return torch.stack(out).reshape(x.shape)


def random_moe(E=5, D=16, Fd=24, Fs=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    return [r(E, D), r(E, Fd, D), r(E, Fd, D), r(E, D, Fd), r(Fs, D), r(Fs, D), r(D, Fs)]


@pytest.mark.parametrize("activation,renormalize,top_k", [("softmax", False, 2), ("sigmoid", True, 2),
                                                          ("softmax", True, 1), ("sigmoid", False, 3)])
def test_moe_reference_matches_per_token_oracle(activation, renormalize, top_k):
    w = random_moe()
    x = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(1))
    got = moe_reference(x, *w, top_k=top_k, activation=activation, renormalize=renormalize)
    want = naive_moe(x, *w, top_k=top_k, activation=activation, renormalize=renormalize)
    assert got.shape == x.shape and rel(got, want) <= TOL
    no_shared = moe_reference(x, *w[:4], top_k=top_k, activation=activation, renormalize=renormalize)
    assert rel(no_shared, naive_moe(x, *w[:4], top_k=top_k, activation=activation, renormalize=renormalize)) <= TOL


def test_moe_reference_matches_the_zoo_layer():
    torch.manual_seed(0)
    layer = SparseMoE(16, 24, 4, 2, 12).eval()
    stacked = [torch.stack([getattr(e, p).weight for e in layer.experts])
               for p in ("gate_proj", "up_proj", "down_proj")]
    s = layer.shared_expert
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        got = moe_reference(x, layer.gate.weight, *stacked, s.gate_proj.weight, s.up_proj.weight, s.down_proj.weight,
                            top_k=2)
        assert rel(got, layer(x)) <= 1e-6


def test_route_is_fp32_topk():
    w = random_moe()
    x = torch.randn(9, 16, dtype=torch.float64)
    weights, experts = route_reference(x, w[0].double(), top_k=2, activation="softmax", renormalize=True)
    assert weights.dtype == torch.float64 and experts.dtype == torch.int64 and weights.shape == (9, 2)
    assert torch.allclose(weights.sum(-1), torch.ones(9, dtype=torch.float64))
    assert torch.equal(experts, (x @ w[0].double().t()).topk(2).indices)


def test_grouped_matmul_reference_against_a_row_loop():
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([[3, 0, 2], [1, 4, 0]])       # segments (peer, group), row-major
    x, w = torch.randn(10, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    groups = [0] * 3 + [2] * 2 + [0] * 1 + [1] * 4
    want = torch.stack([w[gi] @ x[r] for r, gi in enumerate(groups)])
    assert rel(grouped_matmul_reference(x, sizes, w), want) <= TOL
    with pytest.raises(ir.InterpretError, match="sum to 9"):
        grouped_matmul_reference(x, torch.tensor([[3, 0, 2], [1, 3, 0]]), w)


def naive_capacity(experts, E, C):
    """Keep slot (n, j) if fewer than C slots of choice rank < j, or of rank j and token < n, went to its expert."""
    N, k = experts.shape
    keep = torch.zeros(N, k, dtype=torch.bool)
    used = [0] * E
    for j in range(k):
        for n in range(N):
            e = int(experts[n, j])
            keep[n, j] = used[e] < C
            used[e] += 1
    return keep


def test_capacity_keeps_first_choices_first():
    experts = torch.randint(0, 4, (13, 2), generator=torch.Generator().manual_seed(3))
    for C in (0, 1, 3, 7, 100):
        assert torch.equal(capacity_keep(experts, 4, C), naive_capacity(experts, 4, C))
    assert capacity_of(26, 4, 1.0, 0) == 7 and capacity_of(26, 4, 1.25, 0) == math.ceil(1.25 * 26 / 4)
    assert capacity_of(4, 4, 1.0, 4) == 4


def test_permute_combine_round_trip_single_device():
    """devices=1: permute sorts the slots by expert; combining the rows back gives
    sum_j w_nj * x_n (an identity expert)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, generator=g)
    experts = torch.randint(0, 3, (7, 2), generator=g)
    weights = torch.rand(7, 2, generator=g)
    with record_moe_load() as rec:
        send, counts, order = permute_reference(x, experts, num_experts=3, devices=1, slots=[0, 1, 2], layer="L")
    assert counts.tolist() == [torch.bincount(experts.reshape(-1), minlength=3).tolist()]
    assert torch.equal(experts.reshape(-1)[order], experts.reshape(-1).sort(stable=True).values)
    assert torch.equal(send, x[order // 2])
    y = combine_reference(send, order, weights)
    assert rel(y, x * weights.sum(-1, keepdim=True)) <= TOL
    assert rec == [{"layer": "L", "rank": 0, "tokens": 7, "expert_counts": counts[0].tolist(), "dropped": 0}]


def test_permute_with_capacity_drops_and_pads():
    x = torch.arange(6.0)[:, None].repeat(1, 2)
    experts = torch.tensor([[0, 1], [0, 1], [0, 2], [1, 0], [0, 2], [2, 1]])
    with record_moe_load() as rec:
        send, counts, order = permute_reference(x, experts, num_experts=3, devices=1, slots=[0, 1, 2],
                                                capacity_factor=0.5)   # C = ceil(0.5 * 12 / 3) = 2
    keep = naive_capacity(experts, 3, 2).reshape(-1)
    # expert 0: first choices of tokens 0, 1, 2, 4 -> keeps 0, 1; its second choice (token 3) is late too
    assert rec[0]["dropped"] == int((~keep).sum()) == 6
    assert counts.tolist() == [[2, 2, 2]] and (order[6:] == -1).all() and not send[6:].any()
    assert sorted(order[:6].tolist()) == torch.nonzero(keep).reshape(-1).tolist()


def test_shard_and_world_size_errors():
    w = torch.arange(12.0).reshape(6, 2)
    assert torch.equal(shard_reference(w, devices=1), w)
    with pytest.raises(ir.InterpretError, match="world size 1"):
        shard_reference(w, devices=2)
    with pytest.raises(ir.InterpretError, match="does not split"):
        shard_reference(w, devices=4)


def test_op_types_and_text_form():
    T = sym("T")
    g = ir.Graph("moe")
    g.symbols["T"] = (1, 64)
    x = g.add_input(TensorType((T, 16), "f32"), "x")
    w = random_moe()
    vals = [g.add_constant(n, t) for n, t in zip(["r", "wg", "wu", "wd", "sg", "su", "sd"], w)]
    y = g.add_node("moe", {"x": x, "router_weight": vals[0], "w_gate": vals[1], "w_up": vals[2], "w_down": vals[3],
                           "shared_gate": vals[4], "shared_up": vals[5], "shared_down": vals[6], "top_k": 2,
                           "activation": "sigmoid", "renormalize": True}, [TensorType((T, 16), "f32")]).output
    g.set_outputs([y])
    ir.verify(g)
    text = str(g)
    assert 'activation="sigmoid"' in text and "renormalize=true" in text
    back = ir.parse(text, constants=g.constants)
    xs = torch.randn(11, 16)
    assert rel(ir.interpret(back, xs), naive_moe(xs, *w, top_k=2, activation="sigmoid", renormalize=True)) <= TOL
    infer = ir.get_op("moe_permute").infer
    types = infer(None, {"x": TensorType((T, 16), "f32"), "experts": TensorType((T, 2), "i64"), "devices": 2,
                         "slots": [0, 1, 2, 3, 4, -1]}, None)
    assert [str(t) for t in types] == ["f32[(2*T), 16]", "i64[2, 3]", "i64[(2*T)]"]
