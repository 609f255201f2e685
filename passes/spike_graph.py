"""Finding the spike-coded projections of a graph (for the report, calibration and export).

A spiked projection is either the activation form the pass writes,

    %c, %vth = spike_encode(%x, k)            [%c = clamp(%c, lo, hi)]
    %xh = mul(%c, %vth)   [_to_copy]   [straight_through(%x, %xh)]
    %y = linear(%xh, %W, %b)

or the event form `%y = spike_linear(%c, %vth, %W, %b, coding)`. The walk goes by
structure, not by value names, so it survives cse, renaming and the text round trip.
"""
from __future__ import annotations

from dataclasses import dataclass

from spikec.ir import Graph, Node, Value

from .spike_targets import projection_name

_PASS_THROUGH = ("_to_copy", "clamp")


@dataclass
class SpikedProjection:
    name: str
    linear: Node              # the linear or spike_linear node
    encode: Node              # its spike_encode
    counts: Value             # the counts that reach the projection (after any clamp)

    @property
    def in_features(self) -> int:
        return int(self.linear.arg("weight").type.shape[-1])

    @property
    def out_features(self) -> int:
        return int(self.linear.arg("weight").type.shape[0])


def _counts_of(v: Value) -> tuple[Node, Value] | None:
    """(spike_encode node, counts value) if `v` is (a clamp/cast of) spike_encode's counts."""
    cur = v
    while cur.producer is not None and cur.producer.op in _PASS_THROUGH:
        cur = cur.producer.arg("self")
    p = cur.producer
    if p is not None and p.op == "spike_encode" and cur.index == 0:
        return p, v
    return None


def decoded_input(v: Value) -> tuple[Node, Value] | None:
    p = v.producer
    if p is not None and p.op == "straight_through":
        return decoded_input(p.arg("y"))
    if p is not None and p.op == "_to_copy":
        return decoded_input(p.arg("self"))
    if p is not None and p.op == "mul":
        for a in (p.arg("self"), p.arg("other")):
            if isinstance(a, Value):
                hit = _counts_of(a)
                if hit is not None:
                    return hit
    return None


def spiked_projections(graph: Graph) -> list[SpikedProjection]:
    out = []
    for n in graph.nodes:
        if n.op == "linear":
            hit = decoded_input(n.arg("input"))
        elif n.op == "spike_linear" and not n.arg("trains"):
            hit = _counts_of(n.arg("s"))
        else:
            continue
        if hit is not None:
            out.append(SpikedProjection(projection_name(n), n, hit[0], hit[1]))
    return out
