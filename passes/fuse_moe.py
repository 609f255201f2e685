"""fuse-moe: router + expert FFNs + weighted combine (+ shared expert) -> one `moe` node.

Recognition has two halves (see moe_match for the shapes it reads):

1. Structure. A router `topk(softmax|sigmoid(linear(h, W_r)), k)`; SwiGLU experts with
   constant weights; an accumulation chain `base (+) expert_e(X_e) * w_e ...` ending the
   layer, optionally `+ shared(h)`.
   Or an einsum of a combine matrix with the stacked expert outputs.
2. Meaning of the bookkeeping, checked on probes. However the dispatch is written
   (`torch.where`/`nonzero` + `index_add`, one-hot masks, scatter-built dense combine
   weights, Mixtral's `expert_mask[e]`, one-hot einsums), each term must compute, for one
   expert e, rows = the tokens that chose e, X_e = h[rows], w_e = their top-k weight
   (renormalised or not). We run the routing side on random router logits built so that
   every expert is chosen, and compare with that definition; the experts must be covered
   once each. A combine that uses other weights (the full softmax, a 0/1 mask, the first
   choice's weight for every slot) or scatters to other rows fails here.

With `check` (default) the fused layer is also compared with the original subgraph on a
random input and the real weights (relative error <= 1e-4) before the rewrite.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
import torch

from spikec.ir import Graph, TensorType, Value, torch_dtype
from spikec.ir.ops_moe import moe_reference

from .manager import stat
from .moe_match import Chain, Expert, Router, chain_ends, match_chain, match_einsum_combine, match_router
from .moe_probe import Probe, constant_tensor, probe_size
from .registry import register
from .rewrite import Builder, dead_code_elimination

CHECK_RTOL = 1e-4


@dataclass
class MoESpec:
    router: Router
    chain: Chain
    experts: list[Expert]          # in expert-id order
    renormalize: bool


@dataclass
class Expected:
    """What each expert's term must compute on one probe: its dense weight column, and
    the (sorted) tokens that chose it with their weights."""
    columns: torch.Tensor                              # [N, E]
    routed: list[tuple[torch.Tensor, torch.Tensor]]    # per expert: tokens, weights


def expected_routing(logits: torch.Tensor, activation: str, k: int, renormalize: bool) -> Expected:
    p = logits.float().softmax(-1) if activation == "softmax" else logits.float().sigmoid()
    w, idx = p.topk(k, dim=-1)
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    E = logits.shape[-1]
    routed = []
    for e in range(E):
        tok, slot = torch.where(idx == e)              # tokens ascending; a token picks e at most once
        routed.append((tok, w[tok, slot]))
    return Expected(torch.zeros(logits.shape[0], E).scatter_add(1, idx, w), routed)


def _probe_logits(n: int, E: int, offset: int, dtype, gen) -> torch.Tensor:
    """Random logits whose top choice of token i is expert (i + offset) mod E."""
    logits = torch.randn(n, E, generator=gen) * 0.5
    logits[torch.arange(n), (torch.arange(n) + offset) % E] += 4.0
    return logits.to(dtype)


def _term_matches(probe: Probe, term, h: torch.Tensor, want: Expected) -> set[int] | None:
    """Experts e whose definition the term computes on this probe (None: not computable)."""
    w = probe(term.weight)
    x = probe(term.expert.x)
    if w is None or x is None or not w.is_floating_point():
        return None
    if term.column is not None:
        w = w.select(*term.column)
    w = w.reshape(-1).float()
    if term.rows is None:                               # dense: every token, weight column
        if x.shape != h.shape or not torch.equal(x, h) or w.numel() != h.shape[0]:
            return None
        cols = want.columns
        return {e for e in range(cols.shape[1]) if torch.allclose(w, cols[:, e], rtol=1e-5, atol=1e-6)}
    rows = probe(term.rows)
    if rows is None or rows.dim() != 1 or rows.is_floating_point() or w.numel() != rows.numel():
        return None
    if x.dim() != 2 or x.shape[0] != rows.numel() or not torch.equal(x, h[rows]):
        return None
    order = rows.argsort()
    rows, w = rows[order], w[order]
    return {e for e, (tok, wt) in enumerate(want.routed)
            if torch.equal(rows, tok) and torch.allclose(w, wt, rtol=1e-5, atol=1e-6)}


def _is_zero_like(probe: Probe, v: Value, h: torch.Tensor) -> bool:
    z = probe(v)
    return z is not None and z.shape == h.shape and not bool(z.any())


def analyse(graph: Graph, router: Router, chain: Chain) -> MoESpec | None:
    """The MoE layer `chain` computes with `router`, or None (with a stat saying why)."""
    E, k, h = router.num_experts, router.top_k, router.h
    if len(chain.terms) != E:
        stat("rejected:expert-count")
        return None
    if chain.out.type != h.type or any(t.expert.out.type.shape[-1] != h.type.shape[-1] for t in chain.terms):
        stat("rejected:shape")
        return None
    gen = torch.Generator().manual_seed(0)
    n, bindings = _probe_rows(graph, h)
    hx = torch.randn(n, h.type.shape[1], generator=gen).to(_dtype(h))
    candidates = {flag: [set(range(E)) for _ in chain.terms] for flag in (False, True)}
    for offset in range(0, E, max(n, 1)):          # enough probes that every expert is chosen
        logits = _probe_logits(n, E, offset, _dtype(router.logits), gen)
        probe = Probe(graph, {h: hx, router.logits: logits}, bindings)
        for flag in (False, True):
            want = expected_routing(logits, router.activation, k, flag)
            for i, term in enumerate(chain.terms):
                got = _term_matches(probe, term, hx, want)
                candidates[flag][i] &= got if got is not None else set()
        if chain.base is not None and not _is_zero_like(probe, chain.base, hx):
            stat("rejected:base")
            return None
        if chain.shared is not None and not _equal(probe(chain.shared.x), hx):
            stat("rejected:shared-input")
            return None
    for flag in (False, True):
        cands = candidates[flag]
        if all(len(c) == 1 for c in cands) and sorted(next(iter(c)) for c in cands) == list(range(E)):
            experts = [None] * E
            for term, c in zip(chain.terms, cands):
                experts[next(iter(c))] = term.expert
            return MoESpec(router, chain, experts, flag)
    stat("rejected:dispatch")
    return None


def _probe_rows(graph: Graph, h: Value) -> tuple[int, dict]:
    """Token count of a probe and the symbol values that give it."""
    bindings = probe_size(h.type.shape[0], graph.symbols)
    dim = h.type.shape[0]
    return (dim if isinstance(dim, int) else int(dim.xreplace(bindings))), bindings


def _dtype(v: Value) -> torch.dtype:
    return torch_dtype(v.type.dtype)


def _equal(a, b) -> bool:
    return a is not None and a.shape == b.shape and torch.equal(a, b)


def _stacked(spec: MoESpec):
    return {name: torch.stack([getattr(e, name) for e in spec.experts]) for name in ("w_gate", "w_up", "w_down")}


def _args(spec: MoESpec, graph: Graph, tensors: dict) -> dict:
    router_w = constant_tensor(graph, spec.router.weight)
    args = dict(router_weight=router_w, **tensors, top_k=spec.router.top_k, activation=spec.router.activation,
                renormalize=spec.renormalize)
    if spec.chain.shared is not None:
        s = spec.chain.shared
        args.update(shared_gate=s.w_gate, shared_up=s.w_up, shared_down=s.w_down)
    return args


def _matches_reference(graph: Graph, spec: MoESpec, tensors: dict) -> bool:
    if any(t.device.type == "meta" for t in tensors.values()):
        return True                      # no data to compare (meta-device weights)
    h = spec.router.h
    n, bindings = _probe_rows(graph, h)
    x = torch.randn(n, h.type.shape[1], generator=torch.Generator().manual_seed(1)).to(_dtype(h))
    got = Probe(graph, {h: x}, bindings)(spec.chain.out)
    if got is None:
        return False
    with torch.no_grad():
        want = moe_reference(x, **_args(spec, graph, tensors))
    err = float((got.double() - want.double()).norm() / want.double().norm().clamp_min(1e-30))
    return err <= CHECK_RTOL


def _prefix(graph: Graph, router: Router, index: int) -> str:
    p = router.weight.producer
    if p is not None and p.op == "constant":
        parts = p.args["name"].split(".")
        if len(parts) > 2:
            return ".".join(parts[:-2]) + "."
    return f"moe{index}."


def _constant(graph: Graph, b: Builder, name: str, t: torch.Tensor) -> Value:
    base, i = name, 1
    while name in graph.constants:
        name, i = f"{base}_{i}", i + 1
    graph.constants[name] = t
    return b.op("constant", {"name": name}, types=[TensorType.of(t)])


def _weight_value(graph: Graph, b: Builder, v: Value, name: str) -> Value:
    """The router/shared weight as a graph value: reuse a plain constant, else fold one."""
    if v.producer is not None and v.producer.op == "constant":
        return v
    return _constant(graph, b, name, constant_tensor(graph, v))


def rewrite(graph: Graph, spec: MoESpec, index: int, tensors: dict) -> Value:
    out = spec.chain.out
    b = Builder(graph, out.producer)
    prefix = _prefix(graph, spec.router, index)
    args = {"x": spec.router.h, "router_weight": _weight_value(graph, b, spec.router.weight, prefix + "gate.weight")}
    for name, t in tensors.items():
        args[name] = _constant(graph, b, f"{prefix}experts.{name}", t)
    s = spec.chain.shared
    if s is not None:
        for name, node in (("shared_gate", s.nodes[3]), ("shared_up", s.nodes[4]), ("shared_down", s.nodes[0])):
            args[name] = _weight_value(graph, b, node.arg("weight"), f"{prefix}{name}.weight")
    args.update(top_k=spec.router.top_k, activation=spec.router.activation, renormalize=spec.renormalize)
    new = b.op("moe", args, types=[out.type])
    graph.replace_all_uses(out, new)
    return new


def _constant_names(graph: Graph) -> set[str]:
    return {n.args["name"] for n in graph.walk() if n.op == "constant"}


def _prune_constants(graph: Graph, before: set[str]) -> None:
    """Drop the tensors whose last reader the rewrite removed (the per-expert weights)."""
    for name in before - _constant_names(graph):
        graph.constants.pop(name, None)


def _symbols_in_use(graph: Graph) -> set[str]:
    """Symbols named by a value's type or a literal argument (the dispatch's nonzero sizes, T, ...)."""
    out: set[str] = set()

    def literal(a):
        if isinstance(a, list):
            for x in a:
                literal(x)
        elif isinstance(a, sympy.Expr):
            out.update(s.name for s in a.free_symbols)

    values = list(graph.inputs)
    for n in graph.walk():
        values += n.outputs + [v for r in n.regions for v in r.inputs]
        for a in n.attrs.values():
            literal(a)
    for v in values:
        if isinstance(v.type, TensorType):
            out |= v.type.symbols()
    return out


@register("fuse-moe")
def fuse_moe(graph: Graph, *, check: bool = True) -> None:
    """Fuse router + expert FFNs + weighted combine (+ shared expert) into one `moe` node."""
    routers = [r for n in graph.nodes if (r := match_router(graph, n)) is not None]
    if not routers:
        return
    users = graph.users()
    chains = [c for v in chain_ends(graph) if (c := match_chain(graph, v, users)) is not None]
    chains += [c for n in graph.nodes if n.op == "einsum"
               if (c := match_einsum_combine(graph, n.output, users)) is not None]
    stat("routers", len(routers))
    symbols_before = _symbols_in_use(graph)
    fused, stale = 0, set()
    for whole in chains:
        for router in routers:
            if id(router.topk) in stale:
                continue
            cut = len(whole.terms) > router.num_experts and len(whole.partial) == len(whole.terms)
            chain = whole.prefix(router.num_experts) if cut else whole
            spec = analyse(graph, router, chain)
            if spec is None:
                continue
            tensors = _stacked(spec)
            if check and not _matches_reference(graph, spec, tensors):
                stat("rejected:check")
                continue
            old_names = _constant_names(graph)
            rewrite(graph, spec, fused, tensors)
            stale.add(id(router.topk))
            fused += 1
            dead_code_elimination(graph)
            _prune_constants(graph, old_names)
            break
    for name in symbols_before - _symbols_in_use(graph):     # the data-dependent sizes of the old dispatch
        graph.symbols.pop(name, None)
    stat("fused", fused)
