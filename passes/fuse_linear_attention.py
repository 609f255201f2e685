"""fuse-linear-attention: a linear-attention recurrence -> one `linear_attention` node.

The pass first rerolls unrolled Python loops over time (`reroll-loops`, run
here so that a loop is only rerolled when its body is recognised; other loops
stay unrolled), then recognises `scan` nodes whose `combine` body computes, per
step, with S the single carry of rank R = 2 + batch rank (batch: [B] or [B, H]):

    S' = decay ⊙ S + k ⊗ v        o = (q · scale) contracted with S' over k's axis

Recognition is by the meaning of the body, not by op names alone. Every
operand is traced back through broadcasting (unsqueeze / expand / size-1 view)
to a per-step input of the scan, recording which axis of S each of its axes
lands on:

- the update is an `add` of a term that is exactly S, or S multiplied by a
  decay that does not involve S, and an outer product (`mul`, `matmul` with a
  size-1 contraction, or an `einsum` without contraction) of two per-step
  vectors on the two state axes, batch axes aligned;
- the output contracts a per-step vector with S' (the *new* state) over one
  state axis (`matmul` of an unsqueezed vector on either side, or `einsum`):
  that vector is q, the outer-product operand on the same axis is k, the
  other one v. The state axes may be [K, V] or [V, K];
- the decay is exp(g) with g on k's axis (`channel`), exp(g) constant over
  both state axes (`scalar`), 1 - k on k's axis with the same k (`key_tied`),
  or absent (`none`); a decay on v's axis, a sum instead of a product, a
  decay on the outer product, or a contraction over v's axis is not linear
  attention and is left alone;
- q may be scaled by number literals (inside or before the loop): folded
  into `scale`. k/v/gate repeated from fewer heads (`repeat_kv`: unsqueeze,
  expand, view; or `repeat_interleave` on dim 1) pass their un-repeated
  tensors (the op repeats heads itself, grouped-query attention);
- a zero initial state (full / zeros / an all-zero constant) is dropped, any
  other is passed; `output_final_state` is set when the final state is used.

Layout glue (permute / reshape) converts the time-major scan inputs to the
op's head-first [B, H, T, D] layout and back, so the rest of the graph is
unchanged; canonicalize afterwards folds the glue away.

After the loops, the same pass fuses chunked forms (`la_chunked`), RWKV's WKV
(`la_wkv`) and quadratic masked forms (`la_quadratic`), in that order (a
chunk's intra part is itself a masked product), and finally turns channel gates
equal to log(1 - k) into key-tied ones (`la_key_tied`). Options `chunked`,
`wkv`, `quadratic` switch those off. Last, `lif` (on by default) runs fuse-lif, so
that a spiking model's multi-step neurons, its other loop over time, are fused too.

To make the sequence length symbolic again after fusing a loop traced at a
fixed length, see `spikec.passes.symbolic_length.trace_symbolic` (re-exported
here).
"""
from __future__ import annotations

import re

import torch

from spikec.ir import Graph, Node, TensorType, Value

from .canonicalize import RULES as CANON_RULES
from .manager import stat
from .registry import register
from .reroll_loops import reroll
from .rewrite import Builder, apply_patterns, dead_code_elimination
from .symbolic_length import trace_symbolic, unify_lengths  # noqa: F401  (public here too)

_RESHAPES = ("view", "reshape", "_unsafe_view")


class _NoMatch(Exception):
    pass


def _need(cond, why: str = ""):
    if not cond:
        raise _NoMatch(why)


def _num(a) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool)


def _strip(v):
    """Copies are the same value (torch's scan bodies return `S.clone()`)."""
    while isinstance(v, Value) and v.producer is not None and v.producer.op in ("clone", "alias", "detach"):
        v = v.producer.args["self"]
    return v


def _nonunit(shape):
    return [(i, d) for i, d in enumerate(shape) if d != 1]


# -- tracing an operand back to a per-step input ------------------------------
class Leaf:
    """A per-step input broadcast into the state frame: frame axis of each of its axes
    (None for a size-1 axis whose place a view dropped), the unary ops passed and
    the number-literal scale collected on the way."""

    def __init__(self, value: Value, axes: list, ops: list[str], scale: float):
        self.value, self.axes, self.ops, self.scale = value, axes, ops, scale


