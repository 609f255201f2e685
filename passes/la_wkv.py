"""RWKV-4's WKV (SpikeGPT's time mixing) -> one `linear_attention` plus the bonus and the division.

Per channel c, with a decay w < 0 and a bonus u for the current token:

    wkv_t = (Σ_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u + k_t} v_t) / (Σ_{i<t} e^{(t-1-i)w + k_i} + e^{u + k_t})

Both sums are one linear attention with a head per channel (K = 1, V = 2: the
numerator and the denominator side by side), the scalar gate w, and its inputs
shifted one step later in time (the sums stop at t-1; a shifted input avoids
subtracting the current term again, which would cancel catastrophically when
e^{-w} is large). The bonus and the division stay elementwise:

    s    = max_t k_t                        (per sequence and channel)
    e_t  = e^{k_t - s}
    h    = linear_attention(1, 1, [shift(e v), shift(e)], gate = w, scalar)
    wkv  = (h_num + e^{u + k - s} v) / (h_den + e^{u + k - s})

Recognition is semantic, like the chunked form (see `la_region`): a [B, T, C]
result whose region reads exactly two per-token tensors of its shape (k, v) and
no other data; its static inputs of C elements are the candidates for w and u,
as themselves or, when positive, as the exp of the parameter (a folded e^w).
The region is run on random k ~ N(0, 1.5²), v ~ N(0, 1) and compared, for each
order of (k, v) and each ordered pair of candidates, with `wkv_reference`
(float64, every term shifted by its row's maximum): max |region - ref| <= 1e-4
max |ref|. A region whose WKV state (a, b, p) is used outside (an explicit
state for decoding), or that takes an initial state, is left alone.

Numerics: SpikeGPT's kernel keeps (a, b) scaled by e^{-p}, p the running maximum
exponent, so no term ever overflows or underflows. The fused form shifts by one
maximum per sequence and channel instead: nothing overflows (every e^{k_t - s}
<= 1), but when k varies within one channel by more than about 100 (f32's
smallest subnormal is e^-103; plus u), the small terms flush to zero and a
denominator can underflow to 0 (NaN) where SpikeGPT's form stays finite. The two agree to f32
rounding otherwise; see docs/passes-attention.md for the measured bound.
"""
from __future__ import annotations

import itertools

import torch

from spikec.ir import Graph, TensorType, Value

from .la_region import (GraphIndex, NoRegion, RegionRunner, concrete_shape, find_region, one_thread, rel_err,
                        sample_envs)
from .rewrite import Builder, dead_code_elimination

TOL = 1e-4
FLOATS = ("f32", "f64")


