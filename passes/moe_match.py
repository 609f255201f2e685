"""Structure of an MoE layer in a traced graph: the router, the SwiGLU experts and the
chain that accumulates their weighted outputs. What the index bookkeeping between
them computes is checked separately, by probes (see fuse_moe).

    router   topk(softmax|sigmoid(linear(h, W_r)) [cast], k)           (dim -1, largest)
    expert   linear(silu(linear(X, W_g)) * linear(X, W_u), W_d)        (weights from constants)
    term     expert(X) * w   or   w * expert(X)                          (casts allowed around it)
    step     index_put(acc, [rows], term, accumulate=True) | index_add(acc, 0, rows, term)
             | add(acc, term) | add(term, acc)
    chain    zeros | shared expert | a first term, then steps; optionally + shared expert
    einsum   einsum('ne,ned->nd', C, stack([expert_0(h), ...], 1)) (+ shared expert): term e
             weighs by column e of C
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from spikec.ir import Graph, Node, Value

from .moe_probe import constant_tensor

CASTS = ("_to_copy", "to", "clone", "alias")
ZERO_FILLS = ("full", "full_like", "zeros", "zeros_like", "new_zeros")


def strip_casts(v):
    while isinstance(v, Value) and v.producer is not None and v.producer.op in CASTS:
        v = v.producer.arg("self")
    return v


def _last_dim(dim, rank: int) -> bool:
    return isinstance(dim, int) and dim % rank == rank - 1


@dataclass
class Router:
    topk: Node
    h: Value                  # the tokens, [N, D]
    logits: Value             # linear(h, W_r), before any cast
    weight: Value             # W_r [E, D] as a graph value
    activation: str
    top_k: int

    @property
    def num_experts(self) -> int:
        return self.weight.type.shape[0]


def match_router(graph: Graph, node: Node) -> Router | None:
    if node.op != "topk" or node.arg("largest") is not True:
        return None
    probs = strip_casts(node.arg("self"))
    if not isinstance(probs, Value) or probs.producer is None or probs.type.rank != 2:
        return None
    if not _last_dim(node.arg("dim"), 2):
        return None
    act = probs.producer
    if act.op in ("softmax", "_softmax") and _last_dim(act.arg("dim"), 2):
        activation = "softmax"
    elif act.op == "sigmoid":
        activation = "sigmoid"
    else:
        return None
    logits = strip_casts(act.arg("self"))
    lin = logits.producer if isinstance(logits, Value) else None
    if lin is None or lin.op != "linear" or lin.arg("bias") is not None:
        return None
    h, w = lin.arg("input"), lin.arg("weight")
    if not isinstance(h, Value) or h.type.rank != 2 or constant_tensor(graph, w) is None:
        return None
    k = node.arg("k")
    if not isinstance(k, int) or not 1 <= k <= w.type.shape[0]:
        return None
    return Router(node, h, logits, w, activation, k)


@dataclass
class Expert:
    x: Value                  # the rows the expert runs on
    out: Value                # down(...)
    w_gate: torch.Tensor
    w_up: torch.Tensor
    w_down: torch.Tensor
    nodes: list[Node] = field(default_factory=list)


def _linear_of(graph: Graph, v) -> tuple[Value, torch.Tensor] | None:
    n = v.producer if isinstance(v, Value) else None
    if n is None or n.op != "linear" or n.arg("bias") is not None:
        return None
    w = constant_tensor(graph, n.arg("weight"))
    return (n.arg("input"), w) if w is not None and w.dim() == 2 else None


def match_expert(graph: Graph, v) -> Expert | None:
    """v = down(silu(gate x) * up x), SwiGLU with constant weights."""
    v = strip_casts(v)
    down = _linear_of(graph, v)
    if down is None:
        return None
    m, w_down = down
    mul = m.producer if isinstance(m, Value) else None
    if mul is None or mul.op != "mul":
        return None
    for a, b in ((mul.arg("self"), mul.arg("other")), (mul.arg("other"), mul.arg("self"))):
        act = a.producer if isinstance(a, Value) else None
        if act is None or act.op != "silu":
            continue
        gate, up = _linear_of(graph, act.arg("self")), _linear_of(graph, b)
        if gate is None or up is None or gate[0] is not up[0]:
            continue
        if gate[1].shape != up[1].shape or w_down.shape != gate[1].shape[::-1]:
            continue
        nodes = [v.producer, mul, act, act.arg("self").producer, b.producer]
        return Expert(gate[0], v, gate[1], up[1], w_down, nodes)
    return None


@dataclass
class Term:
    """expert(x) * weight, scattered to `rows` (None: every token, dense form). With
    `column` = (axis, i) the weight is slice i along `axis` of a combine matrix."""
    expert: Expert
    weight: Value
    rows: Value | None = None
    column: tuple[int, int] | None = None


def match_term(graph: Graph, v) -> Term | None:
    v = strip_casts(v)
    n = v.producer if isinstance(v, Value) else None
    if n is None or n.op != "mul":
        return None
    for a, b in ((n.arg("self"), n.arg("other")), (n.arg("other"), n.arg("self"))):
        e = match_expert(graph, a)
        if e is not None and isinstance(b, Value):
            return Term(e, b)
    return None


def match_step(graph: Graph, v) -> tuple[Value, Term] | None:
    """v = acc (+) term: the accumulator before, and the term added."""
    n = v.producer if isinstance(v, Value) else None
    if n is None:
        return None
    if n.op == "index_put" and n.arg("accumulate") is True:
        idx = n.arg("indices")
        if len(idx) != 1 or not isinstance(idx[0], Value):
            return None
        t = match_term(graph, n.arg("values"))
        if t is not None:
            t.rows = idx[0]
            return n.arg("self"), t
    elif n.op == "index_add" and n.arg("dim") in (0, -2) and n.arg("alpha") == 1:
        t = match_term(graph, n.arg("source"))
        if t is not None:
            t.rows = n.arg("index")
            return n.arg("self"), t
    elif n.op == "add" and n.arg("alpha") == 1:
        a, b = n.arg("self"), n.arg("other")
        for acc, term in ((a, b), (b, a)):
            t = match_term(graph, term)
            if t is not None and isinstance(acc, Value):
                return acc, t
    return None


@dataclass
class Chain:
    out: Value                        # the layer's output
    terms: list[Term]
    base: Value | None                # the zero tensor the terms accumulate into (None: first term)
    shared: Expert | None = None
    partial: list[Value] = field(default_factory=list)    # the sum after each term, in order
    shared_first: bool = False        # the shared expert is the accumulator's start, not a final add

    def prefix(self, n: int) -> "Chain":
        """The first n terms as a layer of their own (later terms, e.g. a gated shared
        expert that reads like one more term, stay outside)."""
        return Chain(self.partial[n - 1], self.terms[:n], self.base, self.shared if self.shared_first else None,
                     self.partial[:n], self.shared_first)


def match_chain(graph: Graph, end: Value, users: dict) -> Chain | None:
    """Read the value `end` of a last step as base + term + term + ... and take a
    following `+ shared(h)` (its only use) into the layer."""
    terms, partial, v = [], [], end
    while True:
        step = match_step(graph, v)
        if step is None:
            break
        partial.append(v)
        v, t = step
        terms.append(t)
    if not terms:
        return None
    base, shared, shared_first = v, None, False
    first = match_term(graph, v)
    if first is not None:                   # dense: out = t0 + t1 + ...
        terms.append(first)
        partial.append(v)
        base = None
    elif (e := match_expert(graph, v)) is not None:
        shared, base = e, None              # out = shared(h) (+) terms...
        shared_first = True
    elif v.producer is None or v.producer.op not in ZERO_FILLS:
        return None
    chain = Chain(end, terms[::-1], base, shared, partial[::-1], shared_first)
    return chain if shared is not None else _with_trailing_shared(graph, chain, users)


def _with_trailing_shared(graph: Graph, chain: Chain, users: dict) -> Chain:
    """Take a following `+ shared(h)` (the chain output's only use) into the layer."""
    after = users.get(chain.out, [])
    if len(after) == 1 and after[0].op == "add" and after[0].arg("alpha") == 1:
        n = after[0]
        other = n.arg("other") if n.arg("self") is chain.out else n.arg("self")
        e = match_expert(graph, other)
        if e is not None:
            chain.shared, chain.out = e, n.output
    return chain


def _stacked(v) -> tuple[list[Value], int] | None:
    """v = stack(items, axis), also as torch.export writes it: view(cat(items, axis))."""
    n = v.producer if isinstance(v, Value) else None
    if n is not None and n.op == "stack":
        items = n.arg("tensors")
        return items, n.arg("dim") % v.type.rank
    if n is None or n.op not in ("view", "reshape", "_unsafe_view"):
        return None
    cat = n.arg("self").producer
    if cat is None or cat.op != "cat":
        return None
    items = cat.arg("tensors")
    shape = items[0].type.shape
    axis = cat.arg("dim") % len(shape)
    if any(it.type.shape != shape for it in items) or v.type.shape != (*shape[:axis], len(items), *shape[axis:]):
        return None
    return items, axis


def match_einsum_combine(graph: Graph, v: Value, users: dict) -> Chain | None:
    """v = einsum('ne,ned->nd', combine, stack([E_0(h), ...], 1)) and its transposed spellings."""
    n = v.producer if isinstance(v, Value) else None
    if n is None or n.op != "einsum" or len(n.arg("tensors")) != 2 or v.type.rank != 2:
        return None
    eq = n.arg("equation").replace(" ", "")
    if "->" not in eq or "." in eq:
        return None
    ins, out = eq.split("->")
    specs = ins.split(",")
    for (c, cs), (s, ss) in (((n.arg("tensors")[0], specs[0]), (n.arg("tensors")[1], specs[1])),
                             ((n.arg("tensors")[1], specs[1]), (n.arg("tensors")[0], specs[0]))):
        st = _stacked(s)
        if st is None or len(cs) != 2 or len(ss) != 3 or len(out) != 2:
            continue
        items, axis = st
        x = ss[axis]
        if x in out or x not in cs or ss.replace(x, "") != out or cs.replace(x, "") != out[0]:
            continue
        experts = [match_expert(graph, it) for it in items]
        if any(e is None for e in experts):
            continue
        terms = [Term(e, c, None, (cs.index(x), i)) for i, e in enumerate(experts)]
        return _with_trailing_shared(graph, Chain(v, terms, None), users)
    return None


def chain_ends(graph: Graph) -> list[Value]:
    """Outputs of accumulation steps that no later step accumulates into."""
    accs, ends = set(), []
    for n in graph.nodes:
        if n.op in ("index_put", "index_add", "add") and len(n.outputs) == 1:
            step = match_step(graph, n.output)
            if step is not None:
                accs.add(id(step[0]))
                ends.append(n.output)
    return [v for v in ends if id(v) not in accs]