def trace_leaf(v: Value, rank: int, region: Graph, *, through=("exp",), scale_ok=False) -> Leaf:
    """Follow `v` (right-aligned in a rank-`rank` frame) back to a region input."""
    axes = list(range(rank - v.type.rank, rank))
    ops, scale = [], 1.0
    while v.producer is not None:
        p = v.producer
        if p.op == "unsqueeze":
            d = p.args["dim"] % v.type.rank
            axes = axes[:d] + axes[d + 1:]
            v = p.args["self"]
        elif p.op == "expand":
            src = p.args["self"]
            extra = v.type.rank - src.type.rank
            _need(all(s == 1 or s == t for s, t in zip(src.type.shape, v.type.shape[extra:])), "expand")
            axes, v = axes[extra:], src
        elif p.op in _RESHAPES:
            src = p.args["self"]
            a, b = _nonunit(src.type.shape), _nonunit(v.type.shape)
            _need([d for _, d in a] == [d for _, d in b], "view changes more than size-1 axes")
            new = [None] * src.type.rank
            for (i, _), (j, _) in zip(a, b):
                new[i] = axes[j]
            axes, v = new, src
        elif p.op in ("permute", "transpose"):        # axes relabelled: follow them
            src = p.args["self"]
            r = src.type.rank
            if p.op == "permute":
                perm = [d % r for d in p.args["dims"]]
            else:
                perm = list(range(r))
                i, j = p.args["dim0"] % r, p.args["dim1"] % r
                perm[i], perm[j] = perm[j], perm[i]
            new = [None] * r
            for i, d in enumerate(perm):
                new[d] = axes[i]
            axes, v = new, src
        elif p.op in through and len(p.outputs) == 1:
            ops.append(p.op)
            v = p.args["self"]
        elif scale_ok and p.op in ("mul", "div"):
            x, c = p.args["self"], p.args["other"]
            if p.op == "mul" and _num(x) and isinstance(c, Value):
                x, c = c, x
            _need(isinstance(x, Value) and _num(c), "scale by a tensor")
            scale = scale * (c if p.op == "mul" else 1.0 / c)
            v = x
        else:
            break
    _need(v in region.inputs, "operand is computed, not a per-step input")
    return Leaf(v, axes, ops, scale)


def _is_vector(leaf: Leaf, bs: int, state: TensorType) -> int:
    """The state axis a batch-aligned vector lies on."""
    _need(leaf.value.type.rank == bs + 1, "not a vector per batch entry")
    _need(list(leaf.value.type.shape[:bs]) == list(state.shape[:bs]), "batch shape differs from the state's")
    _need(leaf.axes[:bs] == list(range(bs)) or all(
        a == i or (a is None and leaf.value.type.shape[i] == 1) for i, a in enumerate(leaf.axes[:bs])), "batch axes")
    ax = leaf.axes[bs]
    _need(ax in (bs, bs + 1), "vector not on a state axis")
    _need(leaf.value.type.shape[bs] == state.shape[ax], "vector length differs from its state axis")
    return ax


def _einsum_axes(eq: str, ranks: list[int]):
    eq = eq.replace(" ", "")
    _need("->" in eq, "implicit einsum output")
    ins, out = eq.split("->")
    terms = ins.split(",")
    _need(len(terms) == len(ranks), "einsum arity")
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq]
    nell = max((r - len(t.replace("...", "")) for t, r in zip(terms, ranks) if "..." in t), default=0)
    ell = "".join(free[:nell])
    terms = [t.replace("...", ell[nell - (r - len(t.replace("...", ""))):]) for t, r in zip(terms, ranks)]
    out = out.replace("...", ell)
    _need(all(re.fullmatch(r"[a-zA-Z]*", t) for t in terms + [out]), "einsum equation")
    return terms, out


# -- the body -----------------------------------------------------------------
class Match:
    def __init__(self):
        self.q = self.k = self.v = self.gate = None       # region inputs
        self.gate_kind, self.scale = "none", 1.0
        self.k_axis = None
        self.bs = 0


def _outer(term: Value, rank: int, region: Graph):
    """k ⊗ v: two per-step vectors on the two state axes."""
    p = term.producer
    _need(p is not None, "no outer product")
    if p.op == "mul" or (p.op == "matmul" and p.args["self"].type.rank >= 2 and p.args["other"].type.rank >= 2
                         and p.args["self"].type.shape[-1] == 1 and p.args["other"].type.shape[-2] == 1):
        a, b = p.args["self"], p.args["other"]
        _need(isinstance(a, Value) and isinstance(b, Value), "outer product with a number")
        return trace_leaf(a, rank, region, through=()), trace_leaf(b, rank, region, through=())
    if p.op == "einsum" and len(p.args["tensors"]) == 2:
        a, b = p.args["tensors"]
        (ta, tb), out = _einsum_axes(p.args["equation"], [a.type.rank, b.type.rank])
        _need(set(ta) | set(tb) <= set(out) and len(out) == rank, "einsum contracts")
        la = Leaf(a, [out.index(c) for c in ta], [], 1.0)
        lb = Leaf(b, [out.index(c) for c in tb], [], 1.0)
        _need(a in region.inputs and b in region.inputs, "einsum of computed operands")
        return la, lb
    raise _NoMatch("no outer product")


