"""reroll-loops: turn a Python loop over time that export unrolled back into one `scan`.

Algorithm
---------
1. *Seeds.* A node `select(X, dim=d, index=t)` (or `slice(X, d, t, t+1)`) of a
   tensor X computed outside any iteration is the step-t slice of X; it is
   labelled with iteration t.
2. *Labels.* In program order, a node whose labelled inputs all come from
   iterations {t-1, t} (at least one from t) is labelled t: it belongs to step t,
   and an input from t-1 is a loop-carried value. A node that gathers values of
   several iterations into one list (`cat`/`stack` of the per-step outputs) is a
   collector and stays outside. Everything unlabelled is loop-invariant here.
3. *Loops.* Labelled nodes are joined with their labelled producers
   (union-find); each connected component is one unrolled loop (one per layer).
4. *Alignment (structural hashing).* Within a loop, step t's nodes are listed in
   program order (tracing emits every step in the same order). Each node gets a
   signature: op, result types, literals, and per input either `out(value)`
   (invariant), `in(j)` (result of the j-th node of the same step) or `prev(j)`
   (result of the j-th node of the previous step, i.e. a carry); the slice index
   of a seed is abstracted away (it equals the step by construction). Steps
   t-1 and t are the same body when their first L signatures are equal (L: the
   usual step size; nodes past L are outside code that happened to use step t,
   such as a consumer of the final state). For the first step of a run, a
   `prev(j)` slot of the next step may hold any outside value: the carry's
   initial value. The longest run of n >= 2 matching steps is rerolled.
5. *Rewrite.* One `scan` replaces the run: carries = the `prev` slots (init from
   the first step), xs = each sliced tensor with its run range moved to dim 0
   (`slice` + `permute`), additional inputs = the invariants, `combine` = the
   body. Per-step values used outside become stacked outputs: a `cat`/`stack`
   of all of them in order becomes `permute` (+ `reshape`) of the stacked
   output, any other use a `select` of it; the last step's carries used outside
   become the scan's final carries.

Not recognised: loops whose step index does not increase by one (reversed or
strided loops), dependencies reaching back more than one step, and steps whose
nodes are not emitted in the same order.
"""
from __future__ import annotations

import heapq
from collections import Counter

from spikec.ir import Graph, InferContext, Node, TensorType, Value, get_op, infer_types
from spikec.ir.graph import iter_values, map_values

from .manager import stat
from .registry import register

COLLECTORS = ("cat", "stack")


# -- seeds and labels -----------------------------------------------------------
def seed_index(node: Node, labels: dict) -> int | None:
    """The step of a per-step slice of an invariant tensor, else None."""
    if node.op not in ("select", "slice"):
        return None
    x = node.args.get("self")
    if not isinstance(x, Value) or (x.producer is not None and id(x.producer) in labels):
        return None
    if node.op == "select":
        i = node.args.get("index")
        return i if isinstance(i, int) and i >= 0 else None
    start, end = node.arg("start"), node.arg("end")
    if isinstance(start, int) and start >= 0 and end == start + 1 and node.arg("step") == 1:
        return start
    return None


def _label(graph: Graph, blocked: set[int] = frozenset()) -> dict[int, int]:
    labels: dict[int, int] = {}
    for node in graph.nodes:
        t = seed_index(node, labels) if id(node) not in blocked else None
        if t is not None:
            labels[id(node)] = t
            continue
        ins = {labels[id(v.producer)] for v in node.inputs if v.producer is not None and id(v.producer) in labels}
        if not ins:
            continue
        top = max(ins)
        if not ins <= {top - 1, top}:
            continue
        if node.op in COLLECTORS and len(ins) > 1:
            continue
        labels[id(node)] = top
    return labels


def _components(graph: Graph, labels: dict[int, int]) -> list[list[Node]]:
    parent: dict[int, int] = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for node in graph.nodes:
        if id(node) not in labels:
            continue
        find(id(node))
        for v in node.inputs:
            if v.producer is not None and id(v.producer) in labels:
                parent[find(id(node))] = find(id(v.producer))
    groups: dict[int, list[Node]] = {}
    for node in graph.nodes:
        if id(node) in labels:
            groups.setdefault(find(id(node)), []).append(node)
    return list(groups.values())


