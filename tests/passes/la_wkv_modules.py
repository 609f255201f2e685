"""RWKV-4 time mixing (SpikeGPT's WKV) written as a loop over tokens, and near misses.

``WKVMix(form=...)``: k, v, r projections of x, a per-channel decay w = -exp(time_decay)
and bonus u = time_first, then

  stable   SpikeGPT's kernel: numerator a and denominator b kept scaled by e^-p, p the
           running maximum exponent
  plain    the definition, e^(k) without any shift

``flaw`` makes it compute something that is WKV for no choice of w and u (must not be
fused; a flaw like "u also added when a token enters the state" would be WKV with u = 0):
  no_denominator   the numerator alone
  bonus_without_v  the current token adds e^(u + k_t) to the numerator, not e^(u + k_t) v_t
  key_sign         tokens enter the state weighted e^(-k) instead of e^(k)
  reversed         the loop runs backwards over time (each token sees the future)
They never import spikec.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class WKVMix(nn.Module):
    def __init__(self, d=16, form="stable", flaw=None):
        super().__init__()
        self.form, self.flaw = form, flaw
        self.key, self.value, self.rec = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.time_decay = nn.Parameter(torch.linspace(-3.0, 1.0, d))
        self.time_first = nn.Parameter(torch.linspace(-1.0, 0.5, d))

    def forward(self, x):
        k, v = self.key(x), self.value(x)
        w, u = -torch.exp(self.time_decay), self.time_first
        B, T, C = k.shape
        outs = [None] * T
        a, b = x.new_zeros(B, C), x.new_zeros(B, C)
        p = torch.full((B, C), -1e38)
        for t in (reversed(range(T)) if self.flaw == "reversed" else range(T)):
            kt, vt = k[:, t], v[:, t]
            kin = -kt if self.flaw == "key_sign" else kt
            bonus_v = 1.0 if self.flaw == "bonus_without_v" else vt
            if self.form == "plain":
                cur = torch.exp(u + kt)
                num, den = a + cur * bonus_v, b + cur
                a = torch.exp(w) * a + torch.exp(kin) * vt
                b = torch.exp(w) * b + torch.exp(kin)
            else:
                uk = u + kt
                m = torch.maximum(p, uk)
                e1, e2 = torch.exp(p - m), torch.exp(uk - m)
                num, den = e1 * a + e2 * bonus_v, e1 * b + e2
                m = torch.maximum(p + w, kin)
                e1, e2 = torch.exp(p + w - m), torch.exp(kin - m)
                a, b, p = e1 * a + e2 * vt, e1 * b + e2, m
            outs[t] = num if self.flaw == "no_denominator" else num / den
        return torch.sigmoid(self.rec(x)) * torch.stack(outs, 1)
