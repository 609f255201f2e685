"""A channel-gated `linear_attention` whose gate is log(1 - k) of its own k -> gate_kind key_tied.

SpikingBrain-76B's linear branch decays the state by 1 - k (k = sigmoid(x)); the
zoo writes the log-gate as `logsigmoid(-x)`, which torch decomposes into six ops.
Whatever the spelling, the check is semantic: the gate and k must both be computed
elementwise from one tensor X (the gate's cone, walked back over same-shape nodes,
must end at X or static values; k must be reached from X by a chain of same-shape
nodes), and exp(gate) must equal 1 - k on random X (N(0, 2), or U(0.02, 0.98)
when that gives non-finite values) within rtol 1e-5, atol 1e-6. The node then
loses its gate tensor; the gate's computation becomes dead.
"""
from __future__ import annotations

import torch

from spikec.ir import Graph, Node, Value

from .la_region import GraphIndex, Region, RegionRunner, concrete_shape, one_thread
from .rewrite import dead_code_elimination

MAX_CONE = 40


def _same_shape_input(n: Node, out: Value, static: dict) -> Value | None:
    data = [v for v in n.inputs if id(v) not in static]
    if n.regions or n.opdef.category != "core" or len(data) != 1 or data[0].type != out.type:
        return None
    return data[0]


def _key_chain(k: Value, static: dict) -> list[Value]:
    """k and the values it is computed from elementwise, nearest first."""
    chain = [k]
    while chain[-1].producer is not None and len(chain) < MAX_CONE:
        x = _same_shape_input(chain[-1].producer, chain[-1], static)
        if x is None:
            break
        chain.append(x)
    return chain


def _gate_cone(g: Value, sources: set[int], static: dict) -> tuple[list[Node], set[int]] | None:
    """Nodes computing g elementwise from `sources` (and static values); the sources used."""
    nodes, used, stack, seen = [], set(), [g], set()
    while stack:
        v = stack.pop()
        if id(v) in seen or id(v) in static:
            continue
        seen.add(id(v))
        if id(v) in sources:
            used.add(id(v))
            continue
        n = v.producer
        if n is None or n.regions or n.opdef.category != "core" or v.type != g.type or len(nodes) > MAX_CONE:
            return None
        nodes.append(n)
        stack.extend(n.inputs)
    return nodes, used


def _is_key_tied(ix: GraphIndex, la: Node) -> bool:
    graph, static = ix.graph, ix.static
    k, g = la.args["k"], la.args.get("gate")
    if not isinstance(g, Value) or g.type != k.type:
        return False
    chain = _key_chain(k, static)
    cone = _gate_cone(g, {id(v) for v in chain}, static)
    if cone is None or len(cone[1]) != 1:
        return False
    nodes, used = cone
    x = next(v for v in chain if id(v) in used)
    k_nodes = [v.producer for v in chain[:chain.index(x)]]
    region = Region(g, nodes=sorted(set(nodes + k_nodes), key=lambda n: ix.position[id(n)]), inputs=[x],
                    statics=[v for n in nodes + k_nodes for v in n.inputs if id(v) in static])
    runner = RegionRunner(ix, region)
    env = {name: max(lo or 1, min(5, hi if hi is not None else 5)) for name, (lo, hi) in graph.symbols.items()}
    dtype = getattr(torch, {"f32": "float32", "f64": "float64"}.get(x.type.dtype, ""), None)
    if dtype is None:
        return False
    gen = torch.Generator().manual_seed(7)
    shape = concrete_shape(x.type, env)
    for draw in (lambda: 2 * torch.randn(shape, generator=gen), lambda: 0.02 + 0.96 * torch.rand(shape, generator=gen)):
        got = runner.run({id(x): draw().to(dtype)}, env, [g, k])
        if got is None:
            continue
        gv, kv = got
        if not (torch.isfinite(gv).all() and ((kv > 0) & (kv < 1)).all()):
            continue
        return bool(torch.allclose(gv.exp().double(), 1 - kv.double(), rtol=1e-5, atol=1e-6))
    return False


def tie_key_gates(graph: Graph) -> int:
    """Turn every channel gate equal to log(1 - k) into gate_kind key_tied; returns how many."""
    with one_thread():
        return _tie_key_gates(graph)


def _tie_key_gates(graph: Graph) -> int:
    ix = GraphIndex(graph)
    done = 0
    for n in graph.nodes:
        if n.op == "linear_attention" and n.arg("gate_kind") == "channel" and _is_key_tied(ix, n):
            args = {k: a for k, a in n.args.items() if k != "gate"}
            args["gate_kind"] = "key_tied"
            n.args = n.opdef.normalize_args(args)
            done += 1
    if done:
        dead_code_elimination(graph)
    return done
