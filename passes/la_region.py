"""Sequence-mixing regions: the subgraph between per-token tensors, and running it.

A sequence mixer written with plain tensor ops (a chunked linear attention, an
unrolled recurrence) reads per-token tensors (q, k, v, gate: one row per time
step) and writes one per-token tensor; everything in between has other shapes
(chunks, padded lengths, per-step slices, pairwise decay matrices). The fusion
passes find such a region *structurally* (walk back from a per-token result,
stop at per-token values) and then decide what it computes *semantically*, by
running it on random inputs (`RegionRunner`) and comparing with a reference.
Data-independent values (masks, `arange`, weights, folded constants) are
recomputed inside the runner at every sampled length.

Which values count as per-token is the caller's `is_token(value)`: the time
axis and layout differ between matchers (head-first [B, H, T, D] for linear
attention, [B, T, C] for RWKV's WKV).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import sympy
import torch

from spikec.ir import Graph, Node, TensorType, Value
from spikec.ir.types import sym

MAX_REGION_NODES = 60000     # an unrolled WKV at T=1024 has ~22 nodes per step and layer


class NoRegion(Exception):
    """The walk met something a fusible region cannot contain."""


@contextlib.contextmanager
def one_thread():
    """Run the sample evaluations on one thread: the tensors are small, and torch's
    thread pool on a loaded machine made them ~50x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def static_values(graph: Graph) -> dict[int, Value]:
    """Values computed only from constants and symbolic sizes (no graph input reaches them).
    Keyed by id; the Values are kept so that ids stay unique while the dict lives."""
    out: dict[int, Value] = {}
    for n in graph.nodes:
        if n.op == "constant":
            t = graph.constants.get(n.args["name"])
            ok = isinstance(t, torch.Tensor) and t.device.type != "meta"
        else:
            ok = not n.regions and n.opdef.category == "core" and all(id(v) in out for v in n.inputs)
        if ok:
            for v in n.outputs:
                out[id(v)] = v
    return out


@dataclass
class Region:
    anchor: Value                                       # the per-token result
    nodes: list[Node] = field(default_factory=list)     # program order; last computes the anchor
    inputs: list[Value] = field(default_factory=list)   # per-token data it reads (first-use order)
    extras: list[Value] = field(default_factory=list)   # graph inputs of other shapes it reads
    statics: list[Value] = field(default_factory=list)  # data-independent values it reads
    escapes: list[Value] = field(default_factory=list)  # values besides the anchor used outside

    def literals(self) -> list[float]:
        """Number literals multiplying or dividing inside the region (scale candidates)."""
        out = []
        for n in self.nodes:
            x, c = n.args.get("self"), n.args.get("other")
            if n.op == "mul":
                out += [float(a) for a in (x, c) if _number(a)]
            elif n.op == "div" and _number(c):
                out.append(1.0 / c)
        return out


def _number(a) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool) and a != 0


