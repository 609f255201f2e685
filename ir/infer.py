"""Shape and dtype inference.

Ops with a torch reference implementation get inference for free: the op is
run on fake tensors whose symbolic dims are torch SymInts (FakeTensorMode with
a ShapeEnv), and the result's symbolic sizes are read back as spikec symbols.
Structured ops and `constant` declare their own rule.
"""
from __future__ import annotations

import logging
from typing import Any

import sympy
import torch
from torch._dynamo.source import ConstantSource
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv

from .graph import Value, map_values
from .types import ScalarType, TensorType, Type, dtype_name, norm_dim, sym, torch_dtype

# Dims an inference could not tie to a known symbol (fresh data-dependent sizes).
WILDCARD_PREFIX = "?"

_PRIMES = [17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101]


class InferContext:
    """One symbolic-shape environment shared by the inferences of one graph."""

    def __init__(self, symbols: dict[str, tuple] | None = None, constants: dict | None = None):
        self.symbols = dict(symbols or {})
        self.constants = constants
        self.regions: list = []
        self._env = ShapeEnv()
        self._mode = FakeTensorMode(shape_env=self._env, allow_non_fake_inputs=True)
        self._to_torch: dict[sympy.Symbol, sympy.Symbol] = {}
        self._from_torch: dict[sympy.Symbol, sympy.Symbol] = {}
        self.hints: dict[sympy.Symbol, int] = {}
        self.symbols_key = tuple(sorted((k, tuple(v)) for k, v in self.symbols.items()))

    # Each spikec symbol gets one torch symbol with a distinct hint, so that
    # unrelated sizes are not mistaken for equal ones.
    def _torch_symbol(self, s: sympy.Symbol) -> sympy.Symbol:
        if s not in self._to_torch:
            lo, hi = self.symbols.get(s.name, (0, None))
            hint = _PRIMES[len(self._to_torch) % len(_PRIMES)] + 100 * (len(self._to_torch) // len(_PRIMES))
            hint = max(hint, (lo or 0) + 1)
            if hi is not None:
                hint = min(hint, hi)
            ts = self._env.create_symbol(hint, ConstantSource(f"spikec_{s.name}"),
                                         dynamic_dim=DimDynamic.DYNAMIC)
            self._to_torch[s], self._from_torch[ts] = ts, s
            self.hints[s] = hint
        return self._to_torch[s]

    def to_symint(self, d):
        if isinstance(d, int):
            return d
        expr = d.xreplace({s: self._torch_symbol(s) for s in d.free_symbols})
        hint = int(d.xreplace(self.hints_for(d)))
        return self._env.create_symintnode(expr, hint=hint)

    def hints_for(self, d) -> dict:
        for s in d.free_symbols:
            self._torch_symbol(s)
        return {s: sympy.Integer(self.hints[s]) for s in d.free_symbols}

    def from_torch_dim(self, d):
        if isinstance(d, int):
            return d
        expr = d.node.expr
        unknown = [s for s in expr.free_symbols if s not in self._from_torch]
        if unknown:
            return sym(WILDCARD_PREFIX + str(unknown[0]))
        return norm_dim(expr.xreplace(self._from_torch))

    def fake(self, t: TensorType) -> torch.Tensor:
        with self._mode:
            return torch.empty([self.to_symint(d) for d in t.shape], dtype=torch_dtype(t.dtype))

    def type_of(self, result) -> Type:
        if isinstance(result, torch.Tensor):
            return TensorType(tuple(self.from_torch_dim(d) for d in result.shape), dtype_name(result.dtype))
        if isinstance(result, bool):
            return ScalarType("bool")
        if isinstance(result, (int, torch.SymInt)):
            return ScalarType("i64")
        if isinstance(result, (float, torch.SymFloat)):
            return ScalarType("f64")
        raise TypeError(f"cannot type a result of kind {type(result).__name__}")

    def run_fake(self, opdef, args: dict[str, Any]) -> list[Type]:
        def to_fake(v):
            return self.fake(v.type) if isinstance(v.type, TensorType) else self.to_symint(sym("?scalar"))

        def lit(a):
            if isinstance(a, list):
                return [lit(x) for x in a]
            if isinstance(a, sympy.Expr):
                return self.to_symint(a)
            return a

        concrete = {k: lit(map_values(a, to_fake)) for k, a in args.items()}
        with self._mode, _quiet_fake_tensor_log():
            found = _decomposition(opdef) if opdef.name in PREFER_DECOMPOSITION else None
            try:
                out = _call_positionally(*found, concrete) if found else opdef.call(concrete)
            except Exception:
                # Some aten kernels want concrete sizes; their Python decomposition
                # (what torch.export itself traced through) handles symbolic ones.
                found = _decomposition(opdef)
                if found is None:
                    raise
                out = _call_positionally(*found, concrete)
        if isinstance(out, (tuple, list)):
            return [self.type_of(o) for o in out]
        return [self.type_of(out)]


# Ops whose meta kernel specialises symbolic sizes to their hints (constant_pad_nd's
# returns [17, 3, 51, 4] for [B, 3, T, 4]); their Python decompositions keep them symbolic.
PREFER_DECOMPOSITION = {"constant_pad_nd"}


def _cache_key(opdef, args: dict[str, Any]):
    # Repeated computations (layers, unrolled time steps) share one inference.
    def k(a):
        if isinstance(a, Value):
            return ("v", str(a.type))
        if isinstance(a, (list, tuple)):
            return ("l",) + tuple(k(x) for x in a)
        if isinstance(a, float) and a != a:
            return ("nan",)
        return (type(a).__name__, str(a))
    return (opdef.name,) + tuple((name, k(a)) for name, a in args.items())


class _quiet_fake_tensor_log:
    """A failing meta kernel is an answer here, not something to log at ERROR."""
    _logger = logging.getLogger("torch._subclasses.fake_tensor")

    def __enter__(self):
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
        return False


def _decomposition(opdef):
    from torch._decomp import decomposition_table
    for target in opdef.torch_targets:
        if target in decomposition_table:
            return target, decomposition_table[target]
    return None


def _call_positionally(target, fn, args: dict):
    # Decompositions name their parameters freely (`input` for `self`): bind by schema position.
    positional, keywords = [], {}
    for a in target._schema.arguments:
        if a.kwarg_only:
            if a.name in args:
                keywords[a.name] = args[a.name]
        elif a.name in args:
            positional.append(args[a.name])
        elif a.has_default_value():
            positional.append(a.default_value)
        else:
            break
    return fn(*positional, **keywords)


def infer_types(opdef, args: dict[str, Any], ctx: InferContext, regions=()) -> list[Type] | None:
    """Output types of an op applied to `args` (Values carry the input types)."""
    ctx.regions = list(regions)
    if opdef.infer is not None:
        return opdef.infer(opdef, {k: map_values(a, lambda v: v.type) for k, a in args.items()}, ctx)
    key = (_cache_key(opdef, args), ctx.symbols_key)
    hit = _GLOBAL_CACHE.get(key)
    if hit is None:
        hit = ctx.run_fake(opdef, args)
        if len(_GLOBAL_CACHE) > 50_000:      # bounded: drop everything rather than track ages
            _GLOBAL_CACHE.clear()
        _GLOBAL_CACHE[key] = hit
    return list(hit)


# Inference depends only on the op, its argument types/literals and the symbol
# ranges, so results are shared across contexts (verify-each re-checks the same
# nodes after every pass).
_GLOBAL_CACHE: dict[tuple, list] = {}


def dims_match(declared, inferred, ctx: InferContext) -> bool:
    """Equal as expressions; a wildcard matches anything; an int that torch
    specialised from a hint matches the symbolic dim with that hint value."""
    if isinstance(declared, int) and isinstance(inferred, int):
        return declared == inferred
    if not isinstance(inferred, int) and any(s.name.startswith(WILDCARD_PREFIX) for s in inferred.free_symbols):
        return True
    if not isinstance(declared, int) and not isinstance(inferred, int):
        return sympy.simplify(declared - inferred) == 0
    expr = declared if not isinstance(declared, int) else inferred
    other = inferred if expr is declared else declared
    return int(expr.xreplace(ctx.hints_for(expr))) == other


def types_match(declared: Type, inferred: Type, ctx: InferContext) -> bool:
    if isinstance(declared, ScalarType) or isinstance(inferred, ScalarType):
        return isinstance(declared, ScalarType) and isinstance(inferred, ScalarType)
    return (declared.dtype == inferred.dtype and declared.rank == inferred.rank
            and all(dims_match(a, b, ctx) for a, b in zip(declared.shape, inferred.shape)))
