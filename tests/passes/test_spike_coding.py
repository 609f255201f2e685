"""insert-spike-coding and decompose-spike-coding on traced models, against eager W8ASpike-style
hooks (tests/passes/spike_eager.py). Tolerances: 1e-5 absolute for the same arithmetic in a
different order (graph vs eager), 0 for the decomposition (the same torch ops)."""
from __future__ import annotations

import json

import pytest
import torch

import spikec.passes
from spikec import models as zoo
from spikec.frontend import from_torch
from spikec.ir import TensorType, interpret, parse, verify
from spikec.passes import PipelineError
from spikec.passes.spike_graph import spiked_projections
from spikec.passes.spike_targets import TargetSpec, select_projections
from spike_eager import TinyBlock, spike_hooks

DEFAULT = ["*.q_proj", "*.k_proj", "*.v_proj", "*.o_proj", "*.gk_proj.*", "*.gate_proj", "*.up_proj"]


@pytest.fixture(scope="module")
def block():
    torch.manual_seed(0)
    m = TinyBlock().eval()
    x = torch.randn(2, 5, 16)
    return m, x, from_torch(m, (x,))


def _eager(m, x, patterns, **kw):
    hs = spike_hooks(m, patterns, **kw)
    try:
        with torch.no_grad():
            return m(x)
    finally:
        for h in hs:
            h.remove()


@pytest.mark.parametrize("targets,patterns", [("default", DEFAULT), ("all", ["*"]),
                                              ("*.up_proj|*.o_proj", ["*.up_proj", "*.o_proj"])])
def test_activation_form_equals_eager_quantlinear(block, targets, patterns):
    m, x, g = block
    out = spikec.passes.run(g, f"insert-spike-coding{{targets={targets}}}")
    want = _eager(m, x, patterns)
    assert (interpret(out, x) - want).abs().max().item() < 1e-5
    with torch.no_grad():
        assert (m(x) - want).abs().max().item() > 1e-3          # the coding does change the output


def test_default_targets_skip_down_proj_and_lm_head(block):
    _, _, g = block
    names = [p.name for p in spiked_projections(spikec.passes.run(g, "insert-spike-coding"))]
    assert names == ["attn.q_proj", "attn.k_proj", "attn.o_proj", "mlp.gate_proj", "mlp.up_proj"]


def test_steps_clamp_and_k(block):
    m, x, g = block
    out = spikec.passes.run(g, "insert-spike-coding{coding=ternary,steps=2,k=4}")
    assert (interpret(out, x) - _eager(m, x, DEFAULT, k=4.0, clamp=(-2, 2))).abs().max().item() < 1e-5
    binary = spikec.passes.run(g, "insert-spike-coding{coding=binary,steps=5}")
    clamps = [n for n in binary.nodes if n.op == "clamp"]
    assert clamps and all((n.arg("min"), n.arg("max")) == (-2, 3) for n in clamps)


@pytest.mark.parametrize("coding", ["binary", "ternary", "bitwise"])
def test_event_form_equals_activation_form(block, coding):
    _, x, g = block
    act = interpret(spikec.passes.run(g, f"insert-spike-coding{{coding={coding},targets=all}}"), x)
    ev_graph = spikec.passes.run(g, f"insert-spike-coding{{coding={coding},targets=all,form=event}}")
    assert ev_graph.op_counts()["spike_linear"] == 7 and "linear" not in ev_graph.op_counts()
    assert (interpret(ev_graph, x) - act).abs().max().item() < 1e-4


@pytest.mark.parametrize("pipeline,tol", [("insert-spike-coding{targets=all,weight_int8=true,weight_group=8}", 0.0),
                                          # the event-driven sum accumulates in another order than the matmul
                                          ("insert-spike-coding{form=event,steps=3}", 1e-5)])
def test_decomposition_to_core_ops(block, pipeline, tol):
    _, x, g = block
    spiked = spikec.passes.run(g, pipeline)
    flat = spikec.passes.run(spiked, "decompose-spike-coding")
    ops = set(flat.op_counts())
    assert not ops & {"spike_encode", "straight_through", "int8_fake_quant", "spike_linear"}
    assert (interpret(flat, x) - interpret(spiked, x)).abs().max().item() <= tol


def test_weight_int8_matches_groupwise_quantised_weights(block):
    m, x, g = block
    out = spikec.passes.run(g, "insert-spike-coding{targets=*.up_proj,weight_int8=true,weight_group=4}")
    q = m.mlp["up_proj"].weight.detach().clone()
    w = q.view(q.shape[0], -1, 4)
    scale = w.abs().amax(-1, keepdim=True) / 127
    qw = ((w / scale).round().clamp(-128, 127) * scale).view_as(q)
    saved = m.mlp["up_proj"].weight.data.clone()
    m.mlp["up_proj"].weight.data.copy_(qw)
    try:
        want = _eager(m, x, ["*.up_proj"])
    finally:
        m.mlp["up_proj"].weight.data.copy_(saved)
    assert (interpret(out, x) - want).abs().max().item() < 1e-5


