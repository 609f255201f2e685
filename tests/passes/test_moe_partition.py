"""partition-moe: the expert-parallel program for N = 1, 2, 4 devices, run with N
simulated ranks (threads, one per rank, each with its own tokens and length).

Dropless: every rank's output equals the unpartitioned fused graph on its tokens
(relative error <= 1e-6, fp32; the sums run in another order). With a capacity factor:
exactly the tokens that lost a slot differ, and they equal a per-token float64 oracle
that leaves the dropped slots out (<= 1e-6); the dropped count matches an
independent count. Also: placement tables, replication, load statistics, errors."""
import pytest
import torch
import torch.nn.functional as F

import spikec
from spikec import ir
from spikec.frontend import from_torch
from spikec.ir.ops_moe import record_moe_load
from spikec.models.moe import SparseMoE
from spikec.passes import PassError, PipelineError
from spikec.passes.moe_placement import make_placement
from spikec.runtime.distributed import simulate

TOL = 1e-6
E, K, D = 4, 2, 16


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.fixture(scope="module")
def layer_and_graph():
    torch.manual_seed(0)
    layer = SparseMoE(D, 24, E, K, 12).eval()
    g = from_torch(layer, (torch.randn(1, 9, D),), dynamic={"T": (2, 4096)})
    return layer, spikec.passes.run(g, "default,fuse-moe")


def rank_inputs(n):
    return [torch.randn(1, 5 + 4 * r, D, generator=torch.Generator().manual_seed(10 + r)) for r in range(n)]


def run_ranks(graph, xs):
    with record_moe_load() as load:
        outs = simulate(lambda r: ir.interpret(graph, xs[r]), len(xs))
    return outs, sorted(load, key=lambda rec: rec["rank"])


def oracle(layer, x, capacity=None):
    """Per token in float64; with `capacity`, slots beyond an expert's capacity (first
    choices first, then tokens in order) contribute nothing. Returns (y, dropped mask [N, k])."""
    h = x.double().reshape(-1, D)
    probs = (h @ layer.gate.weight.double().t()).softmax(-1)
    w, idx = probs.topk(K)
    dropped = torch.zeros(h.shape[0], K, dtype=torch.bool)
    if capacity is not None:
        used = [0] * E
        for j in range(K):
            for n in range(h.shape[0]):
                dropped[n, j] = used[int(idx[n, j])] >= capacity
                used[int(idx[n, j])] += 1

    def ffn(m, v):
        return m.down_proj.weight.double() @ (F.silu(m.gate_proj.weight.double() @ v) * (m.up_proj.weight.double() @ v))

    ys = []
    for n in range(h.shape[0]):
        y = ffn(layer.shared_expert, h[n])
        for j in range(K):
            if not dropped[n, j]:
                y = y + w[n, j] * ffn(layer.experts[int(idx[n, j])], h[n])
        ys.append(y)
    return torch.stack(ys).reshape(x.shape), dropped


@pytest.mark.parametrize("devices", [1, 2, 4])
def test_dropless_equals_unpartitioned(layer_and_graph, devices):
    layer, fused = layer_and_graph
    g = spikec.passes.run(fused, f"partition-moe{{devices={devices}}}")
    ops = g.op_counts()
    assert "moe" not in ops and ops["all_to_all"] == 2 and ops["grouped_matmul"] == 3 and ops["shard"] == 3
    xs = rank_inputs(devices)
    outs, load = run_ranks(g, xs)
    for r, (x, y) in enumerate(zip(xs, outs)):
        assert rel(y, ir.interpret(fused, x)) <= TOL, r
        assert rel(y, oracle(layer, x)[0]) <= TOL, r
    routing = [layer.route(x.reshape(-1, D))[2] for x in xs]
    assert [rec["dropped"] for rec in load] == [0] * devices
    assert [rec["expert_counts"] for rec in load] == [torch.bincount(i.reshape(-1), minlength=E).tolist()
                                                      for i in routing]


