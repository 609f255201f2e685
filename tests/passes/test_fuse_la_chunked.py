"""fuse-linear-attention on chunked forms: the zoo's chunk-mode spikingbrain and
spikingbrain_moe (symbolic chunk count), loops over chunks and gathered chunks
(la_chunk_modules.py), and their near misses.

Equality bound: interpret(fused) vs eager, max |diff| / max |eager| <= 1e-4."""
import pytest
import torch

import spikec.models as models
import spikec.passes as passes
from spikec.frontend import from_torch
from spikec.ir import interpret, sym, verify
from spikec.passes.fuse_linear_attention import trace_symbolic

from la_chunk_modules import ChunkGather, ChunkLoop

PIPE = "default,fuse-linear-attention,fuse-attention"
TOL = 1e-4
# what only the chunk computation uses: none of it may survive the fusion
CHUNK_OPS = ("constant_pad_nd", "index", "index_select", "cumsum", "sum", "einsum", "masked_fill")


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def la_nodes(g):
    return [n for n in g.nodes if n.op == "linear_attention"]


def chunk_leftovers(g, T):
    """Chunk-only ops, and slices / selects along an axis of length T (per chunk or per step)."""
    return [n.op for n in g.walk() if n.op in CHUNK_OPS or (
        n.op in ("slice", "select") and n.args["self"].type.shape[n.arg("dim")] == T)]


def has_chunk_count(g):
    """A value whose shape still mentions the chunk count (FloorDiv of T)."""
    return any("FloorDiv" in str(v.type) for v in g.values())


# -- the zoo, chunk mode, traced with a symbolic length -------------------------------------
@pytest.fixture(scope="module")
def spikingbrain_chunk():
    torch.manual_seed(0)
    m = models.create("spikingbrain", "tiny", attn_mode="chunk").eval()
    x = torch.randint(0, 256, (1, 16))
    traced = from_torch(m, (x,), dynamic={"T": (2, 4096)})
    pm = passes.PassManager(PIPE)
    g = pm.run(traced)
    return m, g, pm


def test_spikingbrain_chunk_one_node_per_layer(spikingbrain_chunk):
    m, g, pm = spikingbrain_chunk
    verify(g)
    c = m.config
    gla_layers = c.num_hidden_layers - len(c.attn_layers)
    nodes = la_nodes(g)
    assert len(nodes) == gla_layers
    for n in nodes:
        # GQA folded, 7B's low-rank per-channel gate, scale head_dim^-1/2 from the model's literal
        assert n.args["k"].type.shape[1] == c.num_key_value_heads
        assert n.args["gate_kind"] == "channel" and n.args["scale"] == c.head_dim ** -0.5
    assert not has_chunk_count(g) and chunk_leftovers(g, sym("T")) == []
    (rec,) = [r for r in pm.records if r.step == "fuse-linear-attention"]
    assert rec.stats["fused-chunked"] == gla_layers and rec.nodes_after < rec.nodes_before


@pytest.mark.parametrize("T", [2, 17, 64, 300])
def test_spikingbrain_chunk_equals_eager(spikingbrain_chunk, T):
    m, g, _ = spikingbrain_chunk
    x = torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(T))
    assert rel_err(interpret(g, x), m(x)) <= TOL


def test_spikingbrain_chunk_static_length():
    # `spikec inspect` traces at a fixed T=16, which equals the chunk size
    torch.manual_seed(1)
    m = models.create("spikingbrain", "tiny", attn_mode="chunk").eval()
    x = torch.randint(0, 256, (1, 16))
    g = passes.run(from_torch(m, (x,)), PIPE)
    assert len(la_nodes(g)) == m.config.num_hidden_layers - len(m.config.attn_layers)
    assert "cumsum" not in g.op_counts() and "constant_pad_nd" not in g.op_counts()
    assert rel_err(interpret(g, x), m(x)) <= TOL


def test_spikingbrain_moe_chunk_key_tied():
    torch.manual_seed(0)
    m = models.create("spikingbrain_moe", "tiny", attn_mode="chunk").eval()
    g = passes.run(from_torch(m, (torch.randint(0, 256, (1, 16)),), dynamic={"T": (2, 4096)}), PIPE)
    nodes = la_nodes(g)
    assert len(nodes) == m.config.num_hidden_layers          # one linear branch per layer
    # gate = logsigmoid(-x) with k = sigmoid(x): recognised as the key-tied decay 1 - k
    assert all(n.args["gate_kind"] == "key_tied" and n.args.get("gate") is None for n in nodes)
    assert not has_chunk_count(g) and "cumsum" not in g.op_counts()
    for T in (2, 23, 90):
        x = torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(T))
        assert rel_err(interpret(g, x), m(x)) <= TOL


