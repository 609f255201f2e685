"""Symbolic dims (sympy expressions over T, u0, ...) computed at run time in ONNX.

A symbol is read off the first tensor that carries it as a plain dimension
(`Shape(x)[axis]`); an expression becomes Add/Mul/Div/Mod on int64 [1] tensors.
Every result is cached, so each expression is computed once per graph.
"""
from __future__ import annotations

from typing import Callable

import sympy

from ..errors import LoweringError
from .builder import NodeSink


class DimEmitter:
    def __init__(self, sink: NodeSink, locate: Callable[[str], tuple[str, int] | None]):
        self.sink = sink
        self.locate = locate          # symbol name -> (onnx tensor carrying it, axis)
        self._cache: dict = {}

    def vec(self, d) -> str:
        """int64 [1] tensor holding dim `d` (int or sympy expression)."""
        if isinstance(d, int):
            return self.sink.i64([d])
        if d.is_Integer:
            return self.sink.i64([int(d)])
        if d not in self._cache:
            self._cache[d] = self._emit(d)
        return self._cache[d]

    def scalar(self, d) -> str:
        """0-d int64 tensor (what Range and Gather indices want)."""
        if isinstance(d, int) or d.is_Integer:
            return self.sink.scalar(int(d), "i64")
        key = ("scalar", d)
        if key not in self._cache:
            self._cache[key] = self.sink.op("Squeeze", [self.vec(d), self.sink.i64([0])])
        return self._cache[key]

    def shape(self, dims) -> str:
        """int64 [rank] shape tensor; a constant when every dim is static."""
        if all(isinstance(d, int) for d in dims):
            return self.sink.i64(dims)
        return self.sink.op("Concat", [self.vec(d) for d in dims], axis=0, hint="shape")

    # -- expressions ------------------------------------------------------------
    def _emit(self, e) -> str:
        s = self.sink
        if isinstance(e, sympy.Symbol):
            loc = self.locate(e.name)
            if loc is None:
                raise LoweringError(f"onnx: no tensor carries symbolic dim {e.name!r}, so its value is unknown at run time",
                                    hint="make the dim appear in a graph input's shape")
            tensor, axis = loc
            return s.op("Shape", [tensor], start=axis, end=axis + 1, hint=f"dim_{e.name}")
        if isinstance(e, sympy.Add):
            out = self.vec(e.args[0])
            for a in e.args[1:]:
                out = s.op("Add", [out, self.vec(a)])
            return out
        if isinstance(e, sympy.Mul):
            out = self.vec(e.args[0])
            for a in e.args[1:]:
                out = s.op("Mul", [out, self.vec(a)])
            return out
        if isinstance(e, sympy.Pow) and e.exp.is_Integer and int(e.exp) > 0:
            out = base = self.vec(e.base)
            for _ in range(int(e.exp) - 1):
                out = s.op("Mul", [out, base])
            return out
        name = type(e).__name__
        if name in ("FloorDiv", "CleanDiv", "IntTrueDiv") and len(e.args) == 2:
            a, b = self.vec(e.args[0]), self.vec(e.args[1])
            # floor division for any sign: (a - a mod b) / b divides exactly
            return s.op("Div", [s.op("Sub", [a, s.op("Mod", [a, b])]), b])
        if name in ("Mod", "PythonMod") and len(e.args) == 2:
            return s.op("Mod", [self.vec(e.args[0]), self.vec(e.args[1])])
        if name in ("Max", "Min"):
            return s.op(name, [self.vec(a) for a in e.args])
        if name == "CeilDiv" and len(e.args) == 2:
            # ceil(a / b) = -floor(-a / b)
            na, b = s.op("Neg", [self.vec(e.args[0])]), self.vec(e.args[1])
            return s.op("Neg", [s.op("Div", [s.op("Sub", [na, s.op("Mod", [na, b])]), b])])
        raise LoweringError(f"onnx: cannot compute the symbolic dim {e} ({name}) at run time",
                            hint="simplify the shape expression or make the dim static")
