"""fuse-attention: softmax(q kᵀ · scale + mask) v  ->  attention / sliding_window_attention.

Anchored at the `P @ v` product (matmul, bmm or einsum) whose P is a softmax
over the last axis. Walking up from the softmax input we strip casts, scalar
scales (mul/div by a number) and mask applications (where / masked_fill with
-inf, additive 0/-inf bias) until the `q @ kᵀ` product. The mask terms must be
data-independent; `mask_analysis` evaluates them at a few lengths and says
causal, band(w), or something we do not fuse. GQA `repeat_kv`
(unsqueeze -> expand -> view, or repeat_interleave on dim 1) is folded into
the fused op, which repeats heads itself. `scaled_dot_product_attention`
without dropout maps directly.

The helpers `parse_qk`, `parse_pv`, `emit_operand` are shared with
`la_quadratic` (the linear-attention form of the same products).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikec.ir import Graph, Value

from .manager import stat
from .mask_analysis import (UNKNOWN, MaskEvaluator, MaskInfo, classify_allowed, concrete_dim, dropped_values,
                            is_neg_inf_like, merge)
from .registry import register
from .rewrite import Builder, dead_code_elimination, per_head, try_replace

CASTS = ("_to_copy", "to")
SOFTMAX = ("softmax", "_softmax", "_safe_softmax")
VIEWS = ("view", "reshape", "_unsafe_view")


# -- operand helpers (shared with la_quadratic) -----------------------------------
def scalar_value(graph: Graph, a) -> float | None:
    """A python number, or a one-element constant tensor, as a float."""
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return float(a)
    if isinstance(a, Value) and a.producer is not None and a.producer.op == "constant":
        t = graph.constants.get(a.producer.args["name"])
        if isinstance(t, torch.Tensor) and t.numel() == 1 and t.device.type != "meta" and t.is_floating_point():
            return float(t)
    return None


def scalar_factor(graph: Graph, v: Value) -> tuple[Value, float] | None:
    """v = x * c or x / c with a scalar c: (x, factor)."""
    n = v.producer
    if n is None or n.op not in ("mul", "div"):
        return None
    a, b = n.arg("self"), n.arg("other")
    if n.op == "mul":
        for x, c in ((a, b), (b, a)):
            f = scalar_value(graph, c)
            if f is not None and isinstance(x, Value) and x.type == v.type:
                return x, f
        return None
    f = scalar_value(graph, b)
    if n.arg("rounding_mode") is None and f not in (None, 0.0) and isinstance(a, Value) and a.type == v.type:
        return a, 1.0 / f
    return None


def strip_casts(v: Value) -> Value:
    while v.producer is not None and v.producer.op in CASTS:
        v = v.producer.arg("self")
    return v


def _perm_of(n, rank: int) -> list[int] | None:
    if n.op == "permute":
        return [d % rank for d in n.arg("dims")]
    if n.op == "transpose":
        dims = list(range(rank))
        a, b = n.arg("dim0") % rank, n.arg("dim1") % rank
        dims[a], dims[b] = dims[b], dims[a]
        return dims
    return None


@dataclass
class Operand:
    """The tensor permute(value, perm) (perm None: value itself), times `scale`."""
    value: Value
    perm: list[int] | None = None
    scale: float = 1.0


def peel(graph: Graph, v: Value, perm: list[int] | None, *, through_permutes: bool) -> Operand:
    """Strip scalar factors (and permutes) off v; the wanted tensor is permute(v, perm)."""
    scale = 1.0
    rank = v.type.rank
    while v.producer is not None:
        s = scalar_factor(graph, v)
        if s is not None:
            v, f = s
            scale *= f
            continue
        p = _perm_of(v.producer, rank) if through_permutes else None
        if p is None:
            break
        perm = [p[i] for i in (perm if perm is not None else range(rank))]
        v = v.producer.arg("self")
    if perm is not None and perm == list(range(rank)):
        perm = None
    return Operand(v, perm, scale)


def _swap_last(rank: int) -> list[int]:
    return [*range(rank - 2), rank - 1, rank - 2]


def _einsum_specs(n):
    eq = n.arg("equation").replace(" ", "")
    if "->" not in eq or "." in eq or len(n.arg("tensors")) != 2:
        return None
    ins, out = eq.split("->")
    parts = ins.split(",")
    if len(parts) != 2 or len(set(out)) != len(out):
        return None
    return parts[0], parts[1], out


def _spec_perm(spec: str, want: str) -> list[int] | None:
    if sorted(spec) != sorted(want) or len(set(spec)) != len(spec):
        return None
    return [spec.index(c) for c in want]


@dataclass
class QK:
    """scores = (q · kᵀ) * scale with q, k as [..., T, D]."""
    q: Operand
    k: Operand
    scale: float
    rank: int


def parse_qk(graph: Graph, v: Value) -> QK | None:
    n = v.producer
    if n is None or v.type.rank not in (3, 4):
        return None
    rank = v.type.rank
    if n.op in ("matmul", "bmm"):
        a, b = n.arg("self"), n.arg("other" if n.op == "matmul" else "mat2")
        if not (isinstance(a, Value) and isinstance(b, Value) and a.type.rank == b.type.rank == rank
                and a.type.shape[:-2] == b.type.shape[:-2] == v.type.shape[:-2]):
            return None
        q = peel(graph, a, None, through_permutes=False)
        k = peel(graph, b, _swap_last(rank), through_permutes=True)
        return QK(Operand(q.value), Operand(k.value, k.perm), q.scale * k.scale, rank)
    if n.op == "einsum":
        specs = _einsum_specs(n)
        if specs is None:
            return None
        sa, sb, out = specs
        batch, i, j = out[:-2], out[-2], out[-1]
        d = set(sa) - set(out)
        if len(out) != rank or len(d) != 1:
            return None
        d = d.pop()
        qp, kp = _spec_perm(sa, batch + i + d), _spec_perm(sb, batch + j + d)
        a, b = n.arg("tensors")
        if qp is None or kp is None or a.type.rank != rank or b.type.rank != rank or any(
                a.type.shape[sa.index(c)] != b.type.shape[sb.index(c)] for c in batch):
            return None                    # no broadcasting over batch dims
        q = peel(graph, a, qp, through_permutes=False)
        k = peel(graph, b, kp, through_permutes=True)
        ident = list(range(rank))
        return QK(Operand(q.value, None if q.perm == ident else q.perm),
                  Operand(k.value, None if k.perm == ident else k.perm), q.scale * k.scale, rank)
    return None


def parse_pv(node) -> tuple[Value, Operand] | None:
    """node = P @ v: (P, v operand) with P [..., Tq, Tk] and v [..., Tk, Dv]."""
    out = node.outputs[0] if len(node.outputs) == 1 else None
    if out is None or out.type.rank not in (3, 4):
        return None
    rank = out.type.rank
    if node.op in ("matmul", "bmm"):
        p, v = node.arg("self"), node.arg("other" if node.op == "matmul" else "mat2")
        if not (isinstance(p, Value) and isinstance(v, Value) and p.type.rank == v.type.rank == rank
                and p.type.shape[:-2] == v.type.shape[:-2] == out.type.shape[:-2]):
            return None
        return p, Operand(v)
    if node.op == "einsum":
        specs = _einsum_specs(node)
        if specs is None:
            return None
        sa, sb, o = specs
        batch, i, e = o[:-2], o[-2], o[-1]
        j = set(sa) - set(o)
        if len(o) != rank or len(j) != 1:
            return None
        j = j.pop()
        p, v = node.arg("tensors")
        vp = _spec_perm(sb, batch + j + e)
        if sa != batch + i + j or vp is None or v.type.rank != rank or any(
                p.type.shape[sa.index(c)] != v.type.shape[sb.index(c)] for c in batch):
            return None
        return p, Operand(v, None if vp == list(range(rank)) else vp)
    return None


def emit_operand(b: Builder, x: Operand) -> Value:
    if x.perm is None:
        return x.value
    return b.op("permute", {"self": x.value, "dims": x.perm})


def unrepeat(v: Value) -> Value | None:
    """The [B, Hkv, T, D] source of a GQA repeat_kv'd [B, H, T, D] value, or None."""
    n = v.producer
    if n is None or v.type.rank != 4:
        return None
    if n.op == "repeat_interleave":
        src = n.arg("self")
        if isinstance(n.arg("repeats"), int) and n.arg("dim") in (1, -3) and isinstance(src, Value) \
                and src.type.rank == 4:
            return src
        return None
    if n.op not in VIEWS:
        return None
    e = n.arg("self").producer
    if e is None or e.op != "expand":
        return None
    u = e.arg("self").producer
    if u is None or u.op != "unsqueeze" or u.arg("dim") % 5 != 2:
        return None
    src = u.arg("self")
    B, Hkv, T, D = src.type.shape
    es = e.outputs[0].type.shape
    if (es[0], es[1], es[3], es[4]) != (B, Hkv, T, D) or v.type.shape != (B, Hkv * es[2], T, D):
        return None
    return src


