"""Spike statistics of integer counts, and the energy model (SpikingBrain report §5.5).

Every measure is a sum over the (token, channel) elements of the counts tensors that
reach one projection, so statistics of several batches add up exactly:

  spikes[coding]   events each coding emits: binary Σ (c - z) with the per-tensor zero
                   point z = min(c, 0) (binary spikes are unsigned); ternary Σ |c|;
                   bitwise Σ popcount(|c|) (one ±1 spike per set bit)
  silent           elements that emit no spike (c == 0; binary: c == z)
  window3_active   Σ popcount(min(|c|, 7)): the paper's 3-step window. Each element gets
                   three bitwise-ternary slots (INT3); a count above 7 saturates to three
                   active slots. sparsity = 1 - window3_active / (3 · elements)
  steps[coding]    time steps per tensor (Int2Spike: from the tensor's global max):
                   binary max(c) - z, ternary max|c|, bitwise max(1, ceil(log2(max|c|+1)))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from spikec.ir.ops_spike import CODINGS

# Energy per operation, 45 nm (Horowitz via Yao et al. 2024b), as the report uses them.
ENERGY_PJ = {"fp16_mac": 1.5, "int8_mac": 0.23, "int8_add": 0.03}


def popcount(x: torch.Tensor) -> torch.Tensor:
    """Set bits of a non-negative int tensor (< 2^62), SWAR: a fixed dozen int64 ops."""
    x = x.to(torch.int64)
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56 & 0xFF


@dataclass
class CountStats:
    elements: int = 0
    tokens: int = 0
    channels: int = 0
    spikes: dict = field(default_factory=lambda: {c: 0 for c in CODINGS})
    silent: dict = field(default_factory=lambda: {c: 0 for c in CODINGS})
    window3_active: int = 0
    at_most_7: int = 0
    abs_sum: int = 0
    fired_channels: torch.Tensor | None = None     # per channel: fired at least once
    steps_max: dict = field(default_factory=lambda: {c: 0 for c in CODINGS})
    steps_sum: dict = field(default_factory=lambda: {c: 0 for c in CODINGS})
    tensors: int = 0

    def add(self, counts: torch.Tensor) -> "CountStats":
        c = counts.to(torch.int64).reshape(-1, counts.shape[-1])
        mag = c.abs()
        z = min(int(c.min()), 0) if c.numel() else 0
        bits = popcount(mag)
        self.elements += c.numel()
        self.tokens += c.shape[0]
        self.channels = c.shape[1]
        self.spikes["binary"] += int((c - z).sum())
        self.spikes["ternary"] += int(mag.sum())
        self.spikes["bitwise"] += int(bits.sum())
        zeros = int((c == 0).sum())
        self.silent["ternary"] += zeros
        self.silent["bitwise"] += zeros
        self.silent["binary"] += int((c == z).sum())
        self.window3_active += int(popcount(mag.clamp(max=7)).sum())
        self.at_most_7 += int((mag <= 7).sum())
        self.abs_sum += int(mag.sum())
        fired = (c != 0).any(0)
        self.fired_channels = fired if self.fired_channels is None else (self.fired_channels | fired)
        m = int(mag.max()) if c.numel() else 0
        steps = {"binary": (int(c.max()) - z) if c.numel() else 0, "ternary": m, "bitwise": max(1, m.bit_length())}
        for k, v in steps.items():
            self.steps_max[k] = max(self.steps_max[k], v)
            self.steps_sum[k] += v
        self.tensors += 1
        return self

    def merge(self, other: "CountStats") -> "CountStats":
        """Totals over several projections (per-channel facts do not merge; steps take the max)."""
        out = CountStats(self.elements + other.elements, self.tokens + other.tokens, 0)
        for c in CODINGS:
            out.spikes[c] = self.spikes[c] + other.spikes[c]
            out.silent[c] = self.silent[c] + other.silent[c]
            out.steps_max[c] = max(self.steps_max[c], other.steps_max[c])
            out.steps_sum[c] = self.steps_sum[c] + other.steps_sum[c]
        out.window3_active = self.window3_active + other.window3_active
        out.at_most_7 = self.at_most_7 + other.at_most_7
        out.abs_sum = self.abs_sum + other.abs_sum
        out.tensors = self.tensors + other.tensors
        return out

    def summary(self) -> dict:
        e = max(self.elements, 1)
        out = {
            "elements": self.elements,
            "mean_abs_count": self.abs_sum / e,
            "fraction_counts_le_7": self.at_most_7 / e,
            "sparsity_window3": 1 - self.window3_active / (3 * e),
            "mean_spikes_per_channel": {c: self.spikes[c] / e for c in CODINGS},
            "silent_fraction": {c: self.silent[c] / e for c in CODINGS},
            "time_steps_max": dict(self.steps_max),
            "time_steps_mean": {c: self.steps_sum[c] / max(self.tensors, 1) for c in CODINGS},
        }
        if self.fired_channels is not None:
            out["never_firing_channels"] = 1 - float(self.fired_channels.float().mean())
        return out


def projection_energy(stats: CountStats, out_features: int) -> dict:
    """pJ of one projection over the counted tokens: dense FP16 and INT8 MACs against the
    spiking form's accumulates (one INT8 add per spike per output). `rescale` adds the
    per-token multiply by v_th (one FP16 MAC per output), which the report leaves out."""
    macs = stats.elements * out_features
    spiking = {c: stats.spikes[c] * out_features * ENERGY_PJ["int8_add"] for c in CODINGS}
    rescale = stats.tokens * out_features * ENERGY_PJ["fp16_mac"]
    return {"macs": macs, "fp16_pj": macs * ENERGY_PJ["fp16_mac"], "int8_pj": macs * ENERGY_PJ["int8_mac"],
            "spike_pj": spiking, "rescale_pj": rescale}
