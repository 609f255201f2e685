"""Absorb a LIF loop's first and last steps when reroll-loops left them unrolled, then
replace the collector of every step's spikes by the lif's spikes.

`reroll-loops` needs every step to be the same body. Two steps are not:
- the last, when the final membrane is unused: its reset is dead code (charge and fire
  only), so the scan covers steps ..T-2;
- the first, when the initial membrane is an input: nodes that use only it (v0 - v_reset)
  are computed outside the step, so the scan starts at step 1 with v_1 as its carry.
Each such step is cut out (the nodes between (v, x_t) and its outputs), checked by
evaluation against the reference LIF step with the loop's parameters
(`lif_step.confirm`), and the lif is rebuilt over the longer time range. Finally a
`cat`/`stack` of spikes[:, 0..T-1] (all steps, in order) becomes the spikes tensor.
"""
from __future__ import annotations

import math

import torch

from spikec.ir import Graph, Node, Value, interpret
from spikec.ir.graph import map_values

from .lif_step import LifParams, _concrete, confirm, lif_step_reference
from .rewrite import Builder

MAX_STEP_NODES = 64
_FILLS = ("full", "full_like", "zeros", "zeros_like", "fill")


def fill_value(v: Value):
    """The number a constant-filled tensor holds, else None."""
    p = v.producer
    if p is None or p.op not in _FILLS:
        return None
    if p.op in ("zeros", "zeros_like"):
        return 0.0
    f = p.args.get("fill_value", p.args.get("value"))
    return float(f) if isinstance(f, (int, float)) and not isinstance(f, bool) else None


def _time_index(v: Value, spikes: Value):
    """t when v is spikes[:, t] (select on dim 1, or on dim 0 of its [1, 0, ...] permute), else None."""
    p = v.producer
    if p is None or p.op != "select":
        return None
    src, d, i = p.args["self"], p.args["dim"] % p.args["self"].type.rank, p.args["index"]
    if src is spikes and d == 1:
        return i
    q = src.producer
    if q is not None and q.op == "permute" and q.args["self"] is spikes and d == 0 \
            and list(q.args["dims"][:2]) == [1, 0] and list(q.args["dims"][2:]) == list(range(2, src.type.rank)):
        return i
    return None


def _depends_on(graph: Graph, root: Value) -> set[int]:
    """ids of the values computed from `root`."""
    out = {id(root)}
    for n in graph.nodes:
        if any(id(a) in out for a in n.inputs):
            out |= {id(o) for o in n.outputs}
    return out


def _cut(outs: list[Value], boundary: dict[int, int], types) -> Graph | None:
    """The nodes computing `outs` from the boundary values, as a graph with those as inputs."""
    seen, order = set(), []

    def visit(v: Value) -> bool:
        if id(v) in boundary:
            return True
        n = v.producer
        if n is None or n.regions:
            return False
        if id(n) in seen:
            return True
        seen.add(id(n))
        if len(seen) > MAX_STEP_NODES or not all(visit(a) for a in n.inputs):
            return False
        order.append(n)
        return True

    if not all(visit(o) for o in outs):
        return None
    g = Graph("step")
    ins = [g.add_input(t, f"in{i}") for i, t in enumerate(types)]
    local = {vid: ins[i] for vid, i in boundary.items()}
    for n in order:
        new = g.add_node(n.op, {k: map_values(a, lambda x: local[id(x)]) for k, a in n.args.items()},
                         [o.type for o in n.outputs], loc=n.loc)
        for o, no in zip(n.outputs, new.outputs):
            local[id(o)] = no
    g.set_outputs([local[id(o)] for o in outs])
    return g


def _runner(region: Graph, constants: dict, full: bool):
    """step(v, x) -> (v', s) on flat float64 tensors for a cut step with outputs (v', s), or,
    with `full` false, outputs (s) (v' then taken from the reference: only s is compared)."""
    vin = region.inputs[0]
    dt = torch.float64 if vin.type.dtype == "f64" else torch.float32
    shape = _concrete(vin.type)

    def step(v, x):
        try:
            r = interpret(region, v.to(dt).reshape(shape), x.to(dt).reshape(shape), constants=constants)
        except Exception:          # a cut the interpreter cannot run is not a LIF step
            return None
        r = [t.double().reshape(-1) for t in (r if isinstance(r, tuple) else (r,))]
        return (r[0], r[1]) if full else (None, r[0])

    return step, max(1, math.prod(shape))