# -- step signatures ------------------------------------------------------------
class Loop:
    """One unrolled loop: its steps, the step size L and positions of nodes."""

    def __init__(self, nodes: list[Node], labels: dict[int, int]):
        self.seeds = {id(n) for n in nodes if seed_index(n, labels) is not None}
        self.steps: dict[int, list[Node]] = {}
        for n in nodes:
            self.steps.setdefault(labels[id(n)], []).append(n)
        self.where: dict[int, tuple[int, int]] = {}      # id(node) -> (step, position)
        for t, ns in self.steps.items():
            for i, n in enumerate(ns):
                self.where[id(n)] = (t, i)
        sizes = Counter(len(ns) for ns in self.steps.values())
        self.L = min(sizes, key=lambda s: (-sizes[s], s))

    def ref(self, v: Value, t: int):
        """How step t's node sees input v."""
        w = self.where.get(id(v.producer)) if v.producer is not None else None
        if w is None:
            return ("out", id(v))
        s, j = w
        if j >= self.L:
            return ("bad",)
        if s == t:
            return ("in", j, v.index)
        if s == t - 1:
            return ("prev", j, v.index)
        return ("bad",)

    def signature(self, node: Node, t: int) -> tuple:
        seed = id(node) in self.seeds

        def enc(name, a):
            if isinstance(a, Value):
                return self.ref(a, t)
            if isinstance(a, (list, tuple)):
                return ("list",) + tuple(enc(name, x) for x in a)
            if seed and name in ("index", "start", "end"):
                return ("step",)
            return ("lit", type(a).__name__, repr(a))

        return (node.op, seed, tuple(str(v.type) for v in node.outputs),
                tuple((k, enc(k, a)) for k, a in node.args.items()), len(node.regions) == 0)

    def same_body(self, t: int, first: bool) -> bool:
        """Do steps t-1 and t compute the same body (t-1 the run's first step when `first`)?"""
        a, b = self.steps.get(t - 1), self.steps.get(t)
        if a is None or b is None or len(a) < self.L or len(b) < self.L:
            return False
        if not first and len(a) != self.L:
            return False
        for na, nb in zip(a[:self.L], b[:self.L]):
            sa, sb = self.signature(na, t - 1), self.signature(nb, t)
            if not sb[4] or not _slots_match(sa, sb, first):
                return False
        return True

    def longest_run(self) -> tuple[int, int] | None:
        best, start = None, None
        for t in sorted(self.steps):
            if start is not None and self.same_body(t, first=(t - 1 == start)):
                if best is None or t - start > best[1] - best[0]:
                    best = (start, t)
                continue
            start = t
            # a failed pair may still open a new run at t-1 (first step relaxed)
            if t - 1 in self.steps and self.same_body(t, first=True):
                start = t - 1
                if best is None or t - start > best[1] - best[0]:
                    best = (start, t)
        return best


def _slots_match(sa, sb, first: bool) -> bool:
    if sa[:3] != sb[:3] or len(sa[3]) != len(sb[3]):
        return False
    for (ka, ea), (kb, eb) in zip(sa[3], sb[3]):
        if ka != kb or not _enc_match(ea, eb, first):
            return False
    return True


def _enc_match(ea, eb, first: bool) -> bool:
    if ea[0] == "list" and eb[0] == "list":
        return len(ea) == len(eb) and all(_enc_match(x, y, first) for x, y in zip(ea[1:], eb[1:]))
    if "bad" in (ea[0], eb[0]):
        return False
    if first and eb[0] == "prev":
        return ea[0] in ("out", "prev")        # the carry's initial value
    return ea == eb


# -- building the scan ----------------------------------------------------------
class _Emitter:
    """Creates nodes (types inferred) to be placed before `anchor`."""

    def __init__(self, graph: Graph, loc):
        self.graph, self.loc, self.nodes = graph, loc, []
        self.ctx = InferContext(graph.symbols, graph.constants)

    def op(self, name: str, args: dict, types=None, regions=None) -> Node:
        if types is None:
            types = infer_types(get_op(name), args, self.ctx, regions or ())
        node = self.graph.make_node(name, args, types, loc=self.loc, regions=regions)
        self.nodes.append(node)
        return node


def move_to_front(em: _Emitter, x: Value, d: int) -> Value:
    if d == 0:
        return x
    perm = [d] + [i for i in range(x.type.rank) if i != d]
    return em.op("permute", {"self": x, "dims": perm}).output


def move_from_front(em: _Emitter, y: Value, d: int) -> Value:
    if d == 0:
        return y
    perm = list(range(1, d + 1)) + [0] + list(range(d + 1, y.type.rank))
    return em.op("permute", {"self": y, "dims": perm}).output


class Plan:
    """A rerolled loop before it is committed to the graph: its scan node, not yet placed."""

    def __init__(self, scan: Node):
        self.scan = scan


