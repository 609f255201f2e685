"""Read a scan body as one LIF step, by evaluating it (not by its op names).

A candidate body (from `reroll-loops`) has one carry v, one per-step input x and
two outputs (v', y); or, when reroll-loops cut the loop one op late (an input v0
makes `v0 - v_reset` of step 0 loop-invariant, so each step computes the next step's
v - v_reset), two carries (v, v + k) with k constant (checked), read as v alone. It is a LIF step with decay_input and hard reset when, for
every v and x,

    h = v + (x - (v - v_reset)) / tau,   y = H(h - v_threshold),   v' = h (1 - y) + v_reset y.

The parameters are measured on the body: on non-spiking samples v' is affine in
(v, x) (slope 1/tau on x, 1 - 1/tau on v, intercept v_reset/tau); v' of spiking
samples is v_reset; v_threshold is where y flips (bisection on x at v = v_reset).
Each measurement is snapped to a number literal of the body (or its negation or
reciprocal) and the body is then compared with `lif_step_reference` on fresh random
samples: spikes equal except within 1e-5 of the threshold, v' within `TOL`.
Soft reset, no reset, a wrong threshold or extra inputs fail the comparison.
"""
from __future__ import annotations

import math

import torch

from spikec.ir import Graph, TensorType, interpret

TOL = 1e-5
SNAP = 1e-4          # relative distance for snapping a measurement to a literal


def lif_step_reference(x, v, tau, v_threshold, v_reset):
    """One step, float64, written from the definition (independent of the op's impl)."""
    x, v = x.double(), v.double()
    h = v + (x - (v - v_reset)) / tau
    s = (h >= v_threshold).double()
    return h * (1 - s) + v_reset * s, s, h


class LifParams:
    def __init__(self, tau: float, v_threshold: float, v_reset: float, alpha: float, carry_offset: float = 0.0):
        self.tau, self.v_threshold, self.v_reset, self.alpha = tau, v_threshold, v_reset, alpha
        self.carry_offset = carry_offset        # a rotated loop's second carry is v + carry_offset


def _literals(region: Graph) -> list[float]:
    out = {0.0, 1.0}
    for n in region.nodes:
        for a in n.args.values():
            for x in (a if isinstance(a, (list, tuple)) else [a]):
                if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
                    out |= {float(x), -float(x)}
                    if x != 0:
                        out |= {1.0 / x, -1.0 / x}
    return sorted(out)


def _snap(est: float, cands: list[float]) -> float | None:
    best = min(cands, key=lambda c: abs(c - est))
    return best if abs(best - est) <= SNAP * max(1.0, abs(best)) else None


def _alpha(region: Graph) -> float:
    """The ATan surrogate's alpha from atan(x * (pi/2 alpha)) in the body (gradients only)."""
    for n in region.nodes:
        if n.op == "atan":
            p = n.args["self"].producer
            if p is not None and p.op == "mul":
                c = p.args["other"] if isinstance(p.args["other"], (int, float)) else p.args["self"]
                if isinstance(c, (int, float)) and not isinstance(c, bool):
                    return float(2 * c / math.pi)
    return 2.0


def _concrete(t: TensorType) -> list[int]:
    return [d if isinstance(d, int) else 3 for d in t.shape]


def make_step(region: Graph, constants: dict | None = None):
    """(step(v, x) -> (v', y) on flat float64 tensors, n, k) for a body with carries (v) or
    (v, v + k) (a rotated loop: `v - v_reset` of the next step computed in this one), or None."""
    ins, outs = region.inputs, region.outputs
    n_carry = len(ins) - 1
    if n_carry not in (1, 2) or len(outs) != n_carry + 1:
        return None
    vin = ins[0]
    ts = [v.type for v in (*ins, *outs)]
    if not all(isinstance(t, TensorType) and t == vin.type and t.dtype in ("f32", "f64") for t in ts):
        return None
    dt = torch.float64 if vin.type.dtype == "f64" else torch.float32
    shape = _concrete(vin.type)
    n = max(1, math.prod(shape))
    consts = constants if constants is not None else region.constants

    def run(*vals):
        try:
            r = interpret(region, *(v.to(dt).reshape(shape) for v in vals), constants=consts)
        except Exception:          # a body the interpreter cannot run is not ours to fuse
            return None
        return [t.double().reshape(-1) for t in r]

    k = 0.0
    if n_carry == 2:
        gen = torch.Generator().manual_seed(5)
        r = run(*(torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(3)))
        if r is None:
            return None
        d = r[1] - r[0]
        k = _snap(float(d.mean()), _literals(region))
        if k is None or not bool(((d - k).abs() <= TOL * (1 + abs(k))).all()):
            return None

    def step(v, x):
        r = run(v, x) if n_carry == 1 else run(v, v + k, x)
        return None if r is None else (r[0], r[-1])

    return step, n, k