def _decay(term: Value, S: Value, rank: int, region: Graph):
    """('none', None) for S itself, else (kind, leaf) for decay ⊙ S."""
    term = _strip(term)
    if term is S:
        return "none", None
    p = term.producer
    _need(p is not None and p.op == "mul", "state term is not decay * S")
    a, b = _strip(p.args["self"]), _strip(p.args["other"])
    d = b if a is S else a if b is S else None
    _need(isinstance(d, Value) and d is not S, "state term is not decay * S")
    dp = d.producer
    if dp is not None and dp.op in ("sub", "rsub"):      # 1 - k
        one, x = (dp.args["self"], dp.args["other"]) if dp.op == "sub" else (dp.args["other"], dp.args["self"])
        _need(_num(one) and one == 1 and dp.arg("alpha") == 1 and isinstance(x, Value), "decay is not 1 - k")
        return "key_tied", trace_leaf(x, rank, region, through=())
    leaf = trace_leaf(d, rank, region, through=("exp",))
    _need(leaf.ops == ["exp"], "decay is not exp(g)")
    return "exp", leaf


def _query(y: Value, S1: Value, rank: int, region: Graph):
    """o = q contracted with S' over one state axis: (q leaf, contracted axis)."""
    while y.producer is not None and (y.producer.op == "squeeze" or y.producer.op in _RESHAPES
                                      or (y.producer.op == "select" and y.producer.args["self"].type.shape[
                                          y.producer.args["dim"]] == 1)):        # x[:, 0] of a size-1 axis
        src = y.producer.args["self"]
        _need([d for _, d in _nonunit(src.type.shape)] == [d for _, d in _nonunit(y.type.shape)], "output reshape")
        y = src
    p = y.producer
    _need(p is not None, "no query contraction")
    if p.op == "matmul":
        a, b = _strip(p.args["self"]), _strip(p.args["other"])
        if b is S1 and a is not S1:        # [.., 1, K] @ S'[.., K, V]: contracts axis R-2
            _need(a.type.rank >= 2 and a.type.shape[-2] == 1, "query is not a row vector")
            leaf = trace_leaf(a, rank, region, through=(), scale_ok=True)
            _need(leaf.axes[-1] == rank - 1, "query placement")
            leaf.axes = leaf.axes[:-1] + [rank - 2]
            return leaf, rank - 2
        if a is S1 and b is not S1:        # S'[.., V, K] @ [.., K, 1]: contracts axis R-1
            _need(b.type.rank >= 2 and b.type.shape[-1] == 1, "query is not a column vector")
            leaf = trace_leaf(b, rank, region, through=(), scale_ok=True)
            _need(leaf.axes[-1] == rank - 2, "query placement")
            leaf.axes = leaf.axes[:-1] + [rank - 1]
            return leaf, rank - 1
    if p.op == "einsum" and len(p.args["tensors"]) == 2:
        a, b = (_strip(t) for t in p.args["tensors"])
        qv, first = (a, True) if b is S1 else (b, False) if a is S1 else (None, None)
        _need(qv is not None and qv is not S1, "einsum without the state")
        terms, out = _einsum_axes(p.args["equation"], [a.type.rank, b.type.rank])
        tq, ts = (terms[0], terms[1]) if first else (terms[1], terms[0])
        contracted = [c for c in tq if c in ts and c not in out]
        _need(len(contracted) == 1 and len(ts) == rank and set(tq) <= set(ts), "einsum is not q·S")
        leaf = trace_leaf(qv, len(tq), region, through=(), scale_ok=True)
        leaf.axes = [ts.index(tq[a]) if a is not None else None for a in leaf.axes]
        return leaf, ts.index(contracted[0])
    raise _NoMatch("no query contraction")


def match_scan(scan: Node) -> Match | None:
    """The linear-attention reading of a scan, or None."""
    try:
        return _match(scan)
    except _NoMatch:
        return None


