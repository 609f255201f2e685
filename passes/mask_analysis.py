"""Mask analysis: what does a data-independent mask subgraph mean?

Attention masks are built from constants, `arange` and comparisons; they
depend on the sequence length only, never on data. Rather than matching the
many ways of writing `j <= i` (tril, triu, compare, sub+le, folded constants,
...), we evaluate the mask at a few concrete lengths and classify the result:

  causal   allowed[i, j] = j <= i
  band     allowed[i, j] = i - w < j <= i             (report w)
  full     every position allowed
  decay    M[i, j] = gamma ** (i - j) for j <= i, else 0  (gamma per head or scalar)
  unknown  anything else: callers must not fuse.

Sampling covers the length's declared range up to `MAX_SAMPLE`: within it a
band always shows. Beyond (an unbounded or larger range) a band wider than
the largest sample would look causal.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
import torch

from spikec.ir import Graph, Value
from spikec.ir.types import sym

MAX_SAMPLE = 4096           # largest length a symbolic softmax mask is evaluated at
MAX_SAMPLE_DECAY = 1024     # ... and a multiplicative (decay) mask, which is classified in float64
NEG_LIMIT = -1e9            # a fill this negative counts as -inf (exp underflows to 0)


@dataclass(frozen=True)
class MaskInfo:
    kind: str                           # causal | band | full | decay | unknown
    window: int | None = None           # band width (keys seen per query, itself included)
    gamma: torch.Tensor | None = None   # decay: [H] (per head) or [1]


UNKNOWN = MaskInfo("unknown")


class MaskEvaluator:
    """Decides which values are data-independent and evaluates them at concrete lengths."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._static: dict[int, bool] = {}
        self._index = {id(n): i for i, n in enumerate(graph.nodes)}
        self._cache: dict[tuple, torch.Tensor | None] = {}

    def _pos(self, n) -> int:
        if id(n) not in self._index:       # nodes added by a rewrite since we started
            self._index = {id(m): i for i, m in enumerate(self.graph.nodes)}
        return self._index.get(id(n), -1)

    # -- data independence ----------------------------------------------------
    def is_static(self, v) -> bool:
        """True for literals and values computed only from constants and lengths."""
        if not isinstance(v, Value):
            return True
        if id(v) in self._static:
            return self._static[id(v)]
        cone, stack, seen = [], [v.producer], set()
        while stack:                       # iterative: cones can be the whole model
            n = stack.pop()
            if n is None or id(n) in seen or id(n.outputs[0]) in self._static:
                continue
            seen.add(id(n))
            cone.append(n)
            stack.extend(i.producer for i in n.inputs)
        for n in sorted(cone, key=self._pos):
            if n.op == "constant":
                t = self.graph.constants.get(n.args["name"])
                ok = isinstance(t, torch.Tensor) and t.device.type != "meta"
            else:
                ok = (not n.regions and n.opdef.category == "core"
                      and all(i.producer is not None and self._static.get(id(i), False) for i in n.inputs))
            for o in n.outputs:
                self._static[id(o)] = ok
        return self._static.get(id(v), False)

    # -- evaluation -----------------------------------------------------------
    def evaluate(self, v, env: dict) -> torch.Tensor | None:
        """The value of a static `v` with symbols bound by `env` (name -> int); None on failure."""
        if not isinstance(v, Value):
            return torch.tensor(v)
        key = (id(v), tuple(sorted(env.items())))
        if key not in self._cache:
            self._cache[key] = self._evaluate(v, env) if self.is_static(v) else None
        return self._cache[key]

    def _evaluate(self, v: Value, env: dict) -> torch.Tensor | None:
        subs = {sym(k): sympy.Integer(n) for k, n in env.items()}
        cone, stack, seen = [], [v.producer], set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            cone.append(n)
            stack.extend(i.producer for i in n.inputs)
        vals: dict[int, object] = {}
        try:
            with torch.no_grad():
                for n in sorted(cone, key=self._pos):
                    if n.op == "constant":
                        out = self.graph.constants[n.args["name"]]
                    else:
                        args = {k: _concrete(a, vals, subs) for k, a in n.args.items()}
                        out = n.opdef.call(args)
                    outs = list(out) if isinstance(out, (tuple, list)) else [out]
                    for o, t in zip(n.outputs, outs):
                        vals[id(o)] = t
        except Exception:             # an op that cannot run here: the mask stays unknown
            return None
        return vals[id(v)]

    def samples(self, dims, cap: int = MAX_SAMPLE) -> list[dict]:
        """Symbol bindings to evaluate at: the square score dims' symbols at a few lengths,
        the largest being the top of the symbol's range (so a band is seen if it ever shows)
        unless that exceeds `cap`."""
        names = set()
        for d in dims:
            if isinstance(d, sympy.Expr):
                names |= {s.name for s in d.free_symbols}
        if not names:
            return [{}]
        envs = []
        for L in (5, 37, cap):
            env = {}
            for name in sorted(names):
                lo, hi = self.graph.symbols.get(name, (1, None))
                env[name] = max(lo or 1, min(L, hi if hi is not None else L))
            if env not in envs:
                envs.append(env)
        return envs