def identify(region: Graph, constants: dict | None = None) -> LifParams | None:
    """The LIF parameters of a scan body, or None when it is not one LIF step."""
    made = make_step(region, constants)
    if made is None:
        return None
    step, n, k = made
    gen = torch.Generator().manual_seed(7)

    def batch(scale_v, scale_x, m=8):
        vs = [scale_v * torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(m)]
        xs = [scale_x * torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(m)]
        res = [step(v, x) for v, x in zip(vs, xs)]
        if any(r is None for r in res):
            return None
        return (torch.cat(vs), torch.cat(xs), torch.cat([r[0] for r in res]), torch.cat([r[1] for r in res]))

    got = batch(0.5, 0.5)
    if got is None:
        return None
    v, x, v1, y = got
    if not bool(((y == 0) | (y == 1)).all()):
        return None
    quiet = y == 0
    if int(quiet.sum()) < 8:
        return None
    A = torch.stack([v[quiet], x[quiet], torch.ones_like(v[quiet])], 1)
    a, b, c = torch.linalg.lstsq(A, v1[quiet, None]).solution.reshape(-1).tolist()
    if abs(b) < 1e-6:
        return None
    cands = _literals(region)
    tau, v_reset = _snap(1 / b, cands), _snap(c / b, cands)
    if tau is None or v_reset is None or tau == 0:
        return None
    # the threshold: bisection on x at v = v_reset, where h = v_reset + x / tau
    ones = torch.ones(n, dtype=torch.float64)

    def fires(xv):
        r = step(v_reset * ones, xv * ones)
        return None if r is None else bool(r[1][0] == 1)

    lo, hi = -1.0, 1.0
    for _ in range(40):
        flo, fhi = fires(lo), fires(hi)
        if flo is None or fhi is None:
            return None
        if not flo and fhi:
            break
        lo, hi = (2 * lo, hi) if flo else (lo, 2 * hi)
    else:
        return None
    for _ in range(50):
        mid = (lo + hi) / 2
        f = fires(mid)
        if f is None:
            return None
        lo, hi = (lo, mid) if f else (mid, hi)
    v_th = _snap(v_reset + hi / tau, cands)
    if v_th is None:
        return None
    p = LifParams(float(tau), float(v_th), float(v_reset), _alpha(region), k)
    return p if confirm(step, p, n) else None


def confirm(step, p: LifParams, n: int) -> bool:
    """Compare the body with the reference on fresh samples that straddle the threshold."""
    gen = torch.Generator().manual_seed(11)
    span = abs(p.v_threshold - p.v_reset) + 1.0
    fired = quiet = 0
    for i in range(6):
        v = p.v_reset + span * torch.randn(n, generator=gen, dtype=torch.float64)
        x = abs(p.tau) * span * (0.5 + torch.randn(n, generator=gen, dtype=torch.float64))
        r = step(v, x)
        if r is None:
            return False
        want_v, want_s, h = lif_step_reference(x, v, p.tau, p.v_threshold, p.v_reset)
        edge = (h - p.v_threshold).abs() <= TOL * span
        if bool(((r[1] != want_s) & ~edge).any()):
            return False
        ok = ((r[0] - want_v).abs() <= TOL * (1 + want_v.abs())) | edge
        if not bool(ok.all()):
            return False
        fired += int(want_s.sum())
        quiet += int((1 - want_s).sum())
    return fired > 0 and quiet > 0

