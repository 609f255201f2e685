"""The fused SpikingBrain tiny (linear_attention + sliding_window_attention, symbolic T)
through torch-mlir: one linalg function, JIT-compiled once, run at T=16 and T=300 against
spikec.ir.interpret and the eager model. (Every zoo recipe, unfused and fused, runs on this
target in tests/codegen/test_conformance.py.)
Tolerance: |got - want| <= 1e-4 + 1e-4·|want| (f32)."""
from __future__ import annotations

import os
import sys

import torch

from spikec import ir
from spikec.codegen import get_target

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "onnx"))
import fused_spikingbrain  # noqa: E402


def test_fused_spikingbrain_at_16_and_300():
    _, chunk_model, g = fused_spikingbrain.spikingbrain_fused()
    mod = get_target("mlir").lower(g)
    assert "tensor<1x?xi64>" in mod.linalg_text and "spikec" not in mod.linalg_text   # T dynamic, ops decomposed
    for T in (16, 300):
        ids = fused_spikingbrain.ids(T)
        got = mod.run(ids)[0]
        torch.testing.assert_close(got, ir.interpret(g, ids), rtol=1e-4, atol=1e-4)
        with torch.no_grad():
            torch.testing.assert_close(got, chunk_model(ids), rtol=1e-4, atol=1e-4)