def test_calibration_file_sets_k_per_projection(block, tmp_path):
    m, x, g = block
    path = tmp_path / "calib.json"
    path.write_text(json.dumps({"k": {"attn.q_proj": 2.0, "mlp.up_proj": 5.0}}))
    out = spikec.passes.run(g, f"insert-spike-coding{{calibration={path}}}")
    ks = {p.name: p.encode.arg("k") for p in spiked_projections(out)}
    assert ks == {"attn.q_proj": 2.0, "attn.k_proj": 3.0, "attn.o_proj": 3.0, "mlp.gate_proj": 3.0, "mlp.up_proj": 5.0}
    # q and k read the same x with different k now: two encoders
    assert out.op_counts()["spike_encode"] == 5


def test_bad_options_are_pipeline_errors(block, tmp_path):
    _, _, g = block
    for bad, match in [("coding=quaternary", "unknown coding"), ("form=dense", "unknown form"), ("k=0", "positive"),
                       (f"calibration={tmp_path / 'missing.json'}", "cannot read"), ("targets=!*", "no target")]:
        with pytest.raises(spikec.passes.PassError) as e:
            spikec.passes.run(g, f"insert-spike-coding{{{bad}}}", repro_dir=str(tmp_path))
        assert isinstance(e.value.__cause__, PipelineError) and match in str(e.value.__cause__)


def test_targets_by_source_location(block):
    _, _, g = block
    lins = [n for n in g.nodes if n.op == "linear"]
    loc = str(lins[0].loc)
    assert select_projections(g, TargetSpec.parse(loc)) == [n for n in lins if str(n.loc) == loc]
    assert select_projections(g, "nothing*") == []


SWA_GRAPH = """
graph @main(%q: f32[1, 2, 6, 4], %k: f32[1, 1, 6, 4], %v: f32[1, 1, 6, 4]) -> (f32[1, 2, 6, 4]) {
  %o: f32[1, 2, 6, 4] = sliding_window_attention(%q, %k, %v, window=3, scale=0.5)
  return %o
}
"""


def test_kv_int8_and_swa_query():
    g = parse(SWA_GRAPH)
    out = spikec.passes.run(g, "insert-spike-coding{targets=none,kv_int8=true,swa_query=true}")
    verify(out)
    assert out.op_counts()["int8_fake_quant"] == 2 and out.op_counts()["spike_encode"] == 1
    torch.manual_seed(1)
    q, k, v = torch.randn(1, 2, 6, 4), torch.randn(1, 1, 6, 4), torch.randn(1, 1, 6, 4)

    def int8(t):                      # per token over head_dim, scale absmax / 127
        s = t.abs().amax(-1, keepdim=True) / 127
        return (t / s).round().clamp(-128, 127) * s

    from spike_eager import dynamic_spikes
    qs, kq, vq = dynamic_spikes(q, 3.0), int8(k).repeat(1, 2, 1, 1), int8(v).repeat(1, 2, 1, 1)
    mask = torch.ones(6, 6, dtype=torch.bool).tril() & ~torch.ones(6, 6, dtype=torch.bool).tril(-3)
    want = ((qs @ kq.transpose(-1, -2) * 0.5).masked_fill(~mask, float("-inf")).softmax(-1)) @ vq
    assert (interpret(out, q, k, v) - want).abs().max().item() < 1e-5


@pytest.fixture(scope="module")
def spikingbrain():
    torch.manual_seed(0)
    m = zoo.create("spikingbrain", "tiny").eval()
    ids = torch.randint(0, 256, (1, 24))
    return m, ids, from_torch(m, (ids,))


def test_spikingbrain_default_targets_and_eager_equivalence(spikingbrain):
    m, ids, g = spikingbrain
    out = spikec.passes.run(g, "insert-spike-coding")
    names = [p.name for p in spiked_projections(out)]
    # GLA layers: q k v gk.0 gk.1 o gate up; SWA layers: q k v o gate up
    assert len(names) == 2 * 8 + 2 * 6
    assert not any("down_proj" in n or "lm_head" in n for n in names)
    # one encoder per distinct input: GLA {q,k,v,gk.0}, gk.1, o, {gate,up}; SWA {q,k,v}, o, {gate,up}
    assert out.op_counts()["spike_encode"] == 2 * 4 + 2 * 3
    want = _eager(m, ids, DEFAULT)
    assert (interpret(out, ids) - want).abs().max().item() < 1e-4
    assert isinstance(out.outputs[0].type, TensorType)
