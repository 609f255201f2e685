"""Draw a spikec Graph as a standalone SVG file (no graphviz, no external tools).

    from spikec.ir.draw_svg import to_svg, write_svg
    write_svg(graph, "gla.svg", title="GLA, loop form")

What the drawing shows
----------------------
* A layered, top-to-bottom layout (Sugiyama style): graph inputs in the first
  layer, graph outputs in the last, every other node first in its topological
  generation (longest path from the sources, computed with networkx on the
  `graph.to_networkx()` view), then moved down to just above its first
  consumer when that shortens its edges (sources such as `full` always; the
  per-step slices of an unrolled loop too, so they sit next to their step).
  Edges that span several layers are routed through invisible waypoints;
  edges that leave the same value share their waypoints (a "bus"), and edges
  that enter the same node share them too (a "trunk"), each shared segment
  drawn once, so a value used by hundreds of nodes costs one chain. The order
  inside each layer comes from a few barycenter sweeps (down and up), keeping
  the order with the fewest edge crossings; x positions are then pulled toward
  the neighbours' centres.
* One box per node: op name, output type(s) (`str(value.type)`, shortened when
  long) and source location (`file:line`, basename only) in a smaller font; the
  full text-form line is the box's tooltip (`<title>`). Edges are paths with an
  arrowhead marker.
* Colours by category: core ops grey, `fused` ops orange, structured ops
  (scan / while_loop / cond) blue, torch.library `custom` ops purple, graph
  inputs and outputs green. A structured op is drawn as a large box that holds
  each of its regions (named, with its op count) as a nested drawing.
* `constant` nodes (weights, buffers) do not get boxes by default: their names
  are listed in the consumer's box (`constants="inline"`); `constants="nodes"`
  draws them as small boxes, `constants="hide"` leaves them out.
* A legend and a title line (graph name, node counts, what was collapsed or
  summarised).

The collapse rule (`collapse_repeats=True`)
-------------------------------------------
Inside one graph (or region), take the non-constant nodes in program order and
give each a token: (op, source location, output types with data-dependent
sizes `u0, u1, ...` made equal, number of inputs, number of regions). A
*repeat* is a tandem repeat of this token sequence: a window of L
consecutive nodes followed by k-1 copies of the same L tokens
(k >= 2), found for every start and period with numpy. Scanning left to right,
a repeat is taken when it hides at least `min_repeat_nodes` nodes (L*(k-1),
default 6), has at least 3 copies or else 16 nodes per copy (so the same RoPE
applied to q and to k stays drawn twice, a 2-layer decoder collapses), and no
repeat starting later inside its first window covers more nodes; ties go to
the shortest period. A repeat is kept only if its copies are
wired the same way: for every input of every node, its source is "outside the
repeat", "offset o in the same copy" or "offset o, d copies back", and these
classes agree between consecutive copies (the repeat is cut at the first copy
that differs). Attributes may differ (the `select(index=t)` of an unrolled time
loop does). The first copy is drawn, inside a dashed box with a "×k" badge;
values flowing from one copy into the next (the loop-carried state of an
unrolled recurrence, the residual stream of a stack of decoder layers) are
drawn as dashed "carried" edges on the right of the box; values that several
copies send to the same consumer get a "×n" label. The rule is applied again
inside the drawn copy (up to 4 levels), so e.g. experts inside layers nest.

Size guard (`max_nodes`)
------------------------
When more than `max_nodes` boxes would be drawn: repeats are collapsed even if
`collapse_repeats=False`; if that is not enough, runs of consecutive nodes
with the same source location (at every level) merge into one summary box
("7 ops", their op names, "model.py:80"); if still too many, only the first
top-level items that fit in `max_nodes` boxes are drawn.
The title says which of these happened.

The output is deterministic: the same graph gives the same bytes.
"""
from __future__ import annotations

import itertools
import os
import re
from collections import Counter

import networkx as nx
import numpy as np

from .graph import Graph, Node

__all__ = ["to_svg", "write_svg"]

_UNBACKED = re.compile(r"\bu\d+\b")   # data-dependent sizes (u0, u1, ...) differ between copies

# -- style --------------------------------------------------------------------
_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_COLORS = {   # category: (fill, stroke)
    "core": ("#f4f4f5", "#71717a"),
    "fused": ("#ffedd5", "#ea580c"),
    "structured": ("#dbeafe", "#2563eb"),
    "custom": ("#f3e8ff", "#9333ea"),
    "io": ("#dcfce7", "#16a34a"),
    "const": ("#f0fdfa", "#0d9488"),
    "group": ("#f5f5f4", "#57534e"),
    "repeat": ("#fefce8", "#ca8a04"),
    "region": ("#ffffff", "#60a5fa"),
}
_TEXT = {   # text class: (font size, char width, line height, fill, extra attributes)
    "op": (12, 7.3, 15, "#18181b", ' font-weight="bold"'),
    "type": (10, 6.1, 12, "#3f3f46", ""),
    "loc": (10, 6.1, 12, "#71717a", ' font-style="italic"'),
    "const": (10, 6.1, 12, "#0f766e", ""),
    "head": (11, 6.7, 14, "#1e3a8a", ' font-weight="bold"'),
}
_PAD = 8           # inside a box
_HGAP = 22         # between boxes in a layer
_DGAP = 8          # next to a waypoint
_VGAP = 38         # between layers
_RUN_HEAD = 24     # header strip of a repeat box
_REGION_HEAD = 16  # title strip of a region frame
_MAX_TEXT = 44     # characters per line before shortening
_PORT = 6          # size of the dot where an edge enters / leaves a repeat box
_SWEEPS = 4
_MIN_PAIR = 16     # two copies are a repeat only when each has this many nodes


