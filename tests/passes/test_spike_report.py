"""The spike report and calibration, checked against counts computed here from the eager
model's projection inputs and plain-Python bit counting (exact for integer measures,
1e-9 relative for the energy sums)."""
from __future__ import annotations

import json

import pytest
import torch

import spikec.passes
from spikec.frontend import from_torch
from spikec.passes import PipelineError
from spikec.passes.spike_calibration import calibrate
from spikec.passes.spike_report import SpikeReportError, spike_report
from spike_eager import TinyBlock, spike_hooks


def _inputs_of(m, x, names, spiked=()):
    """The inputs of the named modules, with W8ASpike hooks on `spiked` (registered after the
    capturing hooks, so these see the unspiked input)."""
    got = {}
    hs = [mod.register_forward_pre_hook(lambda mod, a, _n=n: got.__setitem__(_n, a[0].detach()))
          for n, mod in m.named_modules() if n in names]
    hs += spike_hooks(m, list(spiked))
    with torch.no_grad():
        m(x)
    for h in hs:
        h.remove()
    return got


def _eager_counts(x, k=3.0):
    vth = (x.abs().mean(-1, keepdim=True) / k).clamp(1e-5, 1e4)
    return (x / vth).round().long()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    m = TinyBlock().eval()
    xs = [torch.randn(2, 6, 16) for _ in range(3)]
    g = from_torch(m, (xs[0],))
    return m, xs, g


def test_report_measures_match_independent_counts(setup):
    m, xs, g = setup
    spiked = spikec.passes.run(g, "insert-spike-coding{targets=*.o_proj|*.up_proj}")
    rep = spike_report(spiked, [(x,) for x in xs], coding="ternary")
    assert list(rep.layers) == ["attn.o_proj", "mlp.up_proj"]
    for name, out_f in (("attn.o_proj", 16), ("mlp.up_proj", 32)):
        spiked = ["attn.o_proj", "mlp.up_proj"]
        counts = [_eager_counts(_inputs_of(m, x, [name], spiked)[name]).flatten().tolist() for x in xs]
        flat = [c for cs in counts for c in cs]
        n = len(flat)
        s = rep.layers[name]["stats"]
        bitwise = sum(bin(abs(c)).count("1") for c in flat)
        binary = sum(c - min(min(cs), 0) for cs in counts for c in cs)
        assert s["mean_spikes_per_channel"] == pytest.approx(
            {"ternary": sum(abs(c) for c in flat) / n, "bitwise": bitwise / n, "binary": binary / n}, rel=1e-12)
        assert s["silent_fraction"]["ternary"] == pytest.approx(sum(c == 0 for c in flat) / n, rel=1e-12)
        window = sum(bin(min(abs(c), 7)).count("1") for c in flat)
        assert s["sparsity_window3"] == pytest.approx(1 - window / (3 * n), rel=1e-12)
        assert s["fraction_counts_le_7"] == pytest.approx(sum(abs(c) <= 7 for c in flat) / n, rel=1e-12)
        assert s["time_steps_max"] == {"ternary": max(max(abs(c) for c in cs) for cs in counts),
                                       "bitwise": max(max(abs(c) for c in cs) for cs in counts).bit_length(),
                                       "binary": max(max(cs) - min(min(cs), 0) for cs in counts)}
        e = rep.layers[name]["energy"]
        assert e["fp16_pj"] == pytest.approx(n * out_f * 1.5, rel=1e-9)
        assert e["int8_pj"] == pytest.approx(n * out_f * 0.23, rel=1e-9)
        assert e["spike_pj"]["bitwise"] == pytest.approx(bitwise * out_f * 0.03, rel=1e-9)
    # every other projection (q, k, gate, down, lm_head) counted dense in the model total
    tokens = 3 * 12
    rest = tokens * (16 * 16 + 16 * 8 + 16 * 32 + 32 * 16 + 16 * 11)
    assert rep.energy["model"]["unspiked_macs"] == rest
    assert rep.energy["model"]["dense_fp16_pj"] == pytest.approx(
        rep.energy["spiked_projections"]["fp16_pj"] + rest * 1.5, rel=1e-9)
    text = rep.format()
    assert "attn.o_proj" in text and "% less than FP16" in text
    assert json.loads(json.dumps(rep.to_json()))["definitions"]["sparsity_window3"].startswith("1 - sum")


def test_report_needs_spikes(setup):
    _, xs, g = setup
    with pytest.raises(SpikeReportError, match="no spike-coded projections"):
        spike_report(g, [(xs[0],)])


def test_calibration_meets_its_objectives_and_feeds_the_pass(setup, tmp_path):
    m, xs, g = setup
    samples = [(x,) for x in xs]
    cal = calibrate(g, samples, targets="*.up_proj|*.q_proj", sparsity=0.62)
    assert set(cal.k) == {"attn.q_proj", "mlp.up_proj"}
    for name, d in cal.layers.items():
        table = d["table"]
        ok = [r for r in table if r["sparsity"] >= 0.62]
        assert d["met"] and d["sparsity"] >= 0.62
        assert d["error"] == min(r["error"] for r in ok)
        # the table's numbers for this k, recomputed from the eager inputs
        x = torch.cat([_inputs_of(m, x, [name])[name].flatten(0, 1) for x in xs])
        vth = (x.abs().mean(-1, keepdim=True) / d["k"]).clamp(1e-5, 1e4)
        c = (x / vth).round()
        w = dict(m.named_modules())[name].weight.detach()
        err = (((c * vth - x) @ w.t()).norm() / (x @ w.t()).norm()).item()
        assert d["error"] == pytest.approx(err, rel=1e-4)
    strict = calibrate(g, samples, targets="*.up_proj", max_error=0.08)
    d = strict.layers["mlp.up_proj"]
    assert d["met"] and d["error"] <= 0.08
    assert d["sparsity"] == max(r["sparsity"] for r in d["table"] if r["error"] <= 0.08)
    impossible = calibrate(g, samples, targets="*.up_proj", sparsity=0.999)
    assert not impossible.layers["mlp.up_proj"]["met"]
    path = tmp_path / "cal.json"
    cal.save(str(path))
    # only up_proj spiked, so its input is the float activation calibration saw
    out = spikec.passes.run(g, f"insert-spike-coding{{calibration={path},targets=*.up_proj}}")
    rep = spike_report(out, samples)
    assert rep.layers["mlp.up_proj"]["k"] == cal.k["mlp.up_proj"]
    assert rep.layers["mlp.up_proj"]["stats"]["sparsity_window3"] == pytest.approx(
        cal.layers["mlp.up_proj"]["sparsity"], rel=1e-12)


def test_calibration_errors(setup):
    _, xs, g = setup
    with pytest.raises(PipelineError, match="target sparsity or a maximum error"):
        calibrate(g, [(xs[0],)])
    with pytest.raises(PipelineError, match="match no linear"):
        calibrate(g, [(xs[0],)], targets="*.nothing", sparsity=0.5)