def _match(scan: Node) -> Match:
    region = scan.regions[0]
    n_carry, n_xs = len(scan.args["init"]), len(scan.args["xs"])
    _need(n_carry == 1 and len(region.outputs) == 2, "one state and one output")
    S = region.inputs[0]
    xs_inputs = region.inputs[1:1 + n_xs]
    st = S.type
    _need(isinstance(st, TensorType) and st.rank in (3, 4), "state rank")
    rank, m = st.rank, Match()
    m.bs = bs = rank - 2
    S1, y = (_strip(v) for v in region.outputs)
    up = S1.producer
    _need(up is not None and up.op == "add" and up.args.get("alpha", 1) == 1, "update is not a sum")
    last = None
    for dterm, kvterm in ((up.args["self"], up.args["other"]), (up.args["other"], up.args["self"])):
        try:
            kind, dleaf = _decay(dterm, S, rank, region)
            la, lb = _outer(kvterm, rank, region)
            break
        except _NoMatch as e:
            last = e
    else:
        raise last
    ax_a, ax_b = _is_vector(la, bs, st), _is_vector(lb, bs, st)
    _need(ax_a != ax_b, "outer product of two vectors on the same axis")
    qleaf, k_axis = _query(y, S1, rank, region)
    _need(_is_vector(qleaf, bs, st) == k_axis, "query axis")
    kleaf, vleaf = (la, lb) if ax_a == k_axis else (lb, la)
    m.q, m.k, m.v, m.scale, m.k_axis = qleaf.value, kleaf.value, vleaf.value, qleaf.scale, k_axis
    if kind == "key_tied":
        _need(dleaf.value is m.k and _is_vector(dleaf, bs, st) == k_axis, "1 - k with another k")
        m.gate_kind = "key_tied"
    elif kind == "exp":
        g = dleaf.value
        if g.type.rank == bs + 1:
            _need(_is_vector(dleaf, bs, st) == k_axis, "decay is not on the key axis")
            m.gate_kind = "channel"
        else:
            _need(g.type.rank == bs and list(g.type.shape) == list(st.shape[:bs])
                  and dleaf.axes == list(range(bs)), "decay is not per head")
            m.gate_kind = "scalar"
        m.gate = g
    for x in (m.q, m.k, m.v, m.gate):
        _need(x is None or x in xs_inputs, "operand is not a per-step slice")
    return m


# -- the replacement ----------------------------------------------------------
def _permute(b: Builder, v: Value, perm: list[int]) -> Value:
    """permute, composed with a producing permute and dropped when the identity."""
    if v.producer is not None and v.producer.op == "permute":
        inner = v.producer.args["dims"]
        v, perm = v.producer.args["self"], [inner[i] for i in perm]
    if perm == list(range(len(perm))):
        return v
    return b.op("permute", {"self": v, "dims": perm})


def _unrepeat(v: Value) -> Value:
    """x when v repeats each head of x (repeat_kv or repeat_interleave on dim 1)."""
    p = v.producer
    if p is None:
        return v
    if p.op == "repeat_interleave" and p.arg("dim") == 1 and isinstance(p.args.get("repeats"), int):
        return p.args["self"]
    if p.op in _RESHAPES and v.type.rank == 4:
        e = p.args["self"].producer
        if e is not None and e.op == "expand" and e.args["self"].producer is not None \
                and e.args["self"].producer.op == "unsqueeze":
            u = e.args["self"].producer
            x = u.args["self"]
            B, Hkv, T, D = x.type.shape if x.type.rank == 4 else (None,) * 4
            if (x.type.rank == 4 and u.args["dim"] % 5 == 2 and e.output.type.rank == 5
                    and list(e.output.type.shape[:2]) == [B, Hkv] and list(e.output.type.shape[3:]) == [T, D]
                    and list(v.type.shape) == [B, Hkv * e.output.type.shape[2], T, D]):
                return x
    return v


def _head_first(b: Builder, xt: Value, bs: int) -> Value:
    """Time-major [T, *batch, (D)] -> [B, H, T, (D)]."""
    r = xt.type.rank
    perm = list(range(1, bs + 1)) + [0] + list(range(bs + 1, r))
    out = _permute(b, xt, perm)
    if bs == 1:
        out = b.op("unsqueeze", {"self": out, "dim": 1})
    return out