def emit_unrepeated(b: Builder, v: Value) -> Value:
    """v without its repeat_kv; a float cast between them is moved onto the smaller tensor."""
    cast = v.producer if v.producer is not None and v.producer.op == "_to_copy" else None
    inner = cast.arg("self") if cast is not None and cast.arg("dtype") is not None else v
    src = unrepeat(inner)
    if src is None:
        return v
    if inner is not v:
        return b.op("_to_copy", {"self": src, "dtype": cast.arg("dtype")})
    return src


# -- the softmax side ------------------------------------------------------------
@dataclass
class MaskTerm:
    kind: str            # where | fill | add
    mask: object         # condition (where), mask (fill) or bias (add)
    fill: object = None  # the value put where scores are dropped
    keep_if: bool = True # where: scores survive where the condition is keep_if


def parse_scores(graph: Graph, ev: MaskEvaluator, s: Value) -> tuple[Value, float, list[MaskTerm]] | None:
    """Walk from a softmax input to the q·kᵀ product: (product, scale, mask terms)."""
    scale, terms = 1.0, []
    while s.producer is not None:
        n = s.producer
        if n.op in CASTS:
            s = n.arg("self")
            continue
        f = scalar_factor(graph, s)
        if f is not None:
            if f[1] <= 0:      # a negative scale would turn -inf into +inf
                return None
            s, scale = f[0], scale * f[1]
            continue
        if n.op == "where":
            c, a, o = n.arg("condition"), n.arg("self"), n.arg("other")
            if ev.is_static(o) and isinstance(a, Value) and not ev.is_static(a):
                terms.append(MaskTerm("where", c, o, True))
                s = a
            elif ev.is_static(a) and isinstance(o, Value) and not ev.is_static(o):
                terms.append(MaskTerm("where", c, a, False))
                s = o
            else:
                return None
            continue
        if n.op == "masked_fill":
            terms.append(MaskTerm("fill", n.arg("mask"), n.arg("value")))
            s = n.arg("self")
            continue
        if n.op == "add" and n.arg("alpha") == 1:
            a, o = n.arg("self"), n.arg("other")
            if isinstance(a, Value) and not ev.is_static(a) and ev.is_static(o):
                terms.append(MaskTerm("add", o))
                s = a
            elif isinstance(o, Value) and not ev.is_static(o) and ev.is_static(a):
                terms.append(MaskTerm("add", a))
                s = o
            else:
                return None
            continue
        break
    return s, scale, terms


