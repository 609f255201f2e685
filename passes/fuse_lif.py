"""fuse-lif: an unrolled multi-step LIF neuron (a Python loop over t of one LIF step) -> one `lif` node.

The loop is found by `reroll-loops`' machinery (per-step slices x[:, t] of one
tensor, a carried membrane, per-step spikes gathered by stack / cat), with one
addition: a slice used only for its shape (`full_like(x[:, 0], v_reset)`, the
initial membrane) is duplicated and kept from seeding a step, so the first step
is the same body as the others and its membrane is the scan's initial carry.
A rerolled body is accepted only when `lif_step.identify` reads it as one LIF
step by evaluation (tau, v_threshold, v_reset measured, then compared with a
reference); every other loop stays unrolled. Not fused: soft or missing reset,
a threshold that differs between steps, steps out of order (reroll-loops only
rerolls t-1 -> t chains).

The scan becomes `lif(x [B, T, C], v0)` with permutes between the time-major
scan layout and the op's [B, T, C] (canonicalize folds them); an initial
membrane filled with v_reset is dropped. A first or last step that reroll-loops left
unrolled (see `lif_tail`) is absorbed after a check by evaluation. After fusion the graph has no
per-step nodes left, so `symbolic_length.trace_symbolic` can make T symbolic.
"""
from __future__ import annotations

from spikec.ir import Graph, Node, Value

from . import reroll_loops as rr
from .canonicalize import RULES as CANON_RULES
from .lif_step import LifParams, identify
from .lif_tail import absorb_first_step, absorb_last_step, collapse_collector, fill_value
from .manager import stat
from .registry import register
from .rewrite import Builder, apply_patterns, dead_code_elimination

_SHAPE_ONLY = ("full_like", "zeros_like", "ones_like", "empty_like")


def _split_shape_seeds(graph: Graph) -> dict[int, tuple[Node, Value]]:
    """Give every `*_like(select(X, t))` its own copy of the slice; returns {id(copy): (copy,
    original slice)}: the copies are blocked as seeds (a slice used only for its shape is
    not a step input) and merged back where their loop was not fused."""
    copies = {}
    for node in list(graph.nodes):
        if node.op not in _SHAPE_ONLY:
            continue
        src = node.args.get("self")
        p = src.producer if isinstance(src, Value) else None
        if p is None or rr.seed_index(p, {}) is None:
            continue
        dup = graph.make_node(p.op, dict(p.args), [src.type], loc=p.loc)
        graph.insert_before(node, dup)
        node.args = {**node.args, "self": dup.output}
        copies[id(dup)] = (dup, src)
    return copies


def _merge_copies(graph: Graph, copies: dict) -> None:
    alive = {id(n) for n in graph.nodes}
    for dup, src in copies.values():
        if id(dup) in alive and src.producer is not None and id(src.producer) in alive:
            graph.replace_all_uses(dup.output, src)


def _accept(graph: Graph, plans: dict):
    def accept(plan) -> bool:
        scan = plan.scan
        init = scan.args["init"]
        if len(init) not in (1, 2) or len(scan.args["xs"]) != 1 or scan.args.get("additional_inputs"):
            return False
        if len(scan.outputs) != len(init) + 1 or scan.args["xs"][0].type.rank < 2:
            return False
        p = identify(scan.regions[0], graph.constants)
        if p is None or (len(init) == 2 and not _offset_of(init[1], init[0], p.carry_offset)):
            return False
        plans[id(scan)] = p
        return True
    return accept


def _offset_of(u: Value, v: Value, k: float) -> bool:
    """Is u = v + k (add / sub of v and a number literal)?"""
    p = u.producer
    if p is None or p.op not in ("add", "sub") or p.args.get("self") is not v or p.arg("alpha") != 1:
        return False
    c = p.args.get("other")
    if not isinstance(c, (int, float)) or isinstance(c, bool):
        return False
    got = c if p.op == "add" else -c
    return abs(got - k) <= 1e-6 * (1 + abs(k))


def reroll_lif(graph: Graph) -> dict[int, LifParams]:
    """reroll-loops' driver with LIF bodies only and shape-only slices blocked; returns
    {id(scan): params} of the scans it made."""
    plans: dict[int, LifParams] = {}
    accept = _accept(graph, plans)
    copies = _split_shape_seeds(graph)
    blocked = set(copies)
    while True:
        labels = rr._label(graph, blocked)
        users = graph.users()
        for comp in rr._components(graph, labels):
            loop = rr.Loop(comp, labels)
            run = loop.longest_run()
            built = rr.build(graph, loop, *run, users) if run else None
            if built is None or not accept(built[0]):
                blocked |= rr._culprits(comp, loop.seeds)
            else:
                built[1]()
            break
        else:
            _merge_copies(graph, copies)
            return plans


def _permute_time(b: Builder, x: Value) -> Value:
    """Swap the scan's time-major [T, B, ...] and the op's [B, T, ...] (the same permutation)."""
    perm = [1, 0] + list(range(2, x.type.rank))
    return b.op("permute", {"self": x, "dims": perm})


def replace_with_lif(graph: Graph, scan: Node, p: LifParams) -> Node:
    b = Builder(graph, scan)
    x = _permute_time(b, scan.args["xs"][0])
    init = scan.args["init"][0]
    fill = fill_value(init)
    v0 = None if fill is not None and fill == p.v_reset else init
    spikes, v_final = b.op("lif", {"x": x, "v0": v0, "tau": p.tau, "v_threshold": p.v_threshold,
                                   "v_reset": p.v_reset, "alpha": p.alpha})
    graph.replace_all_uses(scan.outputs[0], v_final)
    if len(scan.outputs) == 3:         # the rotated loop's v + k
        graph.replace_all_uses(scan.outputs[1], b.op("add", {"self": v_final, "other": p.carry_offset}))
    graph.replace_all_uses(scan.outputs[-1], _permute_time(b, spikes))
    graph.nodes.remove(scan)
    scan.graph = None
    return v_final.producer


def fuse_lif_loops(graph: Graph) -> int:
    """Fuse every unrolled LIF loop of `graph`; returns how many."""
    before = {id(n) for n in graph.nodes}
    plans = reroll_lif(graph)
    fused = []
    for node in list(graph.nodes):
        if node.op == "scan" and id(node) in plans and id(node) not in before:
            fused.append((replace_with_lif(graph, node, plans[id(node)]), plans[id(node)]))
    if fused:
        apply_patterns(graph, CANON_RULES)
        for lif, p in fused:
            lif = absorb_first_step(graph, lif, p) or lif
            lif = absorb_last_step(graph, lif, p) or lif
            collapse_collector(graph, lif)
        dead_code_elimination(graph)
        rr.toposort(graph)             # a rebuilt lif sits where the scan was: after its first step's users
        apply_patterns(graph, CANON_RULES)
    dead_code_elimination(graph)       # also drops the slice copies of loops left alone
    return len(fused)


@register("fuse-lif")
def fuse_lif(graph: Graph) -> None:
    """Replace an unrolled multi-step LIF neuron (loop over t of charge, fire, hard reset) by one lif node."""
    stat("fused-lif", fuse_lif_loops(graph))