def build(graph: Graph, loop: Loop, a: int, b: int, users: dict) -> tuple[Plan, callable] | None:
    """Build the scan for steps a..b; returns the plan and a commit function."""
    L, n = loop.L, b - a + 1
    tmpl = loop.steps[a + 1][:L]
    sigs = [loop.signature(nd, a + 1) for nd in tmpl]
    core = {id(nd) for t in range(a, b + 1) for nd in loop.steps[t][:L]}
    position = {id(nd): i for i, nd in enumerate(graph.nodes)}
    first_node = min((nd for t in range(a, b + 1) for nd in loop.steps[t][:L]), key=lambda nd: position[id(nd)])
    em = _Emitter(graph, first_node.loc)
    region = Graph("combine")

    # carries (prev slots) and their initial values from the first step
    carries: dict[tuple[int, int], Value] = {}
    for p, nd in enumerate(tmpl):
        first = loop.steps[a][p]
        for k, a_arg in nd.args.items():
            for v_tmpl, v_first in zip(iter_values(a_arg), iter_values(first.args[k])):
                r = loop.ref(v_tmpl, a + 1)
                if r[0] == "prev":
                    key = (r[1], r[2])
                    if carries.setdefault(key, v_first) is not v_first:
                        return None            # one carry, two different initial values
    carry_keys = sorted(carries)
    if not carry_keys or all(sg[1] for sg in sigs):
        return None                            # no recurrence (a map, or bare slices): leave it
    carry_in = {key: region.add_input(loop.steps[a][key[0]].outputs[key[1]].type, f"carry{i}")
                for i, key in enumerate(carry_keys)}

    # sliced tensors become xs, time axis first
    xs_vals, x_in = [], {}
    for p, nd in enumerate(tmpl):
        if not sigs[p][1]:
            continue
        x, d = nd.args["self"], nd.args.get("dim", 0) % nd.args["self"].type.rank
        if a != 0 or x.type.shape[d] != n:
            x = em.op("slice", {"self": x, "dim": d, "start": a, "end": b + 1}).output
        xt = move_to_front(em, x, d)
        xs_vals.append(xt)
        x_in[p] = (region.add_input(TensorType(xt.type.shape[1:], xt.type.dtype), f"x{len(xs_vals) - 1}"), d)

    # invariants become additional inputs
    add_vals, add_in = [], {}
    for p, nd in enumerate(tmpl):
        if p in x_in:
            continue
        for v in nd.inputs:
            if loop.ref(v, a + 1)[0] == "out" and id(v) not in add_in:
                add_vals.append(v)
                add_in[id(v)] = region.add_input(v.type, f"a{len(add_vals) - 1}")

    # the body
    local: dict[tuple[int, int], Value] = {}
    for p, nd in enumerate(tmpl):
        if p in x_in:
            xv, d = x_in[p]
            if nd.op == "slice":
                xv = region.add_node("unsqueeze", {"self": xv, "dim": d}, [nd.output.type], loc=nd.loc).output
            local[(p, 0)] = xv
            continue

        def sub(v, _t=a + 1):
            r = loop.ref(v, _t)
            if r[0] == "in":
                return local[(r[1], r[2])]
            if r[0] == "prev":
                return carry_in[(r[1], r[2])]
            return add_in[id(v)]

        args = {k: map_values(x, sub) for k, x in nd.args.items()}
        new = region.add_node(nd.op, args, [v.type for v in nd.outputs], loc=nd.loc)
        for i, v in enumerate(new.outputs):
            local[(p, i)] = v

    # per-step values used outside the run
    outside_uses: dict[tuple[int, int], dict[int, list]] = {}     # key -> step -> [user nodes / "out"]
    for t in range(a, b + 1):
        for p, nd in enumerate(loop.steps[t][:L]):
            if p in x_in:
                continue
            for i, v in enumerate(nd.outputs):
                us = [u for u in users.get(v, []) if id(u) not in core]
                if v in graph.outputs:
                    us.append("out")
                if us:
                    outside_uses.setdefault((p, i), {})[t] = us
    y_keys = [key for key, per in sorted(outside_uses.items())
              if any(not (key in carries and t == b) for t in per)]
    region.set_outputs([local[k] for k in carry_keys] + [local[k] for k in y_keys])

    out_types = [carry_in[k].type for k in carry_keys]
    out_types += [TensorType((n, *local[k].type.shape), local[k].type.dtype) for k in y_keys]
    scan = em.op("scan", {"init": [carries[k] for k in carry_keys], "xs": xs_vals, "additional_inputs": add_vals},
                 types=out_types, regions=[region])
    plan = Plan(scan)

    def commit():
        finals = dict(zip(carry_keys, scan.outputs))
        ys = dict(zip(y_keys, scan.outputs[len(carry_keys):]))
        replace: dict[int, Value] = {}
        collected: set[int] = set()
        for key, y in ys.items():
            vals = [loop.steps[t][key[0]].outputs[key[1]] for t in range(a, b + 1)]
            for user in {id(u): u for per in outside_uses[key].values() for u in per if u != "out"}.values():
                if user.op in COLLECTORS and _is_all(user.args.get("tensors"), vals):
                    d = user.arg("dim") % user.output.type.rank
                    moved = move_from_front(em, y, d)
                    if user.op == "cat":
                        moved = em.op("reshape", {"self": moved, "shape": list(user.output.type.shape)}).output
                    replace[id(user.output)] = moved
                    collected.add(id(user))
        for key, per in outside_uses.items():
            for t, us in per.items():
                v = loop.steps[t][key[0]].outputs[key[1]]
                if key in finals and t == b:
                    new = finals[key]
                elif all(u != "out" and id(u) in collected for u in us):
                    continue
                else:
                    new = em.op("select", {"self": ys[key], "dim": 0, "index": t - a}).output
                replace[id(v)] = new
        _commit(graph, core, x_in, loop, a, b, em.nodes, replace, first_node)
        stat("rerolled", n)

    return plan, commit