def _matches(region: Graph, p: LifParams, constants: dict, full: bool) -> bool:
    step, n = _runner(region, constants, full)
    if not full:
        inner = step

        def step(v, x):
            r = inner(v, x)
            return None if r is None else (lif_step_reference(x, v, p.tau, p.v_threshold, p.v_reset)[0], r[1])
    return confirm(step, p, n)


def _x_range(lif: Node):
    """(X, start, end) when the lif's x is X[:, start:end] (or X itself)."""
    x = lif.args["x"]
    p = x.producer
    if p is not None and p.op == "slice" and p.args["dim"] % x.type.rank == 1 and p.arg("step") == 1:
        X = p.args["self"]
        start, end = p.arg("start"), p.arg("end")
        L = X.type.shape[1]
        if isinstance(start, int) and isinstance(end, int) and isinstance(L, int):
            return X, start, min(L, end if end >= 0 else L + end)
    return x, 0, x.type.shape[1]


def _step_slice(graph: Graph, X: Value, t: int) -> Value | None:
    return next((n.output for n in graph.nodes if n.op == "select" and n.args["self"] is X
                 and n.args["dim"] % X.type.rank == 1 and n.args["index"] == t), None)


def _collector(graph: Graph, spikes: Value, n: int, offset: int):
    """A cat/stack whose elements offset..offset+n-1 are spikes[:, 0..n-1]."""
    for c in graph.nodes:
        ts = c.args.get("tensors") if c.op in ("cat", "stack") else None
        if isinstance(ts, list) and len(ts) >= offset + n and \
                all(_time_index(ts[offset + i], spikes) == i for i in range(n)):
            return c
    return None


def _rebuild(graph: Graph, lif: Node, coll: Node, X: Value, start: int, end: int, v0, p: LifParams,
             offset: int, extra: int, v_out: Value) -> Node:
    """lif over X[:, start:end]; the collector's elements offset-.. and the old outputs point at it."""
    b = Builder(graph, lif)
    x = X if (start, end) == (0, X.type.shape[1]) else b.op("slice", {"self": X, "dim": 1, "start": start, "end": end})
    spikes, v_fin = b.op("lif", {"x": x, "v0": v0, "tau": p.tau, "v_threshold": p.v_threshold,
                                 "v_reset": p.v_reset, "alpha": p.alpha})
    olds = coll.args["tensors"][offset - (1 if extra < 0 else 0): offset + lif.outputs[0].type.shape[1] + max(extra, 0)]
    for i, old in enumerate(olds):
        graph.replace_all_uses(old, b.op("select", {"self": spikes, "dim": 1, "index": i}))
    graph.replace_all_uses(v_out, v_fin)
    return v_fin.producer


def absorb_first_step(graph: Graph, lif: Node, p: LifParams) -> Node | None:
    X, start, end = _x_range(lif)
    v1 = lif.args.get("v0")
    if start != 1 or v1 is None:
        return None
    n = lif.outputs[0].type.shape[1]
    coll = _collector(graph, lif.outputs[0], n, 1)
    x0 = _step_slice(graph, X, 0)
    if coll is None or x0 is None:
        return None
    s0 = coll.args["tensors"][0]
    from_x0 = _depends_on(graph, x0)
    if id(s0) not in from_x0 or id(v1) not in from_x0:
        return None
    # the initial membrane: where the step's inputs not computed from x_0 lead back to
    leaves = set()

    def walk(v):
        if id(v) in from_x0:
            if v.producer is not None and v is not x0:
                for a in v.producer.inputs:
                    walk(a)
            return
        # a v-only prefix of the step (v0 - v_reset): back through single-tensor ops of the state's type
        while v.producer is not None and v.type == v1.type and len(v.producer.inputs) == 1 \
                and v.producer.op not in ("constant",) and v.producer.inputs[0].type == v1.type:
            v = v.producer.inputs[0]
        if v.type == v1.type:
            leaves.add(v)
        elif v.producer is None or v.producer.op != "constant":
            leaves.add(None)

    walk(s0)
    walk(v1)
    if len(leaves) != 1 or None in leaves:
        return None
    (v_init,) = leaves
    region = _cut([v1, s0], {id(v_init): 0, id(x0): 1}, [v1.type, x0.type])
    if region is None:
        return None
    if not _matches(region, p, graph.constants, full=True):
        return None
    fill = fill_value(v_init)
    v0 = None if fill is not None and fill == p.v_reset else v_init
    return _rebuild(graph, lif, coll, X, 0, end, v0, p, 1, -1, lif.outputs[1])