# -- small helpers -------------------------------------------------------------
def _esc(text) -> str:
    s = "".join(c for c in str(text) if c in "\t\n\r" or ord(c) >= 0x20)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _f(x: float) -> str:
    s = f"{x:.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return "0" if s == "-0" else s


def _short(s: str, n: int = _MAX_TEXT) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _category(node: Node) -> str:
    if node.op == "constant":
        return "const"
    if node.regions or node.op in ("scan", "while_loop", "cond"):
        return "structured"
    try:
        cat = node.opdef.category
    except Exception:   # an op this process cannot resolve: draw it as core
        return "core"
    return cat if cat in ("fused", "structured", "custom") else "core"


def _loc_short(node: Node) -> str:
    if node.loc is None:
        return ""
    return f"{os.path.basename(str(node.loc.file)) or node.loc.file}:{node.loc.line}"


def _types(values) -> str:
    return ", ".join(str(v.type) for v in values)


def _tooltip(node: Node) -> str:
    try:
        from .printer import args_str
        args = args_str(node)
    except Exception:
        args = "..."
    lhs = ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)
    text = f"{lhs} = {node.op}({args})"
    if node.loc is not None:
        text += f"  loc({node.loc})"
    return _short(text, 400)


# -- what gets drawn ------------------------------------------------------------
class _Run:
    """k structurally identical consecutive windows of nodes; copies[0] is drawn."""
    __slots__ = ("copies", "pos", "items", "scope")

    def __init__(self, copies):
        self.copies = copies
        self.pos = {n: (c, o) for c, cp in enumerate(copies) for o, n in enumerate(cp)}
        self.items: list = []
        self.scope: _Scope | None = None

    def rep(self, node: Node) -> Node:
        return self.copies[0][self.pos[node][1]]


class _Group:
    """Consecutive nodes with one source location, drawn as one summary box."""
    __slots__ = ("nodes",)

    def __init__(self, nodes):
        self.nodes = nodes


class _V:
    """A vertex of one layout: a box, a pill, a port dot."""
    __slots__ = ("kind", "cat", "uid", "lines", "tip", "op", "w", "h", "x", "y", "ax", "ay",
                 "child", "regions", "run", "count")

    def __init__(self, kind: str, uid: str, cat: str = "core"):
        self.kind = kind          # op | run | group | input | output | const | port_in | port_out
        self.cat = cat
        self.uid = uid
        self.lines: list[tuple[str, str]] = []
        self.tip = ""
        self.op = ""
        self.w = self.h = self.x = self.y = self.ax = self.ay = 0.0
        self.child: _Sub | None = None                  # the drawn copy of a repeat
        self.regions: list[tuple[str, _Sub, float, float, float, float]] = []
        self.run: _Run | None = None
        self.count = 0


class _Sub:
    """One layered drawing: a graph, a region, or the drawn copy of a repeat."""

    def __init__(self):
        self.vs: list[_V] = []
        self.edges: dict[tuple, dict] = {}      # (U, V, start anchor, end anchor) -> {Value: None}
        self.carried: dict[tuple, None] = {}    # (from vertex, to vertex) inside a repeat
        self.chains: dict[tuple, list[int]] = {}
        self.way: dict[int, tuple[float, float, float]] = {}   # waypoint -> (x, y top, y bottom)
        self.w = self.h = self.ax = self.ay = 0.0


class _Scope:
    """Maps the nodes of one graph / region / repeat body to the vertices of its _Sub."""

    def __init__(self):
        self.sub = _Sub()
        self.member: dict[Node, object] = {}    # node -> item (Node, _Run, _Group) at this level
        self.vert: dict[object, _V] = {}
        self.inputs: list[_V] = []
        self.outputs: list[_V] = []
        self.consts: dict[Node, _V] = {}
        self.in_ports: dict[tuple, _V] = {}
        self.out_ports: dict[tuple, _V] = {}


