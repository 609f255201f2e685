"""Every registered target runs a spike-coded graph (spike_encode, straight_through, INT8
weight fake-quant) with the interpreter's outputs: natively where its rule table has the
spike ops, else after `decompose-spike-coding`. Tolerance 1e-5 absolute (measured: 0 on
torch/cuda, 2.4e-7 on cpu/mlir/onnx). Compile-only targets (no device here) must still
lower; a target whose toolchain is missing is skipped with the reason."""
from __future__ import annotations

import pytest
import torch

import spikec.passes
from spikec.codegen import TargetUnavailableError, get_target, target_names
from spikec.frontend import from_torch
from spikec.ir import interpret

SPIKE_OPS = ("spike_encode", "straight_through", "int8_fake_quant")


class Projection(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up_proj = torch.nn.Linear(16, 8)

    def forward(self, x):
        return torch.tanh(self.up_proj(x))


@pytest.fixture(scope="module")
def graphs():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    spiked = spikec.passes.run(from_torch(Projection().eval(), (x,)),
                               "insert-spike-coding{weight_int8=true,weight_group=8}")
    return x, spiked, spikec.passes.run(spiked, "decompose-spike-coding")


@pytest.mark.parametrize("name", target_names())
def test_target_runs_spike_coded_graph(graphs, name):
    # (cuda without a GPU runs its Triton kernels in Triton's interpreter: the target sets that up)
    x, spiked, flat = graphs
    try:
        target = get_target(name)
    except ImportError as e:
        pytest.skip(f"target {name!r}: toolchain not installed ({e})")
    native = all(op in target.rules for op in SPIKE_OPS)
    mod = target.lower(spiked if native else flat)
    try:
        got = mod.run(x)[0]
    except TargetUnavailableError as e:
        assert mod.sources(), f"compile-only target {name!r} produced no sources"
        pytest.skip(f"target {name!r} is compile-only here: {e.message}")
    want = interpret(spiked, x)
    assert (got - want).abs().max().item() <= 1e-5