# -- the test modules ---------------------------------------------------------------------
def fuse(m, *inputs, dynamic=None, pipeline="default,fuse-linear-attention"):
    g = passes.run(from_torch(m, inputs, dynamic=dynamic), pipeline)
    verify(g)
    return g


@pytest.mark.parametrize("gate,intra", [("none", "factorised"), ("scalar", "factorised"), ("channel", "factorised"),
                                        ("channel", "pairwise"), ("key_tied", "factorised"),
                                        ("key_tied", "pairwise")])
def test_chunk_loop_fused(gate, intra):
    torch.manual_seed(0)
    m = ChunkLoop(gate=gate, intra=intra).eval()
    x = torch.randn(2, 11, 16)                   # 3 chunks of 4, the last one short
    g = fuse(m, x)
    (n,) = la_nodes(g)
    assert n.arg("gate_kind") == gate and n.arg("scale") == 8 ** -0.5
    assert chunk_leftovers(g, 11) == [] and "cat" not in g.op_counts()
    assert rel_err(interpret(g, x), m(x)) <= TOL


def test_chunk_loop_initial_and_final_state():
    torch.manual_seed(0)
    m = ChunkLoop(final=True, init=True).eval()
    x, s0 = torch.randn(2, 10, 16), torch.randn(2, 2, 8, 8)
    g = fuse(m, x, s0)
    (n,) = la_nodes(g)
    assert n.args["output_final_state"] is True and n.args["initial_state"] is g.inputs[1]
    for got, want in zip(interpret(g, x, s0), m(x, s0)):
        assert rel_err(got, want) <= TOL


def test_chunk_loop_symbolic_length():
    # a loop over chunks unrolls at trace time; fused, two traces unify into one symbolic T
    torch.manual_seed(0)
    m = ChunkLoop(gate="channel").eval()
    g = trace_symbolic(m, lambda T: torch.randn(1, T, 16), lengths=(12, 13))
    assert len(la_nodes(g)) == 1 and "T" in g.symbols
    for T in (1, 5, 40):
        x = torch.randn(1, T, 16)
        assert rel_err(interpret(g, x), m(x)) <= TOL


def test_chunk_gather_dynamic_length():
    torch.manual_seed(0)
    m = ChunkGather().eval()
    g = fuse(m, torch.randn(2, 9, 16), dynamic={"T": (2, 512)})
    (n,) = la_nodes(g)
    assert n.args["gate_kind"] == "channel" and not has_chunk_count(g)
    for T in (2, 9, 33):
        x = torch.randn(2, T, 16)
        assert rel_err(interpret(g, x), m(x)) <= TOL


# -- near misses: not fused, and the graph still computes the same ----------------------------
FLAWS = ["noncausal", "strict", "anti_causal", "gate_on_v", "stale_state"]


def assert_not_fused(m, x, dynamic=None):
    before = passes.run(from_torch(m, (x,), dynamic=dynamic), "default")
    pm = passes.PassManager("fuse-linear-attention")
    g = pm.run(before)
    assert pm.records[0].stats["fused-chunked"] == 0
    # a chunk's causal intra part is a linear attention of its own (the quadratic matcher may
    # take it); nothing may span the sequence
    T = before.inputs[0].type.shape[1]
    assert all(n.args["q"].type.shape[2] != T for n in la_nodes(g))
    assert rel_err(interpret(g, x), m(x)) <= TOL


@pytest.mark.parametrize("flaw", FLAWS)
def test_chunk_loop_near_miss(flaw):
    torch.manual_seed(0)
    assert_not_fused(ChunkLoop(gate="channel", flaw=flaw).eval(), torch.randn(2, 11, 16))


@pytest.mark.parametrize("flaw", FLAWS)
def test_chunk_gather_near_miss(flaw):
    torch.manual_seed(0)
    assert_not_fused(ChunkGather(flaw=flaw).eval(), torch.randn(2, 9, 16), dynamic={"T": (2, 512)})