def _step_outputs(graph: Graph, roots: list[Value]) -> tuple[set[int], list[Value]] | None:
    """The trailing step: nodes computed from `roots` whose results keep the state's shape;
    returns (their ids, the results used past them)."""
    shape = roots[0].type.shape
    vals, nodes = {id(r) for r in roots}, set()
    for n in graph.nodes:
        if any(id(a) in vals for a in n.inputs) and all(o.type.shape == shape for o in n.outputs):
            nodes.add(id(n))
            vals |= {id(o) for o in n.outputs}
    users = graph.users()
    outs = [o for n in graph.nodes if id(n) in nodes for o in n.outputs
            if o in graph.outputs or any(id(u) not in nodes for u in users.get(o, []))]
    return nodes, outs


def absorb_last_step(graph: Graph, lif: Node, p: LifParams) -> Node | None:
    X, start, end = _x_range(lif)
    n = lif.outputs[0].type.shape[1]
    if start != 0 or not isinstance(X.type.shape[1], int) or end != n or X.type.shape[1] != n + 1:
        return None
    coll = _collector(graph, lif.outputs[0], n, 0)
    x_n = _step_slice(graph, X, n)
    v_fin = lif.outputs[1]
    if coll is None or x_n is None or len(coll.args["tensors"]) < n + 1 or coll.args["tensors"][n].type != v_fin.type:
        return None
    s_n = coll.args["tensors"][n]
    nodes, outs = _step_outputs(graph, [v_fin, x_n])
    if v_fin in graph.outputs or any(id(u) not in nodes for u in graph.users().get(v_fin, [])):
        return None                      # v_{T-1} itself is used: it has no place in the longer lif
    rest = [o for o in outs if o is not s_n]
    if s_n not in outs or len(rest) > 1:
        return None
    bound = {id(v_fin): 0, id(x_n): 1}
    if rest:                             # a full step: its membrane is the new final one
        region = _cut([rest[0], s_n], bound, [v_fin.type, x_n.type])
        if region is None:
            return None
        if not _matches(region, p, graph.constants, full=True):
            return None
    else:                                # charge and fire only (the reset was dead)
        region = _cut([s_n], bound, [v_fin.type, x_n.type])
        if region is None or not _matches(region, p, graph.constants, full=False):
            return None
    return _rebuild(graph, lif, coll, X, 0, n + 1, lif.args.get("v0"), p, 0, 1, rest[0] if rest else v_fin)


def collapse_collector(graph: Graph, lif: Node) -> bool:
    """cat/stack of spikes[:, 0..T-1] (nothing else) -> the spikes, moved / reshaped."""
    spikes = lif.outputs[0]
    T = spikes.type.shape[1]
    if not isinstance(T, int):
        return False
    coll = _collector(graph, spikes, T, 0)
    if coll is None or len(coll.args["tensors"]) != T:
        return False
    b = Builder(graph, coll)
    r = spikes.type.rank
    d = coll.args.get("dim", 0) % (r if coll.op == "stack" else r - 1)
    perm = [i for i in range(r) if i != 1]
    perm.insert(d, 1)                      # time axis to d: the stacked layout; cat merges it into dim d
    out = b.op("permute", {"self": spikes, "dims": perm}) if perm != list(range(r)) else spikes
    if coll.op == "cat":
        out = b.op("reshape", {"self": out, "shape": list(coll.output.type.shape)})
    if out.type != coll.output.type:
        return False
    graph.replace_all_uses(coll.output, out)
    return True