# -- finding repeats -------------------------------------------------------------
def _tandem(tok: np.ndarray, min_hidden: int):
    """For each start i: the best coverage k*L of a tandem repeat of period L there."""
    n = len(tok)
    best_cov = np.zeros(n, dtype=np.int64)
    best_len = np.zeros(n, dtype=np.int64)
    ar = np.arange(n, dtype=np.int64)
    for period in range(1, n // 2 + 1):
        m = n - period
        eq = tok[:m] == tok[period:]
        if not eq.any():
            continue
        nxt = np.where(eq, m, ar[:m])
        nxt = np.minimum.accumulate(nxt[::-1])[::-1]      # first mismatch at or after i
        k = 1 + (nxt - ar[:m]) // period
        cov = np.where((k >= 2) & ((k - 1) * period >= min_hidden), k * period, 0)
        upd = cov > best_cov[:m]
        if upd.any():
            best_cov[:m][upd] = cov[upd]
            best_len[:m][upd] = period
    return best_cov, best_len


class _Builder:
    def __init__(self, graph: Graph, collapse: bool, constants: str, min_hidden: int):
        if constants not in ("inline", "nodes", "hide"):
            raise ValueError(f"constants must be 'inline', 'nodes' or 'hide', got {constants!r}")
        self.graph = graph
        self.collapse = collapse
        self.constants = constants
        self.min_hidden = max(1, int(min_hidden))
        self._uid = itertools.count()
        self._tok: dict[tuple, int] = {}
        self._items_cache: dict[int, list] = {}
        self.node_vertex: dict[Node, _V] = {}
        self.repeats: list[tuple[int, int]] = []     # (period, copies) of every repeat drawn
        self.merge = False                            # size guard: merge nodes by source line

    def uid(self, prefix: str) -> str:
        return f"{prefix}{next(self._uid)}"

    # ---- items: nodes, repeats, groups ----
    def items_for(self, nodes: list[Node], depth: int = 0) -> list:
        if not self.collapse or depth > 3 or len(nodes) < 2:
            return list(nodes)
        toks = []
        for n in nodes:
            key = (n.op, str(n.loc) if n.loc else "", _UNBACKED.sub("u?", _types(n.outputs)),
                   len(n.inputs), len(n.regions))
            toks.append(self._tok.setdefault(key, len(self._tok)))
        best_cov, best_len = _tandem(np.array(toks, dtype=np.int64), self.min_hidden)
        items, i, n = [], 0, len(nodes)
        while i < n:
            cov, period = int(best_cov[i]), int(best_len[i])
            if cov and cov >= int(best_cov[i + 1:i + period].max(initial=0)):
                run = self._make_run(nodes, i, period, cov // period, depth)
                if run is not None:
                    items.append(run)
                    i += period * len(run.copies)
                    continue
            items.append(nodes[i])
            i += 1
        return items

    def _make_run(self, nodes, i, period, k, depth):
        copies = [nodes[i + c * period: i + (c + 1) * period] for c in range(k)]
        pos = {n: (c, o) for c, cp in enumerate(copies) for o, n in enumerate(cp)}

        def wiring(c: int, limit: int):
            out = []
            for n in copies[c]:
                row = []
                for v in n.inputs:
                    q = pos.get(v.producer) if v.producer is not None else None
                    d = None if q is None else c - q[0]
                    row.append(None if d is None or d > limit or d < 0 else (d, q[1]))
                out.append(tuple(row))
            return out

        kept = 1
        for c in range(1, k):
            if wiring(c, c - 1) != wiring(c - 1, c - 1):
                break
            kept += 1
        if kept < 2 or period * (kept - 1) < self.min_hidden or (kept == 2 and period < _MIN_PAIR):
            return None
        run = _Run(copies[:kept])
        run.items = self.items_for(run.copies[0], depth + 1)
        return run

    def region_items(self, region: Graph) -> list:
        key = id(region)
        if key not in self._items_cache:
            items = self.items_for([n for n in region.nodes if n.op != "constant"])
            self._items_cache[key] = self.merge_lines(items) if self.merge else items
        return self._items_cache[key]

    def merge_lines(self, items) -> list:
        """Runs of consecutive nodes (no regions) with one source location become a _Group."""
        out, cur = [], []

        def mergeable(it):
            return isinstance(it, Node) and not it.regions and it.loc is not None

        for it in items + [None]:
            if mergeable(it) and cur and cur[-1].loc == it.loc:
                cur.append(it)
                continue
            if len(cur) >= 2:
                out.append(_Group(cur))
            else:
                out.extend(cur)
            cur = []
            if mergeable(it):
                cur.append(it)
            elif isinstance(it, _Run):
                it.items = self.merge_lines(it.items)
                out.append(it)
            elif it is not None:
                out.append(it)
        return out

    def count(self, items) -> int:
        total = 0
        for it in items:
            if isinstance(it, _Run):
                total += self.count(it.items)
            elif isinstance(it, _Group):
                total += 1
            else:
                total += 1 + sum(self.count(self.region_items(r)) for r in it.regions)
        return total

    # ---- vertices ----
    def _op_vertex(self, node: Node) -> _V:
        cat = _category(node)
        v = _V("op", self.uid("n"), cat)
        v.op = node.op
        v.lines = [(_short(node.op, 40), "op")]
        types = _types(node.outputs)
        if types:
            v.lines.append((_short(types), "type"))
        loc = _loc_short(node)
        if loc:
            v.lines.append((_short(loc), "loc"))
        if self.constants == "inline":
            names = []
            for x in node.inputs:
                p = x.producer
                if p is not None and p.op == "constant":
                    name = str(p.args.get("name", x.name))
                    if name not in names:
                        names.append(name)
            if names:
                v.lines.append((_short("w: " + ", ".join(names)), "const"))
        v.tip = _tooltip(node)
        self.node_vertex[node] = v
        for i, region in enumerate(node.regions):
            try:
                rname = node.opdef.regions[i]
            except Exception:
                rname = region.name
            scope = self.build_graph_scope(region)
            nops = sum(1 for _ in region.walk() if _.op != "constant")
            v.regions.append((f"{rname}: {nops} op{'s' if nops != 1 else ''}", scope.sub, 0, 0, 0, 0))
        return v

    def populate(self, scope: _Scope, items) -> None:
        for it in items:
            if isinstance(it, _Run):
                v = _V("run", self.uid("r"), "repeat")
                v.run = it
                it.scope = _Scope()
                self.populate(it.scope, it.items)
                v.child = it.scope.sub
                self.repeats.append((len(it.copies[0]), len(it.copies)))
                for cp in it.copies:
                    for n in cp:
                        scope.member[n] = it
            elif isinstance(it, _Group):
                v = _V("group", self.uid("g"), "group")
                v.op = "group"
                ops = Counter(n.op for n in it.nodes)
                hist = " ".join(f"{op}×{c}" if c > 1 else op for op, c in
                                sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))
                v.lines = [(f"{len(it.nodes)} ops", "op"), (_short(hist), "type"),
                           (_short(_loc_short(it.nodes[0])), "loc")]
                v.tip = f"{len(it.nodes)} nodes from {it.nodes[0].loc}: {hist}"
                for n in it.nodes:
                    scope.member[n] = it
            else:
                v = self._op_vertex(it)
                scope.member[it] = it
            scope.vert[it] = v
            scope.sub.vs.append(v)

    def build_graph_scope(self, graph: Graph, items=None) -> _Scope:
        scope = _Scope()
        for i, x in enumerate(graph.inputs):
            v = _V("input", self.uid("i"), "io")
            v.lines = [(_short("%" + x.name, 40), "op"), (_short(str(x.type)), "type")]
            v.tip = f"input %{x.name}: {x.type}"
            scope.inputs.append(v)
            scope.sub.vs.append(v)
        if items is None:
            items = self.region_items(graph)
        self.populate(scope, items)
        for i, x in enumerate(graph.outputs):
            v = _V("output", self.uid("o"), "io")
            v.lines = [(f"output {i}", "op"), (_short(str(x.type)), "type")]
            v.tip = f"output {i}: %{x.name}: {x.type}"
            scope.outputs.append(v)
            scope.sub.vs.append(v)
        self.route_graph(scope, graph)
        return scope

    # ---- edges ----
    def route_graph(self, scope: _Scope, graph: Graph) -> None:
        view = graph.to_networkx()
        for u, w, data in view.edges(data=True):
            val = data["value"]
            if isinstance(u, tuple):
                src = ("vertex", scope.inputs[u[1]])
            elif u.op == "constant":
                if self.constants != "nodes" or (isinstance(w, Node) and w not in self.node_vertex):
                    continue
                cv = scope.consts.get(u)
                if cv is None:
                    cv = _V("const", self.uid("c"), "const")
                    cv.lines = [(_short(str(u.args.get("name", val.name)), 32), "const"),
                                (_short(str(val.type)), "type")]
                    cv.tip = f"constant {u.args.get('name', val.name)}: {val.type}"
                    scope.consts[u] = cv
                    scope.sub.vs.append(cv)
                src = ("vertex", cv)
            else:
                src = ("node", u)
            dst = ("vertex", scope.outputs[w[1]]) if isinstance(w, tuple) else ("node", w)
            self.connect(scope, src, dst, val)

    def _deep(self, scope: _Scope, node: Node) -> _V:
        item = scope.member[node]
        while isinstance(item, _Run):
            node = item.rep(node)
            scope = item.scope
            item = scope.member[node]
        return scope.vert[item]

    def _port(self, scope: _Scope, table: dict, key, kind: str) -> tuple[_V, bool]:
        p = table.get(key)
        if p is not None:
            return p, False
        p = _V(kind, self.uid("p"), "repeat")
        table[key] = p
        scope.sub.vs.append(p)
        return p, True

    def connect(self, scope: _Scope, src, dst, val) -> None:
        a = scope.member.get(src[1]) if src[0] == "node" else None
        b = scope.member.get(dst[1]) if dst[0] == "node" else None
        if (src[0] == "node" and a is None) or (dst[0] == "node" and b is None):
            return                                      # an end was not drawn (size guard)
        if a is not None and a is b:
            if isinstance(a, _Run):
                cp, op_ = a.pos[src[1]]
                cn, on = a.pos[dst[1]]
                p0, n0 = a.copies[0][op_], a.copies[0][on]
                if cp == cn:   # count the drawn copy's value once, not once per copy
                    self.connect(a.scope, ("node", p0), ("node", n0), p0.outputs[val.index])
                else:
                    a.scope.sub.carried[(self._deep(a.scope, p0), self._deep(a.scope, n0))] = None
            return                                      # inside one box or one group
        if src[0] == "vertex":
            U = start = src[1]
        else:
            U = start = scope.vert[a]
            if isinstance(a, _Run):
                p0 = a.rep(src[1])
                start, new = self._port(a.scope, a.scope.out_ports, (p0, val.index), "port_out")
                if new:
                    self.connect(a.scope, ("node", p0), ("vertex", start), val)
        if dst[0] == "vertex":
            W = end = dst[1]
        else:
            W = end = scope.vert[b]
            if isinstance(b, _Run):
                end, _ = self._port(b.scope, b.scope.in_ports, (start.uid, val.index), "port_in")
                self.connect(b.scope, ("vertex", end), ("node", b.rep(dst[1])), val)
        if U is W:
            return
        scope.sub.edges.setdefault((U, W, start, end), {})[val] = None


# -- layout ---------------------------------------------------------------------------
def _text_size(lines) -> tuple[float, float]:
    w = max((len(t) * _TEXT[c][1] for t, c in lines), default=0.0)
    h = sum(_TEXT[c][2] for _, c in lines)
    return w, h


def _size(v: _V) -> None:
    if v.kind in ("port_in", "port_out"):
        v.w = v.h = _PORT
        return
    tw, th = _text_size(v.lines)
    if v.kind == "run":
        _layout(v.child)
        gutter = (12 + 8 * len(v.child.carried)) if v.child.carried else 0
        period = len(v.run.copies[0])
        label = f"repeated, {period} op{'s' if period != 1 else ''} each"
        head = len(label) * _TEXT["loc"][1] + 2 * _PAD + 20 + 7.6 * len(f"×{len(v.run.copies)}")
        v.w = max(v.child.w + 2 * _PAD + gutter, head)
        v.h = _RUN_HEAD + v.child.h + _PAD
        return
    w = max(tw + 2 * _PAD, 56.0)
    h = th + 2 * _PAD - 2
    if v.regions:
        frames, x = [], _PAD
        fh = 0.0
        for title, sub, *_ in v.regions:
            _layout(sub)
            fw = max(sub.w + 2 * _PAD, len(title) * _TEXT["loc"][1] + 2 * _PAD)
            frames.append((title, sub, x, h, fw, sub.h + _REGION_HEAD + _PAD))
            fh = max(fh, sub.h + _REGION_HEAD + _PAD)
            x += fw + _PAD
        v.regions = frames
        w = max(w, x)
        h = h + fh + _PAD
    v.w, v.h = w, h


def _count_crossings(layers, succ, pos) -> int:
    total = 0
    for li in range(len(layers) - 1):
        pairs = sorted((pos[a], pos[b]) for a in layers[li] for b in succ[a])
        size = len(layers[li + 1]) + 1
        tree = [0] * (size + 1)
        seen = 0
        for _, q in pairs:       # count earlier edges ending right of q
            i, le = q + 1, 0
            while i > 0:
                le += tree[i]
                i -= i & -i
            total += seen - le
            i = q + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
            seen += 1
    return total


def _layout(sub: _Sub) -> None:
    """Layer, order and place the vertices of `sub` (coordinates relative to it)."""
    for v in sub.vs:
        _size(v)
    vs = sub.vs
    n = len(vs)
    if n == 0:
        sub.w = sub.h = 0.0
        return
    index = {v: i for i, v in enumerate(vs)}
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    keys = [k for k in sub.edges if k[0] is not k[1]]
    for k in keys:
        g.add_edge(index[k[0]], index[k[1]])
    while True:                                   # defensive: the data flow is acyclic
        try:
            gens = list(nx.topological_generations(g))
            break
        except nx.NetworkXUnfeasible:
            g.remove_edge(*nx.find_cycle(g)[-1][:2])
    layer = [0] * n
    for li, gen in enumerate(gens):
        for i in gen:
            layer[i] = li
    last_kinds = ("output", "port_out")
    body = [layer[i] for i in range(n) if vs[i].kind not in last_kinds]
    last = (max(body) + 1) if body else 0
    for i in range(n):
        if vs[i].kind in last_kinds:
            layer[i] = last
    # then push a box down to just above its first consumer when that makes its
    # edges shorter. An edge from (or to) a vertex shared by many edges counts
    # little, since it is drawn as a shared bus (or trunk), and a predecessor
    # used only here moves down with the box (so its own in-edges count
    # instead). So the per-step slices of an unrolled loop sit next to their
    # step, not in one very wide layer under the inputs, while a step's
    # output stays with its step.
    def weight(a, b):
        return 1.0 / max(1, g.out_degree(a), g.in_degree(b))

    fixed = ("input", "port_in", "output", "port_out")
    pull_up = [0.0] * n
    for gen in gens:
        for i in gen:
            pull_up[i] = sum(min(weight(j, i), pull_up[j])
                             if g.out_degree(j) == 1 and vs[j].kind not in fixed else weight(j, i)
                             for j in g.predecessors(i))
    for gen in reversed(gens):
        for i in gen:
            if vs[i].kind in fixed or not g.out_degree(i):
                continue
            if sum(weight(i, j) for j in g.successors(i)) >= pull_up[i]:
                layer[i] = max(layer[i], min(layer[j] for j in g.successors(i)) - 1)
    keys = [k for k in keys if g.has_edge(index[k[0]], index[k[1]])]
    nlayers = max(layer) + 1

    # waypoints for edges that span several layers. Edges that leave the same
    # anchor share one chain (a bus); of the rest, edges that enter the same
    # anchor share one (a trunk); past a budget, long edges get no waypoints.
    lay = list(layer)
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    order_key: list[float] = [float(i) for i in range(n)]
    linked: set[tuple[int, int]] = set()

    def link(p, q):
        if (p, q) not in linked:
            linked.add((p, q))
            succ[p].append(q)
            pred[q].append(p)

    def waypoint(li, key):
        lay.append(li)
        succ.append([])
        pred.append([])
        order_key.append(key)
        return len(lay) - 1

    def span(k):
        return layer[index[k[1]]] - layer[index[k[0]]]

    by_start: dict[tuple, list] = {}
    by_end: dict[tuple, list] = {}
    for k in keys:
        if span(k) <= 1:
            link(index[k[0]], index[k[1]])
            sub.chains[k] = []
        else:
            by_start.setdefault((k[0], k[2]), []).append(k)
    for key, ks in list(by_start.items()):
        if len(ks) == 1:
            del by_start[key]
            by_end.setdefault((ks[0][1], ks[0][3]), []).append(ks[0])
    budget = 8 * n + 2000
    for ks in by_start.values():            # buses, grown downward
        iu = index[ks[0][0]]
        chain: list[int] = []
        for k in sorted(ks, key=span):
            iv = index[k[1]]
            if len(lay) - n + span(k) > budget:
                sub.chains[k] = None
                continue
            while layer[iu] + 1 + len(chain) < layer[iv]:
                d = waypoint(layer[iu] + 1 + len(chain), iu + 0.5)
                link(chain[-1] if chain else iu, d)
                chain.append(d)
            steps = chain[: layer[iv] - layer[iu] - 1]
            link(steps[-1], iv)
            sub.chains[k] = steps
    for ks in by_end.values():              # trunks, grown upward
        iv = index[ks[0][1]]
        chain = []
        for k in sorted(ks, key=span):
            iu = index[k[0]]
            if len(lay) - n + span(k) > budget:
                sub.chains[k] = None
                continue
            while layer[iv] - 1 - len(chain) > layer[iu]:
                d = waypoint(layer[iv] - 1 - len(chain), iv - 0.5)
                link(d, chain[-1] if chain else iv)
                chain.append(d)
            steps = chain[: layer[iv] - layer[iu] - 1][::-1]
            link(iu, steps[0])
            sub.chains[k] = steps
    total = len(lay)
    layers: list[list[int]] = [[] for _ in range(nlayers)]
    for a in sorted(range(total), key=lambda a: (order_key[a], a)):
        layers[lay[a]].append(a)
    pos = [0] * total

    def set_pos(li):
        for p, a in enumerate(layers[li]):
            pos[a] = p

    for li in range(nlayers):
        set_pos(li)

    # ordering: barycenter sweeps, keep the best
    best = [list(l) for l in layers]
    best_c = _count_crossings(layers, succ, pos)
    for _ in range(_SWEEPS):
        if best_c == 0:
            break
        for rng, nb in ((range(1, nlayers), pred), (range(nlayers - 2, -1, -1), succ)):
            for li in rng:
                key = {}
                for a in layers[li]:
                    ns = nb[a]
                    key[a] = (sum(pos[b] for b in ns) / len(ns) if ns else float(pos[a]), pos[a])
                layers[li].sort(key=key.__getitem__)
                set_pos(li)
        c = _count_crossings(layers, succ, pos)
        if c < best_c:
            best_c, best = c, [list(l) for l in layers]
    layers = best
    for li in range(nlayers):
        set_pos(li)

    # x: pack, then pull toward neighbours
    width = [vs[a].w if a < n else 0.0 for a in range(total)]

    def sep(a, b):
        return (width[a] + width[b]) / 2 + (_HGAP if a < n and b < n else _DGAP)

    x = [0.0] * total
    for l in layers:
        cur = 0.0
        for j, a in enumerate(l):
            if j:
                cur += sep(l[j - 1], a)
            x[a] = cur
    widest = max((x[l[-1]] + width[l[-1]] / 2 if l else 0.0) for l in layers)
    for l in layers:
        if l:
            shift = (widest - (x[l[-1]] + width[l[-1]] / 2 - (x[l[0]] - width[l[0]] / 2))) / 2 - (x[l[0]] - width[l[0]] / 2)
            for a in l:
                x[a] += shift

    def place(l, desired):
        m = len(l)
        left = list(desired)
        for j in range(1, m):
            left[j] = max(left[j], left[j - 1] + sep(l[j - 1], l[j]))
        right = list(desired)
        for j in range(m - 2, -1, -1):
            right[j] = min(right[j], right[j + 1] - sep(l[j], l[j + 1]))
        for j in range(m):
            x[l[j]] = (left[j] + right[j]) / 2

    for it in range(8):
        down = it % 2 == 0
        rng = range(1, nlayers) if down else range(nlayers - 2, -1, -1)
        nb = pred if down else succ
        for li in rng:
            l = layers[li]
            if l:
                place(l, [sum(x[b] for b in nb[a]) / len(nb[a]) if nb[a] else x[a] for a in l])
    lo = min(x[a] - width[a] / 2 for a in range(total))
    for a in range(total):
        x[a] -= lo

    # y
    heights = [0.0] * nlayers
    for i in range(n):
        heights[layer[i]] = max(heights[layer[i]], vs[i].h)
    tops, y = [], 0.0
    for h in heights:
        tops.append(y)
        y += h + _VGAP
    for i, v in enumerate(vs):
        v.x = x[i] - v.w / 2
        v.y = tops[layer[i]] + (heights[layer[i]] - v.h) / 2
    for a in range(n, total):
        sub.way[a] = (x[a], tops[lay[a]], tops[lay[a]] + heights[lay[a]])
    sub.w = max(x[a] + width[a] / 2 for a in range(total))
    sub.h = y - _VGAP


def _place(sub: _Sub, ox: float, oy: float) -> None:
    sub.ax, sub.ay = ox, oy
    for v in sub.vs:
        v.ax, v.ay = ox + v.x, oy + v.y
        if v.child is not None:
            _place(v.child, v.ax + _PAD, v.ay + _RUN_HEAD)
        for _, rsub, fx, fy, fw, fh in v.regions:
            _place(rsub, v.ax + fx + (fw - rsub.w) / 2, v.ay + fy + _REGION_HEAD)


# -- SVG output -------------------------------------------------------------------------
def _rect(x, y, w, h, fill, stroke, extra="") -> str:
    return (f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" rx="4" '
            f'fill="{fill}" stroke="{stroke}"{extra}/>')


def _text(x, y, s, cls, anchor="middle") -> str:
    size, _, _, fill, extra = _TEXT[cls]
    return (f'<text class="t-{cls}" x="{_f(x)}" y="{_f(y)}" font-size="{size}" fill="{fill}" '
            f'text-anchor="{anchor}"{extra}>{_esc(s)}</text>')


def _box_lines(v: _V, out: list) -> None:
    y = v.ay + _PAD - 1
    for s, cls in v.lines:
        lh = _TEXT[cls][2]
        out.append(_text(v.ax + v.w / 2, y + lh - 3, s, cls))
        y += lh


class _Painter:
    def __init__(self):
        self.back: list[str] = []
        self.edges: list[str] = []
        self.front: list[str] = []

    def vertex(self, v: _V) -> None:
        if v.kind in ("port_in", "port_out"):
            fill, stroke = _COLORS["repeat"]
            self.front.append(f'<circle class="port" cx="{_f(v.ax + v.w / 2)}" cy="{_f(v.ay + v.h / 2)}" '
                              f'r="{_f(_PORT / 2)}" fill="{stroke}"/>')
            return
        if v.kind == "run":
            fill, stroke = _COLORS["repeat"]
            k, period = len(v.run.copies), len(v.run.copies[0])
            g = [f'<g class="repeat" id="{v.uid}" data-repeat="{k}" data-period="{period}">',
                 f'<title>{_esc(f"{k} repeats of the same {period} nodes; the first is drawn")}</title>',
                 _rect(v.ax, v.ay, v.w, v.h, fill, stroke, ' stroke-dasharray="6 3" stroke-width="1.5"')]
            badge = f"×{k}"
            bw = 12 + 7.6 * len(badge)
            g.append(f'<rect class="badge" x="{_f(v.ax + v.w - bw - 4)}" y="{_f(v.ay + 4)}" width="{_f(bw)}" '
                     f'height="17" rx="8" fill="{stroke}" stroke="none"/>')
            g.append(f'<text class="t-badge" x="{_f(v.ax + v.w - bw / 2 - 4)}" y="{_f(v.ay + 17)}" '
                     f'font-size="12" font-weight="bold" fill="#ffffff" text-anchor="middle">{_esc(badge)}</text>')
            g.append(_text(v.ax + _PAD, v.ay + 16, f"repeated, {period} op{'s' if period != 1 else ''} each",
                           "loc", anchor="start"))
            g.append("</g>")
            self.back.append("".join(g))
            self.sub(v.child)
            return
        if v.kind == "op":
            cls, fill_stroke = f"node cat-{v.cat}", _COLORS[v.cat]
        elif v.kind == "group":
            cls, fill_stroke = "node cat-group", _COLORS["group"]
        elif v.kind == "const":
            cls, fill_stroke = "const", _COLORS["const"]
        else:
            cls, fill_stroke = f"io {v.kind}", _COLORS["io"]
        fill, stroke = fill_stroke
        width = ' stroke-width="1.8"' if v.cat in ("fused", "custom", "structured") else ' stroke-width="1.1"'
        dash = ' stroke-dasharray="3 2"' if v.kind == "group" else ""
        g = [f'<g class="{cls}" id="{v.uid}"' + (f' data-op="{_esc(v.op)}"' if v.op else "") + ">",
             f"<title>{_esc(v.tip)}</title>",
             _rect(v.ax, v.ay, v.w, v.h, fill, stroke, width + dash).replace("<rect ", '<rect class="box" ', 1)]
        _box_lines(v, g)
        for title, rsub, fx, fy, fw, fh in v.regions:
            rf, rs = _COLORS["region"]
            g.append(f'<g class="region" data-region="{_esc(title.split(":")[0])}">')
            g.append(_rect(v.ax + fx, v.ay + fy, fw, fh, rf, rs, ' stroke-dasharray="4 2"'))
            g.append(_text(v.ax + fx + 6, v.ay + fy + 12, title, "loc", anchor="start"))
            g.append("</g>")
        g.append("</g>")
        (self.back if v.regions else self.front).append("".join(g))
        for _, rsub, *_ in v.regions:
            self.sub(rsub)

    def sub(self, sub: _Sub) -> None:
        for v in sub.vs:
            self.vertex(v)
        self.paint_edges(sub)
        self.paint_carried(sub)

    def paint_edges(self, sub: _Sub) -> None:
        """Each edge: its start anchor, its waypoints, its end anchor. Edges that
        share waypoints (a bus or a trunk) share those segments, drawn once.
        Several edges leaving (entering) one box side by side get spread ports."""
        def is_port(v):
            return v.kind.startswith("port")

        edges = []
        for k, vals in sub.edges.items():
            if k not in sub.chains:
                continue
            s, e = k[2], k[3]
            hops = [("w", d) for d in sub.chains[k] or ()]
            first = hops[0] if hops else ("e", e.uid)
            last = hops[-1] if hops else ("s", s.uid)
            edges.append((k, s, e, hops, first, last, len(vals)))

        def hop_x(h, e):
            if h[0] == "w":
                return sub.ax + sub.way[h[1]][0]
            v = e[1] if h[0] == "s" else e[2]
            return v.ax + v.w / 2

        offset: dict[tuple, float] = {}
        for side in (0, 1):      # 0: spread starts by first hop, 1: spread ends by last hop
            groups: dict = {}
            for e in edges:
                anchor = e[1] if side == 0 else e[2]
                hop = e[4] if side == 0 else e[5]
                if not is_port(anchor):
                    groups.setdefault(anchor.uid, (anchor, {}))[1].setdefault(hop, e)
            for anchor, hops in groups.values():
                if len(hops) < 2:
                    continue
                ordered = sorted(hops.items(), key=lambda he: (hop_x(he[0], he[1]), str(he[0])))
                step = min(12.0, anchor.w * 0.7 / len(ordered))
                for j, (hop, _) in enumerate(ordered):
                    offset[(side, anchor.uid, hop)] = (j - (len(ordered) - 1) / 2) * step

        drawn: set = set()
        edges.sort(key=lambda e: -len(e[3]))     # the longest edge of a bus draws its trunk
        for k, s, e, hops, first, last, mult in edges:
            sx = s.ax + s.w / 2 + offset.get((0, s.uid, first), 0.0)
            sy = s.ay + s.h / 2 if is_port(s) else s.ay + s.h
            ex = e.ax + e.w / 2 + offset.get((1, e.uid, last), 0.0)
            ey = e.ay + e.h / 2 if is_port(e) else e.ay
            pts = [(("s", s.uid, first), sx, sy, sy)]
            for h in hops:
                wx, wt, wb = sub.way[h[1]]
                pts.append((h, sub.ax + wx, sub.ay + wt, sub.ay + wb))
            pts.append((("e", e.uid, last), ex, ey, ey))
            d, at, ends = [], None, False
            for (h0, x0, _, y0), (h1, x1, y1, y1b) in zip(pts, pts[1:]):
                if (h0, h1) in drawn:
                    at = None
                    continue
                drawn.add((h0, h1))
                if at != (x0, y0):
                    d.append(f"M{_f(x0)},{_f(y0)}")
                my = (y0 + y1) / 2
                d.append(f"C{_f(x0)},{_f(my)} {_f(x1)},{_f(my)} {_f(x1)},{_f(y1)}")
                if y1b > y1:
                    d.append(f"L{_f(x1)},{_f(y1b)}")
                at = (x1, y1b)
                ends = h1[0] == "e"
            if d:
                arrow = ' marker-end="url(#arrow)"' if ends and not is_port(e) else ""
                self.edges.append(f'<path class="edge" d="{" ".join(d)}" fill="none" stroke="#52525b" '
                                  f'stroke-width="1.1"{arrow}/>')
            if mult > 1:
                self.edges.append(f'<text class="t-mult" x="{_f(sx + 4)}" y="{_f(sy + 12)}" font-size="10" '
                                  f'fill="#a16207" font-weight="bold">×{mult}</text>')

    def paint_carried(self, sub: _Sub) -> None:
        right = sub.ax + sub.w
        for j, (a, b) in enumerate(sub.carried):
            xr = right + 10 + 8 * j
            ya, yb = a.ay + a.h / 2, b.ay + b.h / 2
            if a is b:   # a value carried into the same node of the next copy
                ya, yb = a.ay + a.h * 0.3, a.ay + a.h * 0.7
            xa, xb = a.ax + a.w, b.ax + b.w
            d = (f"M{_f(xa)},{_f(ya)} L{_f(xr - 4)},{_f(ya)} Q{_f(xr)},{_f(ya)} {_f(xr)},{_f(ya - 4 if yb < ya else ya + 4)} "
                 f"L{_f(xr)},{_f(yb + 4 if yb < ya else yb - 4)} Q{_f(xr)},{_f(yb)} {_f(xr - 4)},{_f(yb)} "
                 f"L{_f(xb + 1)},{_f(yb)}")
            self.edges.append(f'<path class="carried" d="{d}" fill="none" stroke="#ca8a04" stroke-width="1.3" '
                              f'stroke-dasharray="4 3" marker-end="url(#arrow-carried)"><title>carried to the next '
                              f'copy</title></path>')


def _legend(x: float, y: float) -> tuple[list[str], float]:
    items = [("core op", "core"), ("fused op", "fused"), ("structured op", "structured"),
             ("custom op", "custom"), ("input / output", "io"), ("repeated ×N", "repeat")]
    out, cx = ['<g class="legend">'], x
    for label, key in items:
        fill, stroke = _COLORS[key]
        dash = ' stroke-dasharray="4 2"' if key == "repeat" else ""
        out.append(_rect(cx, y, 14, 12, fill, stroke, dash))
        out.append(_text(cx + 18, y + 10, label, "type", anchor="start"))
        cx += 18 + len(label) * _TEXT["type"][1] + 16
    out.append(f'<path d="M{_f(cx)},{_f(y + 6)} L{_f(cx + 22)},{_f(y + 6)}" stroke="#ca8a04" stroke-width="1.3" '
               f'stroke-dasharray="4 3" marker-end="url(#arrow-carried)"/>')
    out.append(_text(cx + 28, y + 10, "carried to next copy", "type", anchor="start"))
    cx += 28 + len("carried to next copy") * _TEXT["type"][1]
    out.append("</g>")
    return out, cx - x


def to_svg(graph: Graph, *, title: str | None = None, collapse_repeats: bool = True,
           max_nodes: int = 2000, constants: str = "inline", min_repeat_nodes: int = 6) -> str:
    """The drawing of `graph` as an SVG document (a str). See the module docstring."""
    nodes = [n for n in graph.nodes if n.op != "constant"]
    n_const = len(graph.nodes) - len(nodes)
    n_total = sum(1 for n in graph.walk() if n.op != "constant")
    b = _Builder(graph, collapse_repeats, constants, min_repeat_nodes)
    items = b.items_for(nodes)
    notes = []
    if b.count(items) > max_nodes and not collapse_repeats:
        b.collapse = True
        b._items_cache.clear()
        items = b.items_for(nodes)
        notes.append("repeats collapsed")
    if b.count(items) > max_nodes:
        b.merge = True
        b._items_cache.clear()
        items = b.merge_lines(b.items_for(nodes))
        notes.append("nodes merged by source line")
    if b.count(items) > max_nodes:
        kept, used = [], 0
        for it in items:
            c = b.count([it])
            if used + c > max_nodes and kept:
                break
            kept.append(it)
            used += c
        notes.append(f"truncated to the first {used} boxes")
        items = kept
    if notes:
        notes.insert(0, f"over max_nodes={max_nodes}:")

    root = b.build_graph_scope(graph, items)
    _layout(root.sub)

    margin = 16.0
    head_title = title if title is not None else f"graph @{graph.name}"
    drawn = sum(1 for v in b.node_vertex.values()) + _count_groups(root.sub)
    sub_line = (f"{n_total} node{'s' if n_total != 1 else ''} + {n_const} constant{'s' if n_const != 1 else ''}, "
                f"{drawn} box{'es' if drawn != 1 else ''} drawn")
    if b.repeats:
        reps = ", ".join(f"{k}×{p} ops" for p, k in b.repeats[:6]) + (" …" if len(b.repeats) > 6 else "")
        sub_line += f"; repeats collapsed: {reps}"
    if notes:
        sub_line += "; " + " ".join(notes)
    top = margin + 52
    _place(root.sub, margin, top)

    painter = _Painter()
    painter.sub(root.sub)
    legend, legend_w = _legend(margin, margin + 32)
    width = max(root.sub.w + 2 * margin + _right_overhang(root.sub), legend_w + 2 * margin,
                len(head_title) * 8.5 + 2 * margin, len(sub_line) * 6.1 + 2 * margin)
    height = top + root.sub.h + margin
    W, H = _f(width), _f(height)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'font-family="{_FONT}">',
        f"<title>{_esc(head_title)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#52525b"/></marker>',
        '<marker id="arrow-carried" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#ca8a04"/></marker>',
        "</defs>",
        f'<rect class="background" x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text class="t-title" x="{_f(margin)}" y="{_f(margin + 10)}" font-size="15" font-weight="bold" '
        f'fill="#18181b">{_esc(head_title)}</text>',
        _text(margin, margin + 26, sub_line, "type", anchor="start"),
        *legend,
        '<g class="containers">', *painter.back, "</g>",
        '<g class="edges">', *painter.edges, "</g>",
        '<g class="nodes">', *painter.front, "</g>",
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def _count_groups(sub: _Sub) -> int:
    total = 0
    for v in sub.vs:
        total += v.kind == "group"
        if v.child is not None:
            total += _count_groups(v.child)
        for _, rsub, *_ in v.regions:
            total += _count_groups(rsub)
    return total


def _right_overhang(sub: _Sub) -> float:
    return (12 + 8 * len(sub.carried)) if sub.carried else 0.0


def write_svg(graph: Graph, path, **kw) -> str:
    """Write `to_svg(graph, **kw)` to `path` (UTF-8); returns the path."""
    text = to_svg(graph, **kw)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)