class GraphIndex:
    """What the matchers look up, computed once per version of the graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.static = static_values(graph)
        self.position = {id(n): i for i, n in enumerate(graph.nodes)}
        self.users = graph.users()
        self._inputs: dict[int, list[Value]] = {}

    def inputs(self, n: Node) -> list[Value]:
        ins = self._inputs.get(id(n))
        if ins is None:
            ins = self._inputs[id(n)] = n.inputs
        return ins


_CATEGORY: dict[str, str] = {}


def _plain(n: Node) -> bool:
    """A core or fused op without regions: something a region may contain."""
    cat = _CATEGORY.get(n.op)
    if cat is None:
        cat = _CATEGORY[n.op] = n.opdef.category
    return not n.regions and cat in ("core", "fused")


def find_region(ix: GraphIndex, anchor: Value, is_token: Callable[[Value], bool], *,
                abort: Callable[[Value], bool] | None = None, limit: int = MAX_REGION_NODES) -> Region:
    """The region computing `anchor` from per-token values (raises NoRegion).

    Walks producers back from the anchor, stopping at per-token data (`inputs`),
    static values and graph inputs (`extras`); `abort(value)` gives up the walk.
    Then grows forward over nodes that read only region values (a final state
    computed next to the output), and lists the region values used outside (`escapes`)."""
    r = Region(anchor)
    inside: set[int] = set()
    seen: set[int] = set()
    stack = [anchor.producer]
    while stack:
        n = stack.pop()
        if id(n) in inside:
            continue
        if not _plain(n):
            raise NoRegion(f"{n.op} has regions or is not a core op")
        inside.add(id(n))
        r.nodes.append(n)
        if len(r.nodes) > limit:
            raise NoRegion("region too large")
        for v in ix.inputs(n):
            if id(v) in seen:
                continue
            seen.add(id(v))
            if id(v) in ix.static:
                r.statics.append(v)
            elif is_token(v):
                r.inputs.append(v)
            elif abort is not None and abort(v):
                raise NoRegion(f"reaches %{v.name}: {v.type}")
            elif v.producer is None:
                r.extras.append(v)
            else:
                stack.append(v.producer)
    if all(is_token(v) for n in r.nodes for v in n.outputs if v is not anchor):
        raise NoRegion("nothing but per-token values")      # an elementwise op on tokens
    boundary = {id(v) for v in r.inputs + r.extras + r.statics}
    _grow(ix, r, inside, boundary)
    r.nodes.sort(key=lambda n: ix.position[id(n)])
    outputs = {id(v) for v in ix.graph.outputs}
    for n in r.nodes:
        for v in n.outputs:
            if v is not anchor and (id(v) in outputs or any(id(u) not in inside for u in ix.users.get(v, ()))):
                r.escapes.append(v)
    return r


def _grow(ix: GraphIndex, r: Region, inside: set[int], boundary: set[int]) -> None:
    """Add nodes all of whose inputs the region already has (at least one computed in it)."""
    computed = {id(v) for n in r.nodes for v in n.outputs if v is not r.anchor}
    frontier = list(r.nodes)
    while frontier:
        nxt = []
        for n in frontier:
            for v in n.outputs:
                if v is r.anchor:
                    continue
                for u in ix.users.get(v, ()):
                    if id(u) in inside or not _plain(u):
                        continue
                    if all(id(x) in computed or id(x) in boundary for x in ix.inputs(u)):
                        inside.add(id(u))
                        r.nodes.append(u)
                        computed.update(id(x) for x in u.outputs)
                        nxt.append(u)
        frontier = nxt


class RegionRunner:
    """Evaluates a region on chosen tensors for its per-token inputs and extras,
    with the symbols bound by `env`; static values are recomputed from their cones."""

    def __init__(self, ix: GraphIndex, region: Region):
        self.graph, self.region = ix.graph, region
        cone, stack, seen = [], [v.producer for v in region.statics if v.producer is not None], set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            cone.append(n)
            stack.extend(v.producer for v in n.inputs if v.producer is not None)
        self.order = sorted(cone + region.nodes, key=lambda n: ix.position[id(n)])

    def run(self, feeds: dict[int, torch.Tensor], env: dict[str, int], want: list[Value]) -> list | None:
        """The values `want` (None when an op fails on these inputs)."""
        subs = {sym(k): sympy.Integer(n) for k, n in env.items()}
        vals: dict[int, object] = dict(feeds)
        try:
            with torch.no_grad():
                for n in self.order:
                    if n.op == "constant":
                        out = self.graph.constants[n.args["name"]]
                    else:
                        out = n.opdef.call({k: _concrete(a, vals, subs) for k, a in n.args.items()})
                    outs = list(out) if isinstance(out, (tuple, list)) else [out]
                    for o, t in zip(n.outputs, outs):
                        vals[id(o)] = t
        except Exception:        # a role assignment that makes an op fail is simply not a match
            return None
        return [vals[id(v)] for v in want]


def _concrete(a, vals, subs):
    if isinstance(a, Value):
        return vals[id(a)]
    if isinstance(a, (list, tuple)):
        return [_concrete(x, vals, subs) for x in a]
    if isinstance(a, sympy.Expr):
        return int(a.xreplace(subs))
    return a


def concrete_shape(t: TensorType, env: dict[str, int]) -> list[int]:
    subs = {sym(k): sympy.Integer(n) for k, n in env.items()}
    return [d if isinstance(d, int) else int(d.xreplace(subs)) for d in t.shape]


def sample_envs(graph: Graph, dims, time_dim, lengths=(3, 17, 40, 130), other: int = 2) -> list[dict]:
    """Symbol bindings to run a region at: the time symbol at several lengths (clipped
    to its declared range), any other symbol at a small fixed size."""
    names = set()
    for d in dims:
        if isinstance(d, sympy.Expr):
            names |= {s.name for s in d.free_symbols}
    tname = time_dim.name if isinstance(time_dim, sympy.Symbol) else None
    if not names:
        return [{}]
    envs = []
    for L in (lengths if tname else lengths[:1]):
        env = {}
        for name in sorted(names):
            lo, hi = graph.symbols.get(name, (1, None))
            want = L if name == tname else other
            env[name] = max(lo or 1, min(want, hi if hi is not None else want))
        if env not in envs:
            envs.append(env)
    return envs


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (inf when got is not finite or shapes differ)."""
    if not isinstance(got, torch.Tensor) or got.shape != want.shape or not bool(torch.isfinite(got).all()):
        return float("inf")
    scale = want.abs().max().item() if want.numel() else 0.0
    return (got.double() - want.double()).abs().max().item() / max(scale, 1e-30) if want.numel() else 0.0