def allowed_at(ev: MaskEvaluator, terms: list[MaskTerm], env: dict) -> torch.Tensor | None:
    """The combined boolean 'may attend' mask at one binding, or None if it is not a 0/-inf mask."""
    allowed = torch.ones((), dtype=torch.bool)
    for t in terms:
        m = ev.evaluate(t.mask, env)
        if m is None:
            return None
        if t.kind == "add":
            if not m.is_floating_point() or not bool(((m == 0) | (m <= -1e9)).all()):
                return None
            keep = m == 0
        else:
            fill = ev.evaluate(t.fill, env)
            if m.dtype != torch.bool or fill is None:
                return None
            keep = m if (t.kind == "where" and t.keep_if) else ~m
            if not is_neg_inf_like(dropped_values(fill, keep)):
                return None
        allowed = allowed & keep
    return allowed


def classify_terms(ev: MaskEvaluator, terms: list[MaskTerm], dims) -> MaskInfo:
    if dims[-1] != dims[-2]:
        return UNKNOWN
    results = []
    for env in ev.samples(dims[-2:]):
        allowed = allowed_at(ev, terms, env)
        if allowed is None:
            return UNKNOWN
        L = concrete_dim(dims[-1], env)
        results.append((L, classify_allowed(allowed, L)))
    return merge(results)