def _is_zero(v: Value, graph: Graph) -> bool:
    p = v.producer
    if p is None:
        return False
    if p.op in ("zeros", "zeros_like"):
        return True
    if p.op in ("full", "full_like", "fill") and _num(p.args.get("fill_value", p.args.get("value"))):
        return p.args.get("fill_value", p.args.get("value")) == 0
    if p.op == "constant":
        t = graph.constants.get(p.args["name"])
        return isinstance(t, torch.Tensor) and t.device.type != "meta" and not bool(t.any())
    return False


def replace_scan(graph: Graph, scan: Node, m: Match, final_used: bool) -> None:
    b = Builder(graph, scan)
    xs = scan.args["xs"]
    region = scan.regions[0]
    xs_of = {id(region.inputs[1 + i]): xs[i] for i in range(len(xs))}
    st = region.inputs[0].type
    swapped = m.k_axis == st.rank - 1          # state stored as [V, K]
    scale = m.scale
    q = _head_first(b, xs_of[id(m.q)], m.bs)
    if q.producer is not None and q.producer.op == "mul":
        x, c = q.producer.args["self"], q.producer.args["other"]
        if _num(x):
            x, c = c, x
        if isinstance(x, Value) and _num(c):     # q * scale before the loop
            q, scale = x, scale * c
    k = _unrepeat(_head_first(b, xs_of[id(m.k)], m.bs))
    v = _unrepeat(_head_first(b, xs_of[id(m.v)], m.bs))
    gate = _unrepeat(_head_first(b, xs_of[id(m.gate)], m.bs)) if m.gate is not None else None
    init = scan.args["init"][0]
    s0 = None
    if not _is_zero(init, graph):
        s0 = init if m.bs == 2 else b.op("unsqueeze", {"self": init, "dim": 1})
        if swapped:
            s0 = b.op("transpose", {"self": s0, "dim0": -1, "dim1": -2})
    args = {"q": q, "k": k, "v": v, "gate": gate, "initial_state": s0, "gate_kind": m.gate_kind,
            "scale": float(scale), "output_final_state": final_used}
    outs = b.op("linear_attention", args)
    o, s_fin = (outs[0], outs[1]) if final_used else (outs, None)
    y_old = scan.outputs[1]
    ot = _permute(b, o, [2, 0, 1, 3])                     # [T, B, H, V]
    if list(ot.type.shape) != list(y_old.type.shape):
        ot = b.op("reshape", {"self": ot, "shape": list(y_old.type.shape)})
    graph.replace_all_uses(y_old, ot)
    if s_fin is not None:
        if swapped:
            s_fin = b.op("transpose", {"self": s_fin, "dim0": -1, "dim1": -2})
        if list(s_fin.type.shape) != list(st.shape):
            s_fin = b.op("reshape", {"self": s_fin, "shape": list(st.shape)})
        graph.replace_all_uses(scan.outputs[0], s_fin)
    graph.nodes.remove(scan)
    scan.graph = None
    stat("fused")


def _final_used(graph: Graph, scan: Node) -> bool:
    s = scan.outputs[0]
    return s in graph.outputs or any(s in n.inputs for n in graph.nodes)


@register("fuse-linear-attention")
def fuse_linear_attention(graph: Graph, *, reroll_loops: bool = True, quadratic: bool = True, chunked: bool = True,
                          wkv: bool = True, lif: bool = True) -> None:
    """Replace linear attention (loops, scans, chunked and quadratic forms, RWKV's WKV) by linear_attention."""
    if reroll_loops:
        reroll(graph, accept=lambda plan: match_scan(plan.scan) is not None)
    fused = 0
    for node in list(graph.nodes):
        if node.op != "scan" or not node.regions:
            continue
        m = match_scan(node)
        if m is None:
            continue
        replace_scan(graph, node, m, _final_used(graph, node))
        fused += 1
    if fused:
        apply_patterns(graph, CANON_RULES)
        dead_code_elimination(graph)
    # Chunked forms before the quadratic matcher: a chunk's intra part is itself a masked product.
    if chunked:
        from .la_chunked import fuse_chunked_linear_attention
        stat("fused-chunked", fuse_chunked_linear_attention(graph))
    if wkv:
        from .la_wkv import fuse_wkv
        stat("fused-wkv", fuse_wkv(graph))
    if quadratic:
        from .la_quadratic import fuse_quadratic_linear_attention
        stat("fused-quadratic", fuse_quadratic_linear_attention(graph))
    from .la_key_tied import tie_key_gates
    stat("key-tied", tie_key_gates(graph))
    if lif:        # SpikeGPT's neurons: the other loop over time left in its graph (see fuse_lif)
        from .fuse_lif import fuse_lif_loops
        stat("fused-lif", fuse_lif_loops(graph))