def _concrete(a, vals, subs):
    if isinstance(a, Value):
        return vals[id(a)]
    if isinstance(a, (list, tuple)):
        return [_concrete(x, vals, subs) for x in a]
    if isinstance(a, sympy.Expr):
        return int(a.xreplace(subs))
    return a


def concrete_dim(d, env: dict) -> int:
    return int(d) if isinstance(d, int) else int(d.xreplace({sym(k): sympy.Integer(n) for k, n in env.items()}))


# -- classification of one concrete mask ---------------------------------------
def _band(L: int, w: int | None) -> torch.Tensor:
    i = torch.arange(L)[:, None]
    j = torch.arange(L)[None, :]
    allowed = j <= i
    return allowed & (j > i - w) if w is not None else allowed


def uniform_2d(t: torch.Tensor, keep_heads: bool = False) -> torch.Tensor | None:
    """Collapse the leading dims of a [..., T, T] mask that must not vary over them.
    With keep_heads, dim -3 (heads) may vary: returns [H, T, T]."""
    if t.dim() < 2:
        return None
    lead = t.shape[:-3] if keep_heads and t.dim() >= 3 else t.shape[:-2]
    first = t.reshape(-1, *t.shape[len(lead):])[0] if lead.numel() else None
    if first is None or not bool((t == first).all()):
        return None
    if keep_heads:
        return first if first.dim() == 3 else first[None]
    return first


def classify_allowed(allowed: torch.Tensor, L: int) -> MaskInfo:
    """Classify a boolean mask broadcastable to [..., L, L] (True = may attend)."""
    a = uniform_2d(torch.broadcast_to(allowed, (*allowed.shape[:-2], L, L)))
    if a is None or a.shape != (L, L):
        return UNKNOWN
    if bool(a.all()):
        return MaskInfo("full")
    w = int(a[-1].sum())                 # the last query sees min(w, L) keys
    if w == L and torch.equal(a, _band(L, None)):
        return MaskInfo("causal")
    if 0 < w < L and torch.equal(a, _band(L, w)):
        return MaskInfo("band", window=w)
    return UNKNOWN


def classify_decay(m: torch.Tensor, L: int) -> MaskInfo:
    """Classify a multiplicative mask [..., L, L]: causal 0/1, or gamma**(i-j) masked causal
    with gamma per head (dim -3) or scalar."""
    m = uniform_2d(torch.broadcast_to(m, (*m.shape[:-2], L, L)).double(), keep_heads=True)
    if m is None or L < 2:
        return UNKNOWN
    causal = _band(L, None)
    if bool((m[:, ~causal] != 0).any()):
        return UNKNOWN
    if bool((m[:, causal] == 1).all()):
        return MaskInfo("causal")
    gamma = m[:, 1, 0]                                   # [H]
    if not bool(((gamma > 0) & (gamma <= 1)).all()):
        return UNKNOWN
    dist = (torch.arange(L)[:, None] - torch.arange(L)[None, :]).clamp(min=0).double()
    want = torch.where(causal, gamma[:, None, None] ** dist, torch.zeros((), dtype=torch.float64))
    if not torch.allclose(m, want, rtol=1e-4, atol=1e-6):
        return UNKNOWN
    if bool((gamma == gamma[0]).all()):
        gamma = gamma[:1]
    return MaskInfo("decay", gamma=gamma.float())


def merge(results: list[tuple[int, MaskInfo]]) -> MaskInfo:
    """Combine the classifications at several lengths into one answer (or unknown)."""
    kinds = {r.kind for _, r in results}
    if not results or "unknown" in kinds:
        return UNKNOWN
    if kinds == {"full"}:
        return MaskInfo("full")
    if kinds <= {"causal", "band"}:
        windows = {r.window for _, r in results if r.kind == "band"}
        if not windows:
            return MaskInfo("causal")
        if len(windows) > 1:
            return UNKNOWN
        w = windows.pop()
        # a length shorter than the window sees a causal mask: consistent
        if all(L <= w for L, r in results if r.kind == "causal"):
            return MaskInfo("band", window=w)
        return UNKNOWN
    if kinds <= {"decay", "causal"} and "causal" not in kinds:
        gammas = [r.gamma for _, r in results]
        if all(g.shape == gammas[0].shape and torch.allclose(g, gammas[0], rtol=1e-5) for g in gammas):
            return results[0][1]
    return UNKNOWN


def dropped_values(fill: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The fill values at the positions `keep` drops (a scalar fill: itself, if any is dropped)."""
    if fill.numel() == 1:
        return fill.reshape(1) if not bool(keep.all()) else fill.reshape(-1)[:0]
    f, k = torch.broadcast_tensors(fill, keep)
    return f[~k]


def is_neg_inf_like(t: torch.Tensor) -> bool:
    return bool((t <= NEG_LIMIT).all()) if t.numel() else True