# -- the rewrite -------------------------------------------------------------------
def _build(graph: Graph, anchor, op: str, q: Value, k: Value, v: Value, attrs: dict, rank: int) -> bool:
    """Insert the fused op before `anchor` and redirect its result; undo on a type mismatch."""
    return try_replace(graph, anchor, lambda b: per_head(
        b, rank, (q, k, v), lambda b, q, k, v: b.op(op, {"q": q, "k": k, "v": v, **attrs})))


def _fuse_softmax(graph: Graph, ev: MaskEvaluator, node) -> bool:
    pv = parse_pv(node)
    if pv is None:
        return False
    p, v = pv
    sm = strip_casts(p).producer
    if sm is None or sm.op not in SOFTMAX:
        return False
    x = sm.arg("self")
    if sm.arg("dim") % x.type.rank != x.type.rank - 1:
        return False                       # softmax over the keys only
    parsed = parse_scores(graph, ev, x)
    if parsed is None:
        return False
    s, scale, terms = parsed
    qk = parse_qk(graph, s)
    if qk is None or qk.rank != node.outputs[0].type.rank:
        return False
    dims = s.type.shape
    info = classify_terms(ev, terms, dims) if terms else MaskInfo("none")
    stat(f"mask:{info.kind}")
    if info.kind == "causal":
        op, attrs = "attention", {"causal": True}
    elif info.kind == "band":
        op, attrs = "sliding_window_attention", {"window": info.window}
    elif info.kind == "none":          # no mask: any query/key lengths
        op, attrs = "attention", {"causal": False}
    else:
        return False
    attrs["scale"] = float(scale * qk.scale)
    b = Builder(graph, node)
    q, k, vv = emit_operand(b, qk.q), emit_operand(b, qk.k), emit_operand(b, v)
    if qk.rank == 4:
        k, vv = emit_unrepeated(b, k), emit_unrepeated(b, vv)
    return _build(graph, node, op, q, k, vv, attrs, qk.rank)


def _fuse_sdpa(graph: Graph, ev: MaskEvaluator, node) -> bool:
    q, k, v = node.arg("query"), node.arg("key"), node.arg("value")
    mask = node.arg("attn_mask")
    if node.arg("dropout_p") != 0.0 or q.type.rank != 4:
        return False
    if (mask is not None or node.arg("is_causal")) and q.type.shape[-2] != k.type.shape[-2]:
        return False                   # torch aligns a causal mask top-left, the fused op bottom-right
    if mask is not None:
        if node.arg("is_causal"):
            return False
        term = MaskTerm("where", mask, float("-inf"), True) if mask.type.dtype == "bool" else MaskTerm("add", mask)
        info = classify_terms(ev, [term], (q.type.shape[-2], k.type.shape[-2]))
    else:
        info = MaskInfo("causal" if node.arg("is_causal") else "none")
    scale = node.arg("scale")
    if scale is None:
        D = q.type.shape[-1]
        if not isinstance(D, int):
            return False
        scale = D ** -0.5
    if info.kind in ("causal", "none"):
        op, attrs = "attention", {"causal": info.kind == "causal"}
    elif info.kind == "band":
        op, attrs = "sliding_window_attention", {"window": info.window}
    else:
        return False
    attrs["scale"] = float(scale)
    return _build(graph, node, op, q, k, v, attrs, 4)


@register("fuse-attention")
def fuse_attention(graph: Graph) -> None:
    """Softmax attention with a causal or band mask -> attention / sliding_window_attention."""
    ev = MaskEvaluator(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.graph is not graph:
            continue
        if node.op == "scaled_dot_product_attention":
            ok = _fuse_sdpa(graph, ev, node)
        elif node.op in ("matmul", "bmm", "einsum"):
            ok = _fuse_softmax(graph, ev, node)
        else:
            continue
        fused += ok
    stat("fused", fused)
    dead_code_elimination(graph)
