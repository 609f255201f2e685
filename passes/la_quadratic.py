"""The quadratic (parallel) form of linear attention -> one `linear_attention` node.

    o = ((q kᵀ) ⊙ M) v        M[i, j] = 0 for j > i

  M causal 0/1                      -> gate_kind none
  M = gamma ** (i - j) (RetNet)     -> gate_kind scalar, gate = log gamma   (gamma per head or scalar)
  M = exp(G_i - G_j) ⊙ causal,      -> gate_kind scalar, gate = g
      G = cumsum(g) over time (GLA parallel form)

The product is taken apart into scalar factors (into `scale`), data-independent
factors (masks, decay matrices: evaluated by `mask_analysis`), the q·kᵀ
product and at most one exp(G_i - G_j) factor. Zeroing by where/masked_fill
counts as a 0/1 factor; inside the exp a -inf fill does the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikec.ir import Graph, TensorType, Value, torch_dtype

from .fuse_attention import CASTS, SOFTMAX, QK, emit_operand, parse_pv, parse_qk, scalar_factor, strip_casts
from .manager import stat
from .mask_analysis import (MAX_SAMPLE_DECAY, UNKNOWN, MaskEvaluator, MaskInfo, classify_decay, concrete_dim,
                            dropped_values, is_neg_inf_like, merge)
from .registry import register
from .rewrite import Builder, dead_code_elimination, per_head, try_replace


@dataclass
class Factor:
    kind: str                 # mul (a static tensor) | keep (where/masked_fill zeroing)
    value: object
    fill: object = None       # keep: what the dropped positions get
    keep_if: bool = True      # keep: positions survive where value == keep_if
    in_exp: bool = False      # keep: the fill must be -inf (inside exp) rather than 0


def _zeroing(n, ev) -> tuple[Value, Factor] | None:
    """where(c, x, z) / where(c, z, x) / masked_fill(x, m, z) with a static z: (x, factor)."""
    if n.op == "where":
        c, a, o = n.arg("condition"), n.arg("self"), n.arg("other")
        if ev.is_static(o) and isinstance(a, Value) and not ev.is_static(a):
            return a, Factor("keep", c, o, True)
        if ev.is_static(a) and isinstance(o, Value) and not ev.is_static(o):
            return o, Factor("keep", c, a, False)
        return None
    if n.op == "masked_fill" and ev.is_static(n.arg("value")):
        return n.arg("self"), Factor("keep", n.arg("mask"), n.arg("value"), False)
    return None


def _factors(graph: Graph, ev: MaskEvaluator, v: Value):
    """Split a product into (scale, static factors, data-dependent leaves)."""
    scale, statics, leaves, stack = 1.0, [], [], [v]
    while stack:
        x = stack.pop()
        if ev.is_static(x):
            statics.append(Factor("mul", x))
            continue
        n = x.producer
        s = scalar_factor(graph, x)
        if s is not None:
            stack.append(s[0])
            scale *= s[1]
        elif n is not None and n.op == "mul" and all(isinstance(a, Value) for a in (n.arg("self"), n.arg("other"))):
            stack += [n.arg("self"), n.arg("other")]
        elif n is not None and n.op in CASTS:
            stack.append(n.arg("self"))
        elif n is not None and (z := _zeroing(n, ev)) is not None:
            stack.append(z[0])
            statics.append(z[1])
        else:
            leaves.append(x)
    return scale, statics, leaves


def _unsqueezed(v: Value, dim: int) -> Value | None:
    n = v.producer
    if n is None or n.op != "unsqueeze":
        return None
    src = n.arg("self")
    return src if n.arg("dim") % v.type.rank == dim % v.type.rank else None


def _gla_gate(ev: MaskEvaluator, x: Value) -> tuple[Value, list[Factor]] | None:
    """x = exp(G_i - G_j) (possibly with a -inf fill inside), G = cumsum(g, time): (g, factors)."""
    n = x.producer
    if n is None or n.op != "exp":
        return None
    z, extra = n.arg("self"), []
    while z.producer is not None and (zz := _zeroing(z.producer, ev)) is not None:
        z = zz[0]
        zz[1].in_exp = True
        extra.append(zz[1])
    d = z.producer
    if d is None or d.op != "sub" or d.arg("alpha") != 1:
        return None
    gi, gj = _unsqueezed(d.arg("self"), -1), _unsqueezed(d.arg("other"), -2)
    if gi is None or gi is not gj:
        return None
    c = gi.producer
    if c is None or c.op != "cumsum" or c.arg("dim") % gi.type.rank != gi.type.rank - 1 or c.arg("dtype"):
        return None
    return c.arg("self"), extra


def _product_at(ev: MaskEvaluator, factors: list[Factor], env: dict) -> torch.Tensor | None:
    m = torch.ones((), dtype=torch.float64)
    for f in factors:
        t = ev.evaluate(f.value, env)
        if t is None:
            return None
        if f.kind == "mul":
            m = m * t.double()
            continue
        fill = ev.evaluate(f.fill, env)
        if t.dtype != torch.bool or fill is None:
            return None
        keep = t if f.keep_if else ~t
        dropped = dropped_values(fill, keep)
        if not (is_neg_inf_like(dropped) if f.in_exp else bool((dropped == 0).all())):
            return None
        m = m * keep.double()
    return m


def _classify(ev: MaskEvaluator, factors: list[Factor], dims) -> MaskInfo:
    if dims[-1] != dims[-2] or not factors:
        return UNKNOWN
    results = []
    for env in ev.samples(dims[-2:], cap=MAX_SAMPLE_DECAY):
        m = _product_at(ev, factors, env)
        if m is None:
            return UNKNOWN
        L = concrete_dim(dims[-1], env)
        results.append((L, classify_decay(m, L)))
    return merge(results)


def _fuse(graph: Graph, ev: MaskEvaluator, node) -> bool:
    pv = parse_pv(node)
    if pv is None:
        return False
    a, v = pv
    if (p := strip_casts(a).producer) is not None and p.op in SOFTMAX:
        return False
    scale, statics, leaves = _factors(graph, ev, a)
    qk: QK | None = None
    gate, extra = None, []
    for leaf in leaves:
        parsed = parse_qk(graph, leaf) if qk is None else None
        if parsed is not None and leaf.type.shape == a.type.shape:
            qk = parsed
            continue
        g = _gla_gate(ev, leaf) if gate is None else None
        if g is None:
            return False
        gate, extra = g
    if qk is None or qk.rank != node.outputs[0].type.rank:
        return False
    info = _classify(ev, statics + extra, a.type.shape)
    stat(f"mask:{info.kind}")
    if info.kind not in ("causal", "decay") or (gate is not None and info.kind != "causal"):
        return False
    rank = qk.rank
    b = Builder(graph, node)
    q, k, vv = emit_operand(b, qk.q), emit_operand(b, qk.k), emit_operand(b, v)
    lead = tuple(q.type.shape[:-1])                      # [B, H, T] or [N, T]
    if gate is not None:
        if tuple(gate.type.shape) != lead or gate.type.dtype != q.type.dtype:
            return False
    elif info.kind == "decay":
        log_gamma = info.gamma.double().log().to(torch_dtype(q.type.dtype))
        shape = [1] * (rank - 1)
        shape[-2] = log_gamma.numel()                 # varies along the scores' dim -3
        if log_gamma.numel() not in (1, lead[-2]):
            return False
        gate = _expand(b, _constant(graph, node, log_gamma.reshape(shape)), list(lead))
    attrs = {"gate_kind": "none" if gate is None else "scalar", "scale": float(scale * qk.scale)}
    return try_replace(graph, node, lambda b: per_head(
        b, rank, (q, k, vv, gate),
        lambda b, q, k, v, g: b.op("linear_attention", {"q": q, "k": k, "v": v, "gate": g, **attrs})))


def _constant(graph: Graph, anchor, t: torch.Tensor) -> Value:
    new = graph.make_node("constant", {"name": ""}, [TensorType.of(t)], loc=anchor.loc, names=["la.log_gamma"])
    new.args = {"name": new.output.name}       # the fresh value name doubles as the table key
    graph.constants[new.output.name] = t
    graph.insert_before(anchor, new)
    return new.output


def _expand(b: Builder, x: Value, size: list) -> Value:
    return b.op("expand", {"self": x, "size": size})


def fuse_quadratic_linear_attention(graph: Graph) -> int:
    """Rewrite every quadratic masked linear attention in `graph`; returns how many."""
    ev = MaskEvaluator(graph)
    fused = 0
    for node in list(graph.nodes):
        if node.graph is graph and node.op in ("matmul", "bmm", "einsum"):
            fused += _fuse(graph, ev, node)
    if fused:
        dead_code_elimination(graph)
    return fused


@register("fuse-linear-attention-quadratic")
def fuse_linear_attention_quadratic(graph: Graph) -> None:
    """((q kᵀ) ⊙ M) v with a causal, decay or exp(G_i - G_j) mask M -> linear_attention."""
    stat("fused", fuse_quadratic_linear_attention(graph))
