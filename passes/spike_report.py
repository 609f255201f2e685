"""The spike report: run sample inputs through a spike-coded graph and measure, per spiked
projection and overall, spikes per channel, silent channels, the 3-step-window sparsity,
time steps per coding and the energy against the dense model (definitions: spike_stats).

    rep = spike_report(graph, [(ids,), ...])
    print(rep.format()); rep.save("report.json")

The counts are read by running the graph with the reference interpreter and the counts
of every spike_encode as extra outputs. The energy covers linear projections only
(attention score/value products and the GLA recurrence are the same in both models):
dense = every projection as FP16 MACs; spiking = the spiked projections' accumulates
(INT8 adds) + the other projections at FP16.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from spikec.ir import Graph, SpikecError, interpret
from spikec.ir.ops_spike import CODINGS

from .spike_graph import SpikedProjection, spiked_projections
from .spike_stats import ENERGY_PJ, CountStats, projection_energy


class SpikeReportError(SpikecError):
    """A graph without spike-coded projections, or unusable samples."""


def run_with_probes(graph: Graph, values, inputs) -> list[torch.Tensor]:
    """Interpret `graph` on `inputs` and return the tensors of `values` (any values of it)."""
    saved = graph.outputs
    graph.outputs = list(saved) + list(values)
    try:
        outs = interpret(graph, *inputs)
    finally:
        graph.outputs = saved
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    return outs[len(saved):]


@dataclass
class SpikeReport:
    coding: str
    layers: dict[str, dict] = field(default_factory=dict)
    overall: dict = field(default_factory=dict)
    energy: dict = field(default_factory=dict)
    samples: int = 0
    tokens: int = 0

    def to_json(self) -> dict:
        return {"coding": self.coding, "samples": self.samples, "tokens": self.tokens,
                "energy_constants_pj": ENERGY_PJ, "overall": self.overall, "energy": self.energy,
                "layers": self.layers,
                "definitions": {
                    "sparsity_window3": "1 - sum(popcount(min(|count|, 7))) / (3 * elements): each (token, channel) "
                                        "gets a 3-step bitwise-ternary window; counts above 7 saturate it",
                    "mean_spikes_per_channel": "spike events per (token, channel): binary count - min(count, 0), "
                                               "ternary |count|, bitwise popcount(|count|)",
                    "silent_fraction": "fraction of (token, channel) elements that emit no spike",
                    "time_steps": "per tensor from its global max: binary max - min(min, 0), ternary max|c|, "
                                  "bitwise max(1, ceil(log2(max|c| + 1)))",
                    "energy": "linear projections only; dense = FP16 MACs; spiking = one INT8 add per spike per "
                              "output + unspiked projections at FP16; rescale = the v_th multiply per output"}}

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=2)

    def format(self) -> str:
        c = self.coding
        lines = [f"spike report: {len(self.layers)} spiked projections, {self.samples} samples, {self.tokens} tokens, "
                 f"coding {c}",
                 f"{'projection':<44} {'k':>4} {'spk/ch':>7} {'silent':>7} {'sparse3':>8} {'T(bin/ter/bit)':>15}"]
        for name, d in self.layers.items():
            s = d["stats"]
            t = s["time_steps_max"]
            lines.append(f"{name:<44} {d['k']:>4g} {s['mean_spikes_per_channel'][c]:>7.3f} "
                         f"{s['silent_fraction'][c]:>7.3f} {s['sparsity_window3']:>8.4f} "
                         f"{t['binary']:>5}/{t['ternary']}/{t['bitwise']}")
        o = self.overall
        t = o["time_steps_max"]
        lines.append(f"{'overall':<44} {'':>4} {o['mean_spikes_per_channel'][c]:>7.3f} {o['silent_fraction'][c]:>7.3f} "
                     f"{o['sparsity_window3']:>8.4f} {t['binary']:>5}/{t['ternary']}/{t['bitwise']}")
        e = self.energy
        lines.append(f"counts <= 7: {o['fraction_counts_le_7']:.3f}; mean |count| {o['mean_abs_count']:.3f}; "
                     f"spikes per channel binary {o['mean_spikes_per_channel']['binary']:.3f}, ternary "
                     f"{o['mean_spikes_per_channel']['ternary']:.3f}, bitwise {o['mean_spikes_per_channel']['bitwise']:.3f}")
        sp = e["spiked_projections"]
        lines.append(f"energy of the spiked projections: FP16 {sp['fp16_pj'] / 1e6:.3f} uJ, INT8 {sp['int8_pj'] / 1e6:.3f} uJ, "
                     f"spiking ({c}) {sp['spike_pj'][c] / 1e6:.3f} uJ = {100 * sp['saving_vs_fp16'][c]:.1f}% less than "
                     f"FP16, {100 * sp['saving_vs_int8'][c]:.1f}% less than INT8 (+{sp['rescale_pj'] / 1e6:.3f} uJ v_th rescale)")
        m = e["model"]
        lines.append(f"all projections: dense FP16 {m['dense_fp16_pj'] / 1e6:.3f} uJ, spike-coded ({c}) "
                     f"{m['spiking_pj'][c] / 1e6:.3f} uJ ({100 * m['saving'][c]:.1f}% less)")
        return "\n".join(lines)


def _tokens_of(proj: SpikedProjection, counts: torch.Tensor) -> int:
    return counts.numel() // counts.shape[-1]


def spike_report(graph: Graph, samples, coding: str = "bitwise") -> SpikeReport:
    """Measure the spike coding of `graph` on `samples` (a list of input tuples)."""
    projs = spiked_projections(graph)
    if not projs:
        raise SpikeReportError("the graph has no spike-coded projections",
                               hint="run insert-spike-coding first, e.g. --pipeline insert-spike-coding")
    samples = [s if isinstance(s, (tuple, list)) else (s,) for s in samples]
    if not samples:
        raise SpikeReportError("spike report needs at least one sample input")
    uniq: dict[int, int] = {}
    probes = []
    for p in projs:
        if id(p.counts) not in uniq:
            uniq[id(p.counts)] = len(probes)
            probes.append(p.counts)
    stats = [CountStats() for _ in probes]
    tokens = 0
    for inputs in samples:
        outs = run_with_probes(graph, probes, inputs)
        for st, t in zip(stats, outs):
            st.add(t)
        tokens += _tokens_of(projs[0], outs[0])
    rep = SpikeReport(coding, samples=len(samples), tokens=tokens)
    total = None
    seen = set()
    spiked_energy = {"fp16_pj": 0.0, "int8_pj": 0.0, "rescale_pj": 0.0, "spike_pj": {c: 0.0 for c in CODINGS}}
    for p in projs:
        st = stats[uniq[id(p.counts)]]
        en = projection_energy(st, p.out_features)
        rep.layers[p.name] = {"k": p.encode.arg("k"), "in_features": p.in_features, "out_features": p.out_features,
                              "stats": st.summary(), "energy": en}
        for key in ("fp16_pj", "int8_pj", "rescale_pj"):
            spiked_energy[key] += en[key]
        for c in CODINGS:
            spiked_energy["spike_pj"][c] += en["spike_pj"][c]
        if id(p.counts) not in seen:          # a shared encoder's counts are counted once
            seen.add(id(p.counts))
            total = st if total is None else total.merge(st)
    rep.overall = total.summary()
    spiked_energy["saving_vs_fp16"] = {c: 1 - spiked_energy["spike_pj"][c] / spiked_energy["fp16_pj"] for c in CODINGS}
    spiked_energy["saving_vs_int8"] = {c: 1 - spiked_energy["spike_pj"][c] / spiked_energy["int8_pj"] for c in CODINGS}
    spiked_energy["per_mac_pj"] = {c: spiked_energy["spike_pj"][c] / max(spiked_energy["fp16_pj"] / ENERGY_PJ["fp16_mac"], 1)
                                   for c in CODINGS}
    rest = _unspiked_macs(graph, {id(p.linear) for p in projs}, tokens)
    dense = spiked_energy["fp16_pj"] + rest * ENERGY_PJ["fp16_mac"]
    spiking = {c: spiked_energy["spike_pj"][c] + rest * ENERGY_PJ["fp16_mac"] for c in CODINGS}
    rep.energy = {"spiked_projections": spiked_energy,
                  "model": {"unspiked_macs": rest, "dense_fp16_pj": dense, "spiking_pj": spiking,
                            "saving": {c: 1 - spiking[c] / dense for c in CODINGS}}}
    return rep


def _unspiked_macs(graph: Graph, spiked: set, tokens: int) -> int:
    # Projections act per token: tokens · in · out MACs each.
    macs = 0
    for n in graph.nodes:
        if n.op in ("linear", "spike_linear") and id(n) not in spiked:
            w = n.arg("weight").type.shape
            if isinstance(w[0], int) and isinstance(w[-1], int):
                macs += tokens * w[0] * w[-1]
    return macs
