"""NIR export of the spike-coded projections: the written file reads back, and a plain
discrete-time simulation of each exported sub-graph (INT8 fake-quantised weights included) (Linear, then an integrator with
dt = 1, one spike vector per step) reproduces the projection the interpreter computes
(1e-4 absolute: float sums in another order)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir", reason="the nir package is not installed")

import spikec.passes  # noqa: E402
from spikec.frontend import from_torch  # noqa: E402
from spikec.ir.ops_spike import spike_train_reference  # noqa: E402
from spikec.nir_export import NIRExportError, export_nir  # noqa: E402
from spikec.passes.spike_graph import spiked_projections  # noqa: E402
from spikec.passes.spike_report import run_with_probes  # noqa: E402
from spike_eager import TinyBlock  # noqa: E402


def simulate(sub, trains: np.ndarray) -> np.ndarray:
    """Run Input -> Linear -> I -> Output for trains [T, N, in]; the integrator state at the end."""
    kinds = {type(n).__name__: n for n in sub.nodes.values()}
    assert set(kinds) == {"Input", "Linear", "I", "Output"}
    order = dict(sub.edges)
    assert order["input"] == "weight" and order["weight"] == "integrate" and order["integrate"] == "output"
    W, r = kinds["Linear"].weight, kinds["I"].r
    v = np.zeros((trains.shape[1], W.shape[0]), dtype=np.float64)
    for s in trains:                        # dv/dt = R I, Euler with dt = 1
        v += r * (s.astype(np.float64) @ W.T.astype(np.float64))
    return v


@pytest.mark.parametrize("coding,extra", [("ternary", ",weight_int8=true,weight_group=8"), ("binary", "")])
def test_exported_subgraphs_reproduce_the_projections(tmp_path, coding, extra):
    torch.manual_seed(0)
    m = TinyBlock().eval()
    x = torch.randn(2, 5, 16)
    if coding == "binary":
        x = x.abs()                        # binary spikes need counts >= 0
        m.attn["q_proj"].weight.data.abs_()
    g = spikec.passes.run(from_torch(m, (x,)), f"insert-spike-coding{{coding={coding},targets=*.q_proj{extra}}}")
    path = str(tmp_path / "spikes.nir")
    export_nir(g, coding=coding, path=path)
    top = nir.read(path)
    (proj,) = spiked_projections(g)
    sub = top.nodes["attn_q_proj"]
    assert sub.metadata["projection"] == "attn.q_proj" and sub.metadata["k"] == 3.0
    counts, vth, y = run_with_probes(g, [proj.counts, proj.encode.outputs[1], proj.linear.outputs[0]], (x,))
    trains = spike_train_reference(counts, coding).reshape(-1, 10, 16).numpy()
    v = simulate(sub, trains)
    got = vth.reshape(10, 1).numpy() * v + sub.metadata["bias"]
    assert np.abs(got - y.reshape(10, -1).numpy()).max() < 1e-4


def test_bitwise_and_unspiked_graphs_are_refused():
    m = TinyBlock().eval()
    x = torch.randn(1, 3, 16)
    g = from_torch(m, (x,))
    with pytest.raises(NIRExportError, match="no spike-coded"):
        export_nir(g)
    with pytest.raises(NIRExportError, match="time-dependent weights"):
        export_nir(spikec.passes.run(g, "insert-spike-coding"), coding="bitwise")
