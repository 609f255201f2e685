"""Chunked linear attention (and any other sequence-mixing region that computes it)
-> one `linear_attention` node.

The chunkwise-parallel form has too many spellings to match op by op: chunks
made by reshape, by an index gather (the zoo's `gla_chunk`, which keeps the
chunk count symbolic) or by a Python loop over chunks; intra-chunk decay as
pairwise exp(G_i - G_j), as a masked cumsum (`segsum`) or factorised
(q e^G)(k e^-G)ᵀ; the inter-chunk state carried by a loop or computed for all
chunks at once as a masked product. So recognition is by meaning:

1. *Region (structure).* Every rank-4 result [B, H, T, V] whose producer reads
   something that is not per-token is a candidate output. Walking back from it
   and stopping at per-token values ([B, *, T, *] or [B, *, T]) and static values
   gives the region (`la_region.find_region`). Its per-token data inputs must be
   3 (q, k, v) or 4 (+ a gate); one graph input of shape [B, H, K, V] may be an
   initial state, one region value of that shape used outside the final state.
   A walk that reaches a batch-first [B, T, ...] value (projections, residual
   stream) is given up: a linear attention works on heads.
2. *Roles (semantics).* Each assignment of the inputs to q, k, v, gate that the
   shapes allow, with the gate kinds they allow (3 inputs: none or key-tied,
   4: channel for a [B, H, T, K] gate, scalar for [B, H, T]), is checked by
   running the region on random inputs at several lengths (3, 17, 40, 130, 520,
   clipped to T's range; the traced length when T is static) against
   `linear_attention_reference` in float64. The scale is fitted at the first
   length, snapped to a product of the region's number literals when one is
   within 1e-5, and must hold at every length: max |region - scale * ref| <=
   1e-4 * max |scale * ref|. A final state must equal the reference's.
3. *Rewrite.* q (a literal factor on it goes into `scale`), k, v and the gate
   without their GQA repeat, the initial state when there is one; the region
   is then dead and removed.

Random inputs: q ~ U(-1, 1), k ~ U(0.05, 0.95) (so that a key-tied decay 1 - k
is valid), v ~ N(0, 1), log-decay gates ~ U(-0.6, -0.02), a state ~ N(0, 1),
from a fixed seed. Regions in other dtypes than f32 / f64 are left alone.
A near miss (causal mask off by one, non-causal, decay on the wrong operand, a
state used before its update) computes something else and fails step 2.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from spikec.ir import Graph, TensorType, Value
from spikec.ir.ops_fused import linear_attention_reference

from .fuse_attention import emit_unrepeated
from .la_region import (GraphIndex, NoRegion, RegionRunner, concrete_shape, find_region, one_thread, rel_err,
                        sample_envs)
from .reroll_loops import toposort
from .rewrite import Builder, dead_code_elimination

TOL = 1e-4
SNAP = 1e-5
LENGTHS = (3, 17, 40, 130, 520)     # 520: a state carried over 4 chunks of 128 or 8 of 64
FLOATS = ("f32", "f64")


@dataclass
class Roles:
    q: Value
    k: Value
    v: Value
    gate: Value | None
    kind: str
    init: Value | None
    final: Value | None


def _token_test(anchor: Value):
    B, T = anchor.type.shape[0], anchor.type.shape[2]

    def is_token(v: Value) -> bool:
        t = v.type
        return isinstance(t, TensorType) and t.rank in (3, 4) and t.shape[0] == B and t.shape[2] == T

    def batch_first(v: Value) -> bool:
        t = v.type
        return isinstance(t, TensorType) and t.rank >= 3 and t.shape[0] == B and t.shape[1] == T

    return is_token, batch_first


def _is_candidate(v: Value, static: dict, is_token) -> bool:
    t = v.type
    if not isinstance(t, TensorType) or t.rank != 4 or t.dtype not in FLOATS or len(v.producer.outputs) != 1:
        return False
    return any(id(x) not in static and not is_token(x) for x in v.producer.inputs)


def _roles(region) -> list[Roles]:
    a = region.anchor
    B, H, T, V = a.type.shape
    ins = region.inputs
    if len(ins) not in (3, 4) or len(region.extras) > 1 or len(region.escapes) > 1:
        return []
    if any(not isinstance(x.type, TensorType) or x.type.dtype != a.type.dtype
           for x in ins + region.extras + region.escapes):
        return []
    out = []
    for perm in itertools.permutations(ins):
        q, k, v = perm[:3]
        g = perm[3] if len(perm) == 4 else None
        if q.type.rank != 4 or tuple(q.type.shape[:3]) != (B, H, T):
            continue
        K = q.type.shape[3]
        if k.type.rank != 4 or k.type.shape[3] != K or v.type.rank != 4 or v.type.shape[3] != V:
            continue
        if not all(_divides(x.type.shape[1], H) for x in (k, v)):
            continue
        if g is None:
            kinds = ("none", "key_tied")
        elif g.type.rank == 4 and g.type.shape[3] == K and _divides(g.type.shape[1], H):
            kinds = ("channel",)
        elif g.type.rank == 3 and _divides(g.type.shape[1], H):
            kinds = ("scalar",)
        else:
            continue
        state = (B, H, K, V)
        init = region.extras[0] if region.extras else None
        final = region.escapes[0] if region.escapes else None
        if any(s is not None and (s.type.rank != 4 or tuple(s.type.shape) != state) for s in (init, final)):
            continue
        out += [Roles(q, k, v, g, kind, init, final) for kind in kinds]
    return out


def _divides(h, H) -> bool:
    if h == H:
        return True
    return isinstance(h, int) and isinstance(H, int) and h > 0 and H % h == 0


def _sample(r: Roles, env: dict, gen: torch.Generator, dtype: torch.dtype):
    def shape(v):
        return concrete_shape(v.type, env)

    def uni(v, lo, hi):
        return lo + (hi - lo) * torch.rand(shape(v), generator=gen, dtype=torch.float64)

    q = uni(r.q, -1.0, 1.0)
    k = uni(r.k, 0.05, 0.95)
    v = torch.randn(shape(r.v), generator=gen, dtype=torch.float64)
    g = uni(r.gate, -0.6, -0.02) if r.gate is not None else None
    s0 = torch.randn(shape(r.init), generator=gen, dtype=torch.float64) if r.init is not None else None
    ref_o, ref_s = linear_attention_reference(q, k, v, g, s0, gate_kind=r.kind, output_final_state=True)
    feeds = {id(r.q): q.to(dtype), id(r.k): k.to(dtype), id(r.v): v.to(dtype)}
    if g is not None:
        feeds[id(r.gate)] = g.to(dtype)
    if s0 is not None:
        feeds[id(r.init)] = s0.to(dtype)
    return feeds, ref_o, ref_s


def _snap(fit: float, literals: list[float]) -> float:
    cands = [1.0, *literals, *(a * b for a, b in itertools.combinations(literals, 2))]
    best = min(cands, key=lambda c: abs(fit - c))
    return best if abs(fit - best) <= SNAP * abs(best) else float(f"{fit:.7g}")


def confirm(graph: Graph, region, runner: RegionRunner, roles: list[Roles]) -> tuple[Roles, float] | None:
    """The first role assignment the region computes, with its scale (None if none)."""
    a = region.anchor
    dtype = torch.float64 if a.type.dtype == "f64" else torch.float32
    shapes = [d for x in region.inputs + region.extras for d in x.type.shape] + list(a.type.shape)
    envs = sample_envs(graph, shapes, a.type.shape[2], lengths=LENGTHS)
    alive: list[tuple[Roles, float | None]] = [(r, None) for r in roles]
    for i, env in enumerate(envs):
        survivors = []
        for r, scale in alive:
            gen = torch.Generator().manual_seed(1000 + i)
            feeds, ref_o, ref_s = _sample(r, env, gen, dtype)
            want = [a] + ([r.final] if r.final is not None else [])
            got = runner.run(feeds, env, want)
            if got is None:
                continue
            if scale is None:
                den = float((ref_o * ref_o).sum())
                if den == 0.0:
                    continue
                scale = _snap(float((got[0].double() * ref_o).sum()) / den, region.literals())
            if rel_err(got[0], scale * ref_o) > TOL:
                continue
            if r.final is not None and rel_err(got[1], ref_s) > TOL:
                continue
            survivors.append((r, scale))
        alive = survivors
        if not alive:
            return None
    return alive[0]


def _scaled_q(q: Value, scale: float) -> tuple[Value, float]:
    """q = x * c (or x / c) with a number c: (x, scale * c)."""
    p = q.producer
    if p is None or p.op not in ("mul", "div"):
        return q, scale
    x, c = p.args.get("self"), p.args.get("other")
    if p.op == "mul" and isinstance(x, (int, float)) and isinstance(c, Value):
        x, c = c, x
    if not isinstance(x, Value) or isinstance(c, bool) or not isinstance(c, (int, float)) or c == 0:
        return q, scale
    return x, scale * (c if p.op == "mul" else 1.0 / c)


def rewrite(graph: Graph, region, r: Roles, scale: float) -> bool:
    a = region.anchor
    anchor_node = a.producer
    before = {id(n) for n in graph.nodes}
    b = Builder(graph, anchor_node)
    q, scale = _scaled_q(r.q, scale)
    k, v = emit_unrepeated(b, r.k), emit_unrepeated(b, r.v)
    gate = emit_unrepeated(b, r.gate) if r.gate is not None else None
    args = {"q": q, "k": k, "v": v, "gate": gate, "initial_state": r.init, "gate_kind": r.kind,
            "scale": float(scale), "output_final_state": r.final is not None}
    outs = b.op("linear_attention", args)
    o, s = (outs[0], outs[1]) if r.final is not None else (outs, None)
    if o.type != a.type or (s is not None and s.type != r.final.type):
        graph.nodes = [n for n in graph.nodes if id(n) in before]
        return False
    graph.replace_all_uses(a, o)
    if s is not None:
        graph.replace_all_uses(r.final, s)
        toposort(graph)             # a final-state user may sit before the old output
    dead_code_elimination(graph)
    return True


def fuse_chunked_linear_attention(graph: Graph) -> int:
    """Rewrite every region that computes a linear attention; returns how many."""
    with one_thread():
        return _fuse_chunked_linear_attention(graph)


def _fuse_chunked_linear_attention(graph: Graph) -> int:
    fused, tried = 0, {}
    while True:
        ix = GraphIndex(graph)
        for node in reversed(graph.nodes):        # outermost first: the padded result is inside
            a = node.outputs[0] if len(node.outputs) == 1 else None
            if a is None or id(a) in tried:
                continue
            tried[id(a)] = a                   # keep it alive: ids stay unique
            if not isinstance(a.type, TensorType) or a.type.rank != 4:
                continue
            is_token, batch_first = _token_test(a)
            if not _is_candidate(a, ix.static, is_token):
                continue
            try:
                region = find_region(ix, a, is_token, abort=batch_first)
            except NoRegion:
                continue
            roles = _roles(region)
            if not roles:
                continue
            found = confirm(graph, region, RegionRunner(ix, region), roles)
            if found is not None and rewrite(graph, region, *found):
                fused += 1
                break                           # the graph changed: recompute the analyses
        else:
            return fused
