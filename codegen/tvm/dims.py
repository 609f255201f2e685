"""IR dims (ints and sympy expressions over named symbols) -> TVM PrimExprs.

Every symbol becomes one int64 `tirx.Var` per lowering, shared by all shapes,
so Relax sees `T` in an input shape and in a derived shape as the same var.
"""
from __future__ import annotations

import sympy
import tvm
from tvm import tirx

from .errors import TvmLoweringError


class DimMap:
    def __init__(self):
        self.vars: dict[str, tirx.Var] = {}

    def var(self, name: str) -> tirx.Var:
        if name not in self.vars:
            self.vars[name] = tirx.Var(_safe(name), "int64")
        return self.vars[name]

    def __call__(self, d):
        """An IR dim (int or sympy expr) as a PrimExpr (python ints stay ints)."""
        if isinstance(d, bool):
            raise TypeError("a dim cannot be a bool")
        if isinstance(d, int):
            return d
        if isinstance(d, tvm.ir.expr.Expr):
            return d
        return self._expr(sympy.sympify(d))

    def shape(self, dims) -> list:
        return [self(d) for d in dims]

    def _expr(self, e: sympy.Expr):
        if e.is_Integer:
            return tirx.IntImm("int64", int(e))
        if e.is_Symbol:
            return self.var(e.name)
        if e.is_Add:
            out = None
            for a in e.args:
                x = self._expr(a)
                out = x if out is None else out + x
            return out
        if e.is_Mul:
            num, den = sympy.fraction(e)
            if den != 1:             # a*T/64 only appears as an exact or floored quotient
                return tirx.floordiv(self._expr(num), self._expr(den))
            out = None
            for a in e.args:
                x = self._expr(a)
                out = x if out is None else out * x
            return out
        if e.is_Pow and e.exp.is_Integer and int(e.exp) > 0:
            base = self._expr(e.base)
            out = base
            for _ in range(int(e.exp) - 1):
                out = out * base
            return out
        name = type(e).__name__
        if name == "FloorDiv":
            return tirx.floordiv(self._expr(e.args[0]), self._expr(e.args[1]))
        if name in ("Mod", "PythonMod"):
            return tirx.floormod(self._expr(e.args[0]), self._expr(e.args[1]))
        if name in ("CeilDiv", "IntTrueDiv") and len(e.args) == 2:
            a, b = self._expr(e.args[0]), self._expr(e.args[1])
            return tirx.floordiv(a + b - 1, b)
        if name == "floor":
            return self._expr(e.args[0])
        if name == "ceiling":
            num, den = sympy.fraction(sympy.together(e.args[0]))
            a, b = self._expr(num), self._expr(den)
            return tirx.floordiv(a + b - 1, b)
        if name == "Max":
            return _fold(tirx.max, [self._expr(a) for a in e.args])
        if name == "Min":
            return _fold(tirx.min, [self._expr(a) for a in e.args])
        raise TvmLoweringError(f"the cpu target cannot express the symbolic dim {e} ({name}) in TVM",
                               hint="simplify the shape expression, or trace with a static length")


def _fold(fn, xs):
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "s"
