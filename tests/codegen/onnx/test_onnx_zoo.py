"""Zoo models (tiny) through the onnx target, run by onnxruntime, against spikec.ir.interpret.

- every traced recipe of tests/codegen/zoo_graphs.py, unfused and fused;
- the fused SpikingBrain (linear_attention + sliding_window_attention, symbolic T) written to
  model.onnx, checked with onnx.checker (full check) and opened in a fresh InferenceSession
  at T=16 and T=300.
Tolerance: |got - want| <= 1e-4 + 1e-4·|want| (f32), the conformance suite's bound."""
from __future__ import annotations

import os
import sys

import onnx
import onnxruntime as ort
import pytest
import torch

from spikec import ir
from spikec.codegen import get_target

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import fused_spikingbrain  # noqa: E402
import zoo_graphs  # noqa: E402


def assert_close(got, want):
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["unfused", "fused"])
@pytest.mark.parametrize("model", sorted(zoo_graphs.RECIPES))
def test_zoo_model(model, form):
    traced = zoo_graphs.traced(model)
    g = traced.graphs[form]
    mod = get_target("onnx").lower(g)
    for T in traced.recipe.run_lengths:
        x = traced.inputs(T)
        assert_close(mod.run(*x), ir.interpret(g, *x))


@pytest.fixture(scope="module")
def spikingbrain_fused():
    m, chunk, g = fused_spikingbrain.spikingbrain_fused()
    assert {"linear_attention", "sliding_window_attention"} <= set(g.op_counts())
    return chunk, g


def test_fused_spikingbrain_file_opens_at_16_and_300(spikingbrain_fused, tmp_path):
    chunk_model, g = spikingbrain_fused
    mod = get_target("onnx").lower(g, intra_op_threads=1)
    mod.dump(str(tmp_path))
    path = str(tmp_path / "model.onnx")
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "T"
    assert {f.name for f in model.functions} >= {"LinearAttentionChannelGateGqa", "SlidingWindowAttentionGqa"}
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for T in (16, 300):
        ids = fused_spikingbrain.ids(T)
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: ids.numpy()})[0])
        want = ir.interpret(g, ids)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        with torch.no_grad():                                   # and the eager model (chunked form, same weights)
            torch.testing.assert_close(got, chunk_model(ids), rtol=1e-4, atol=1e-4)


def test_sources_text_and_weights(spikingbrain_fused):
    _, g = spikingbrain_fused
    mod = get_target("onnx").lower(g, intra_op_threads=1)
    src = mod.sources()
    assert onnx.load_from_string(src["model.onnx"]).graph.name == g.name
    text = src["model.onnx.txt"]
    assert "spikec.LinearAttentionChannelGateGqa" in text and "Scan" in text
    # every weight is an initializer; linear weights are stored transposed (MatMul-ready)
    inits = {t.name: t for t in mod.model.graph.initializer}
    for name, t in g.constants.items():
        if name.endswith("q_proj.weight"):
            stored = inits.get(name.replace(".", "_") + "_T")
            assert stored is not None and list(stored.dims) == list(t.t().shape)
    assert mod.session.get_session_options().intra_op_num_threads == 1