@pytest.mark.parametrize("devices", [2, 4])
def test_capacity_factor_drops_only_overflow(layer_and_graph, devices):
    layer, fused = layer_and_graph
    g = spikec.passes.run(fused, f"partition-moe{{devices={devices},capacity_factor=1.0}}")
    xs = rank_inputs(devices)
    outs, load = run_ranks(g, xs)
    total_dropped = 0
    for x, y, rec in zip(xs, outs, load):
        n = x.shape[1]
        want, dropped = oracle(layer, x, capacity=-(-n * K // E))       # ceil(1.0 * N*k / E)
        full = ir.interpret(fused, x)
        hit = dropped.any(-1)
        assert rec["dropped"] == int(dropped.sum())
        assert rel(y, want) <= TOL
        assert (~hit).any() and rel(y[0, ~hit], full[0, ~hit]) <= TOL      # untouched tokens: as before
        if hit.any():
            assert rel(y[0, hit], full[0, hit]) > 1e-3                   # tokens that lost a slot: not
        total_dropped += int(dropped.sum())
    assert total_dropped > 0      # the inputs do overflow some expert, so the test can see drops


@pytest.mark.parametrize("opts", ["placement=round_robin", "placement=3+0|1+2", "replicate=1|2",
                                  "placement=0+1+2+3|3,replicate=0"])
def test_placements_keep_the_output(layer_and_graph, opts):
    layer, fused = layer_and_graph
    g = spikec.passes.run(fused, f"partition-moe{{devices=2,{opts}}}")
    xs = rank_inputs(2)
    outs, _ = run_ranks(g, xs)
    for x, y in zip(xs, outs):
        assert rel(y, ir.interpret(fused, x)) <= TOL


def test_placement_tables():
    p = make_placement(4, 2, "contiguous", [3])
    assert p.slots == (0, 1, 3, 2, 3, -1) and p.local_slots == 3
    assert p.expert_map(0) == [0, 1, -1, 2] and p.expert_map(1) == [-1, -1, 0, 1]
    assert p.replicas(3) == [(0, 2), (1, 1)]
    assert make_placement(5, 2, "round_robin").slots == (0, 2, 4, 1, 3, -1)
    assert make_placement(5, 2).slots == (0, 1, 2, 3, 4, -1)
    assert "device 1: experts [2, 3]" in p.table()
    with pytest.raises(PipelineError, match="no device"):
        make_placement(4, 2, "0+1|2")
    with pytest.raises(PipelineError, match="names 3 device"):
        make_placement(4, 2, "0|1|2+3")


def test_partitioned_weights_are_stacked_by_device(layer_and_graph):
    layer, fused = layer_and_graph
    g = spikec.passes.run(fused, "partition-moe{devices=2,placement=1+3|0+2}")
    stacked = [g.constants[n.args["name"]] for n in g.nodes
               if n.op == "constant" and "w_up.by_device" in n.args["name"]]
    assert len(stacked) == 1
    want = torch.stack([layer.experts[e].up_proj.weight for e in (1, 3, 0, 2)])
    assert torch.equal(stacked[0], want)
    assert not any("experts.w_up" == k.split(".", 1)[-1] for k in g.constants)   # the unsharded stack is gone


def test_errors(layer_and_graph, tmp_path):
    _, fused = layer_and_graph
    with pytest.raises(PassError, match="capacity_factor must be positive"):
        spikec.passes.PassManager("partition-moe{devices=2,capacity_factor=-1}", repro_dir=str(tmp_path)).run(fused)
    g = spikec.passes.run(fused, "partition-moe{devices=2}")
    with pytest.raises(ir.InterpretError, match="world size 1"):
        ir.interpret(g, torch.randn(1, 5, D))
    with pytest.raises(ir.InterpretError, match="world size 4"):
        simulate(lambda r: ir.interpret(g, torch.randn(1, 5, D)), 4)
