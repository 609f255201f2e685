"""Capture a causal LM's three entry points as graphs: forward, prefill, decode.

A language model that follows the zoo's protocol (`forward(ids)`, `prefill(ids)
-> (logits, cache)`, `step(ids, cache) -> (logits, cache)`, `init_cache(B)`)
is traced three times through thin wrappers that flatten the cache pytree into
a list of tensors, so every entry is a plain tensors-in / tensors-out graph:

    forward(ids[B, T])                       -> logits[B, T, V]
    prefill(ids[B, T])                       -> logits[B, T, V], *state
    decode(ids[B, 1], *state)                -> logits[B, 1, V], *state

The state layout (one record per flattened cache tensor) is found by running the
eager prefill at two lengths: a dim that changes with the prompt length is a
growing KV cache (symbol `P`), everything else has constant size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils._pytree import tree_flatten, tree_flatten_with_path, tree_unflatten, keystr

from spikec.ir import FrontendError, Graph
from spikec.runtime.state import StateSlot

LM_METHODS = ("prefill", "step", "init_cache")


def is_causal_lm(model) -> bool:
    return isinstance(model, torch.nn.Module) and all(callable(getattr(model, m, None)) for m in LM_METHODS)


@dataclass
class LMGraphs:
    entries: dict[str, Graph]
    state: list[StateSlot] = field(default_factory=list)
    vocab_size: int = 0
    skipped: dict[str, str] = field(default_factory=dict)   # entry -> why it could not be captured
    meta: dict = field(default_factory=dict)                 # vocab size, model type, config (the manifest's meta)
    derived: dict[str, str] = field(default_factory=dict)    # entry -> the entry it is cut from (forward <- prefill)


class _Forward(torch.nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        return self.lm(ids)


class _Prefill(_Forward):
    def forward(self, ids):
        logits, cache = self.lm.prefill(ids)
        return (logits, *tree_flatten(cache)[0])


class _Decode(_Forward):
    def __init__(self, lm, spec):
        super().__init__(lm)
        self.spec = spec

    def run(self, ids, state):
        logits, cache = self.lm.step(ids, tree_unflatten(list(state), self.spec))
        return (logits, *tree_flatten(cache)[0])


def _decode_module(lm, spec, n_state: int) -> _Decode:
    # torch.export wants one positional parameter per input (a *state tuple would be
    # one input to it), so the forward signature is spelled out for this cache.
    names = ", ".join(f"s{i}" for i in range(n_state))
    ns: dict = {}
    exec(f"def forward(self, ids, {names}):\n    return self.run(ids, [{names}])\n", ns)
    cls = type("_Decode", (_Decode,), {"forward": ns["forward"]})
    return cls(lm, spec)


def _path_name(path) -> str:
    return keystr(path).replace("['", ".").replace("']", "").replace("[", ".").replace("]", "").lstrip(".")


def state_layout(model, vocab: int, lengths=(5, 9), batch: int = 2) -> tuple[list[StateSlot], object]:
    """Run the eager prefill at two lengths; classify each cache tensor."""
    caches = []
    with torch.no_grad():
        for L in lengths:
            ids = torch.randint(0, vocab, (batch, L), generator=torch.Generator().manual_seed(L))
            caches.append(model.prefill(ids)[1])
    (a, spec), (b, _) = tree_flatten_with_path(caches[0]), tree_flatten_with_path(caches[1])
    slots = []
    for (path, x), (_, y) in zip(a, b):
        name = _path_name(path)
        shape = []
        for i, (m, n) in enumerate(zip(x.shape, y.shape)):
            shape.append("P" if m != n else ("B" if i == 0 and m == batch and x.dim() > 0 else int(m)))
        if x.dim() == 0:
            kind = "position"
        elif "P" in shape:
            kind = "kv_cache"
        elif name.endswith(("k", "v")):
            kind = "ring"
        else:
            kind = "recurrent"
        slots.append(StateSlot(name, shape, str(x.dtype).replace("torch.", ""), kind))
    return slots, tree_flatten(caches[0])[1]


def drop_state(prefill: Graph) -> Graph:
    """The forward entry from a prefill graph: logits only, dead code removed."""
    from spikec.passes import dead_code_elimination
    g = prefill.copy()
    g.name = "forward"
    g.set_outputs(g.outputs[:1])
    dead_code_elimination(g)
    return g


def _trace(from_torch: Callable, module, inputs, dynamic, what: str) -> Graph:
    try:
        return from_torch(module, inputs, dynamic=dynamic)
    except FrontendError as e:
        raise FrontendError(f"could not capture the {what} entry: {e.message}", where=e.where, hint=e.hint) from e


def capture_lm(model, vocab_size: int, *, max_len: int = 65536, max_batch: int = 64,
               example_len: int = 20, example_batch: int = 2, entries=("forward", "prefill", "decode"),
               trace_fixed: Callable | None = None) -> LMGraphs:
    """Trace the entries of a zoo-style causal LM with symbolic batch B and length T (P for KV caches).

    `trace_fixed(module, make_inputs)` is called for an entry whose length cannot stay
    symbolic in torch.export (a Python loop over time): it must return a graph with
    a symbolic T (the API passes `trace_symbolic` + fusion here)."""
    from spikec.frontend import from_torch

    model.eval()
    slots, spec = state_layout(model, vocab_size)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (example_batch, example_len), generator=gen)
    seq = {"T": (2, max_len, {0: 1}), "B": (1, max_batch, {0: 0})}
    out: dict[str, Graph] = {}
    skipped: dict[str, str] = {}
    derived: dict[str, str] = {}

    def seq_entry(name, module):
        try:
            return from_torch(module, (ids,), dynamic=seq)
        except FrontendError as e:
            first = e
        if trace_fixed is None:
            skipped[name] = first.message
            return None

        def make(L):
            return (torch.randint(0, vocab_size, (example_batch, L), generator=torch.Generator().manual_seed(L)),)
        try:
            return trace_fixed(module, make)
        except Exception as e:
            skipped[name] = f"{first.message} (and tracing at two lengths failed: {type(e).__name__}: {e})"
            return None

    if "prefill" in entries:
        out["prefill"] = seq_entry("prefill", _Prefill(model))
    if "forward" in entries:
        # forward is prefill without the state outputs: one trace instead of two.
        if out.get("prefill") is not None:
            out["forward"] = drop_state(out["prefill"])
            derived["forward"] = "prefill"
        elif "prefill" in skipped:            # the same recurrence stops forward; don't trace twice
            skipped["forward"] = skipped["prefill"]
        else:
            out["forward"] = seq_entry("forward", _Forward(model))
    out = {k: v for k, v in out.items() if v is not None}
    if "decode" in entries:
        with torch.no_grad():
            _, cache = model.prefill(ids)
        state = tree_flatten(cache)[0]
        dyn = {"B": (1, max_batch, {0: 0, **{i + 1: 0 for i, s in enumerate(slots) if s.shape and s.shape[0] == "B"}})}
        growing = {i + 1: s.shape.index("P") for i, s in enumerate(slots) if "P" in s.shape}
        if growing:
            dyn["P"] = (None, None, growing)
        g = _trace(from_torch, _decode_module(model, spec, len(state)), (ids[:, :1], *state), dyn, "decode")
        if growing and "P" not in g.symbols:
            raise FrontendError("the decode entry specialised the KV-cache length; it would only run at one length",
                                where=f"{type(model).__name__}.step")
        out["decode"] = g
    cfg = getattr(model, "config", None)
    meta = {"vocab_size": vocab_size, "model_type": getattr(cfg, "model_type", type(model).__name__),
            "config": cfg.to_dict() if hasattr(cfg, "to_dict") else {}, "skipped": skipped}
    return LMGraphs(out, slots, vocab_size, skipped, meta, derived)