def wkv_reference(k: torch.Tensor, v: torch.Tensor, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """WKV in float64 from its definition, k, v: [B, T, C], w, u: [C] -> [B, T, C]."""
    k, v, w, u = (x.double() for x in (k, v, w, u))
    T = k.shape[1]
    t = torch.arange(T)
    dist = (t[:, None] - 1 - t[None, :]).double()                       # [T(t), T(i)]
    expo = dist[None, :, :, None] * w + k[:, None, :, :]                 # [B, T, T, C]
    diag = t[:, None] == t[None, :]
    expo = torch.where(diag[None, :, :, None], u + k[:, None, :, :], expo)
    expo = torch.where((t[None, :] <= t[:, None])[None, :, :, None], expo, torch.tensor(float("-inf")).double())
    p = (expo - expo.amax(dim=2, keepdim=True)).exp()
    return (p * v[:, None]).sum(2) / p.sum(2)


def _channel_vector(v: Value, C) -> bool:
    t = v.type
    dims = [d for d in t.shape if d != 1] if isinstance(t, TensorType) else None
    return dims == [C] and t.shape[-1] == C and t.dtype in FLOATS


def _tests(anchor: Value):
    B, T = anchor.type.shape[:2]

    def is_token(v: Value) -> bool:
        t = v.type
        return isinstance(t, TensorType) and t.rank >= 2 and t.shape[0] == B and t.shape[1] == T

    def head_first(v: Value) -> bool:
        t = v.type
        return isinstance(t, TensorType) and t.rank >= 3 and t.shape[0] == B and t.shape[2] == T

    return is_token, head_first


def _match(graph: Graph, region, runner: RegionRunner):
    """(k, v, (w, log?), (u, log?)) when the region computes WKV, else None."""
    a = region.anchor
    C = a.type.shape[2]
    if len(region.inputs) != 2 or region.extras or region.escapes:
        return None
    if any(x.type != a.type for x in region.inputs):
        return None
    cands = [s for s in region.statics if _channel_vector(s, C)]
    if len(cands) < 2:
        return None
    dtype = torch.float64 if a.type.dtype == "f64" else torch.float32
    alive = None
    for i, env in enumerate(sample_envs(graph, list(a.type.shape), a.type.shape[1], lengths=(3, 17, 40))):
        gen = torch.Generator().manual_seed(2000 + i)
        shape = concrete_shape(a.type, env)
        x0 = (1.5 * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)
        x1 = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        feeds = {id(region.inputs[0]): x0, id(region.inputs[1]): x1}
        got = runner.run(feeds, env, [a] + cands)
        if got is None:
            return None
        out = got[0]
        # a parameter may appear as itself or as its exp (folded e^w, e^u): then its log is meant
        params = [(c, False, t.reshape(-1).double()) for c, t in zip(cands, got[1:])]
        params += [(c, True, t.log()) for c, _, t in params if bool((t > 0).all())]
        if alive is None:
            alive = [(kx, vx, (wc, wl), (uc, ul)) for kx, vx in itertools.permutations(region.inputs)
                     for (wc, wl, _), (uc, ul, _) in itertools.permutations(params, 2) if wc is not uc]
        vals = {(id(c), lg): t for c, lg, t in params}
        alive = [(kx, vx, w, u) for kx, vx, w, u in alive
                 if rel_err(out, wkv_reference(feeds[id(kx)], feeds[id(vx)], vals[(id(w[0]), w[1])],
                                               vals[(id(u[0]), u[1])])) <= TOL]
        if not alive:
            return None
    return alive[0]


def _vector(b: Builder, x: tuple[Value, bool], C) -> Value:
    """A [C] parameter from its static value (and whether the graph holds its exp)."""
    x, is_exp = x
    if list(x.type.shape) != [C]:
        x = b.op("reshape", {"self": x, "shape": [C]})
    return b.op("log", {"self": x}) if is_exp else x


def _shift(b: Builder, x: Value) -> Value:
    """x one step later in time: position t holds token t-1, position 0 zeros."""
    x = b.op("slice", {"self": x, "dim": 1, "start": 0, "end": -1})
    return b.op("constant_pad_nd", {"self": x, "pad": [0, 0, 1, 0], "value": 0.0})


def emit_wkv(b: Builder, k: Value, v: Value, w: tuple[Value, bool], u: tuple[Value, bool]) -> Value:
    """The WKV of [B, T, C] k, v with channel vectors w, u ((value, holds its exp)),
    built from linear_attention."""
    B, T, C = k.type.shape
    w, u = _vector(b, w, C), _vector(b, u, C)
    s = b.op("amax", {"self": k, "dim": [1], "keepdim": True})          # [B, 1, C]: no e^{k - s} overflows
    e = b.op("exp", {"self": b.op("sub", {"self": k, "other": s})})
    ev = b.op("mul", {"self": e, "other": v})
    hist = b.op("stack", {"tensors": [_shift(b, ev), _shift(b, e)], "dim": 3})    # [B, T, C, 2]
    hist = b.op("permute", {"self": hist, "dims": [0, 2, 1, 3]})                  # [B, C, T, 2]: a head per channel
    ones = b.op("ones_like", {"self": b.op("slice", {"self": hist, "dim": 3, "start": 0, "end": 1})})
    gate = b.op("expand", {"self": b.op("view", {"self": w, "size": [1, C, 1]}), "size": [B, C, T]})
    h = b.op("linear_attention", {"q": ones, "k": ones, "v": hist, "gate": gate, "gate_kind": "scalar"})
    h = b.op("permute", {"self": h, "dims": [0, 2, 1, 3]})                        # [B, T, C, 2]
    num, den = (b.op("select", {"self": h, "dim": 3, "index": i}) for i in (0, 1))
    bonus = b.op("exp", {"self": b.op("sub", {"self": b.op("add", {"self": k, "other": u}), "other": s})})
    num = b.op("add", {"self": num, "other": b.op("mul", {"self": bonus, "other": v})})
    den = b.op("add", {"self": den, "other": bonus})
    return b.op("div", {"self": num, "other": den})


def _rewrite(graph: Graph, region, k: Value, v: Value, w, u) -> bool:
    a = region.anchor
    before = {id(n) for n in graph.nodes}
    out = emit_wkv(Builder(graph, a.producer), k, v, w, u)
    if out.type != a.type:
        graph.nodes = [n for n in graph.nodes if id(n) in before]
        return False
    graph.replace_all_uses(a, out)
    dead_code_elimination(graph)
    return True


def fuse_wkv(graph: Graph) -> int:
    """Rewrite every region that computes RWKV's WKV; returns how many."""
    with one_thread():
        return _fuse_wkv(graph)


def _fuse_wkv(graph: Graph) -> int:
    fused, tried = 0, {}
    while True:
        ix = GraphIndex(graph)
        for node in reversed(graph.nodes):
            a = node.outputs[0] if len(node.outputs) == 1 else None
            if a is None or id(a) in tried:
                continue
            tried[id(a)] = a
            if not isinstance(a.type, TensorType) or a.type.rank != 3 or a.type.dtype not in FLOATS:
                continue
            is_token, head_first = _tests(a)
            if not any(id(x) not in ix.static and not is_token(x) for x in node.inputs):
                continue
            try:
                region = find_region(ix, a, is_token, abort=head_first)
            except NoRegion:
                continue
            found = _match(graph, region, RegionRunner(ix, region))
            if found is not None and _rewrite(graph, region, *found):
                fused += 1
                break
        else:
            return fused