def _is_all(tensors, vals) -> bool:
    return isinstance(tensors, list) and len(tensors) == len(vals) and all(x is y for x, y in zip(tensors, vals))


def _commit(graph, core, x_in, loop, a, b, new_nodes, replace, first_node):
    keep_seeds = set()
    users = graph.users()
    for t in range(a, b + 1):
        for p in x_in:
            nd = loop.steps[t][p]
            if any(id(u) not in core for u in users.get(nd.output, [])) or nd.output in graph.outputs:
                keep_seeds.add(id(nd))
    at = graph.nodes.index(first_node)
    graph.nodes[at:at] = new_nodes
    for nd in new_nodes:
        nd.graph = graph
    for node in graph.nodes:
        if id(node) in core:
            continue
        if any(id(v) in replace for v in node.inputs):
            node.args = {k: map_values(x, lambda v: replace.get(id(v), v)) for k, x in node.args.items()}
    graph.outputs = [replace.get(id(v), v) for v in graph.outputs]
    dead = {i for i in core if i not in keep_seeds}
    graph.nodes = [nd for nd in graph.nodes if id(nd) not in dead]
    toposort(graph)
    from .rewrite import dead_code_elimination
    dead_code_elimination(graph)


def toposort(graph: Graph) -> None:
    """Stable topological order (program order where it already is one)."""
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    producer = {}
    for n in graph.nodes:
        for v in n.outputs:
            producer[id(v)] = n
    deps = {id(n): {id(producer[id(v)]) for v in n.inputs if id(v) in producer} for n in graph.nodes}
    users: dict[int, list[Node]] = {}
    for n in graph.nodes:
        for d in deps[id(n)]:
            users.setdefault(d, []).append(n)
    ready = [(order[id(n)], n) for n in graph.nodes if not deps[id(n)]]
    heapq.heapify(ready)
    out, left = [], {k: len(v) for k, v in deps.items()}
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for u in users.get(id(n), []):
            left[id(u)] -= 1
            if not left[id(u)]:
                heapq.heappush(ready, (order[id(u)], u))
    if len(out) != len(graph.nodes):
        raise RuntimeError("reroll-loops produced a cycle")
    graph.nodes = out


# -- driver ---------------------------------------------------------------------
def reroll(graph: Graph, accept=None) -> int:
    """Reroll every unrolled loop; `accept(plan) -> bool` may veto one (the loop
    then stays unrolled). Returns the number of loops rerolled.

    Slices that are not part of a rerollable loop (`topk_idx[..., 1]`, a vetoed
    loop) are blocked as seeds and the graph is labelled again: otherwise
    everything downstream of them would carry their step label and hide the
    real loops further down."""
    done, blocked = 0, set()
    while True:
        labels = _label(graph, blocked)
        users = graph.users()
        for comp in _components(graph, labels):
            loop = Loop(comp, labels)
            run = loop.longest_run()
            built = build(graph, loop, *run, users) if run else None
            if built is None or (accept is not None and not accept(built[0])):
                blocked |= _culprits(comp, loop.seeds)
            else:
                built[1]()
                done += 1
            break                      # labels are stale now: start again
        else:
            return done


def _culprits(comp: list[Node], seeds: set[int]) -> set[int]:
    """The seeds to block after a failure: slices of the tensors sliced at the fewest
    steps (`g[..., 0]` next to a real loop over t), all of them when that is every one."""
    fam: dict[tuple, set[int]] = {}
    for n in comp:
        if id(n) in seeds:
            fam.setdefault((id(n.args["self"]), n.args.get("dim", 0), n.op), set()).add(id(n))
    most = max(len(v) for v in fam.values())
    few = {i for v in fam.values() if len(v) < most for i in v}
    return few or set(seeds)


@register("reroll-loops")
def reroll_loops(graph: Graph) -> None:
    """Turn an unrolled Python loop over time (select(X, t) steps chained by a state) into one scan."""
    reroll(graph)
