"""Value types of the IR: tensors with int or symbolic dims, and scalars.

A symbolic dim is a sympy expression over named integer symbols (``T``,
``2*T``, ``FloorDiv(T, 64)``); the ranges of the symbols live on the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import sympy
import torch

# Short dtype names used in the text form, in both directions.
DTYPES: dict[str, torch.dtype] = {
    "f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64,
    "f8e4m3": torch.float8_e4m3fn, "f8e5m2": torch.float8_e5m2,
    "i8": torch.int8, "i16": torch.int16, "i32": torch.int32, "i64": torch.int64,
    "u8": torch.uint8, "u16": torch.uint16, "u32": torch.uint32, "u64": torch.uint64,
    "bool": torch.bool, "c64": torch.complex64, "c128": torch.complex128,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}

Dim = Union[int, sympy.Expr]


def dtype_name(dt: torch.dtype) -> str:
    try:
        return DTYPE_NAMES[dt]
    except KeyError:
        raise ValueError(f"dtype {dt} has no spikec name; supported: {', '.join(DTYPES)}") from None


def torch_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}") from None


def sym(name: str) -> sympy.Symbol:
    """The one canonical symbol for a name, so that parsed and built graphs compare equal."""
    return sympy.Symbol(name, integer=True, nonnegative=True)


def norm_dim(d) -> Dim:
    """Ints stay ints; sympy integers become ints; other expressions stay symbolic."""
    if isinstance(d, bool):
        raise TypeError("a dim cannot be a bool")
    if isinstance(d, int):
        return d
    if isinstance(d, sympy.Expr):
        if d.is_Integer:
            return int(d)
        return d
    if isinstance(d, str):
        return sym(d)
    raise TypeError(f"a dim must be an int or a symbolic expression, got {type(d).__name__}")


def dim_symbols(d: Dim) -> set[str]:
    return set() if isinstance(d, int) else {s.name for s in d.free_symbols}


class _DimPrinter(sympy.printing.str.StrPrinter):
    # Ignore torch's own `_sympystr` (it prints FloorDiv as `//`, which does
    # not read back as the same expression); print every function as Name(args).
    printmethod = "_spikec_str"

    def _print_Function(self, expr):
        return f"{type(expr).__name__}({', '.join(self._print(a) for a in expr.args)})"

    _print_Max = _print_Function
    _print_Min = _print_Function


_printer = _DimPrinter()


def dim_str(d: Dim) -> str:
    if isinstance(d, int):
        return str(d)
    if isinstance(d, sympy.Symbol):
        return d.name
    return "(" + _printer.doprint(d) + ")"


@dataclass(frozen=True)
class TensorType:
    shape: tuple
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(norm_dim(d) for d in self.shape))
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; known: {', '.join(DTYPES)}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for d in self.shape:
            out |= dim_symbols(d)
        return out

    def numel(self) -> Dim:
        n: Dim = 1
        for d in self.shape:
            n = n * d
        return norm_dim(n) if not isinstance(n, int) else n

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(dim_str(d) for d in self.shape)}]"

    @staticmethod
    def of(t: torch.Tensor) -> "TensorType":
        return TensorType(tuple(int(s) for s in t.shape), dtype_name(t.dtype))


@dataclass(frozen=True)
class ScalarType:
    """A host scalar (the result of `.item()`-like ops)."""
    dtype: str

    def symbols(self) -> set[str]:
        return set()

    def __str__(self) -> str:
        return f"{self.dtype}"


Type = Union[TensorType, ScalarType]
