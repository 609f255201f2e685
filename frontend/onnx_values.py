"""Values met while importing ONNX: IR values, and values known at import time.

The dynamo exporter computes shapes at run time (Shape -> Gather -> Concat ->
Reshape). Such small integer tensors are evaluated at import as numpy object
arrays whose elements are python ints or sympy dims, so that the IR gets
literal (possibly symbolic) sizes instead of shape arithmetic.
"""
from __future__ import annotations

import numpy as np
import sympy
import torch
from onnx import TensorProto

from spikec.ir.types import torch_dtype

# ONNX element type -> IR dtype name. STRING and the 4-bit/e8m0 types have no IR dtype.
ONNX_TO_IR = {
    TensorProto.FLOAT: "f32", TensorProto.DOUBLE: "f64", TensorProto.FLOAT16: "f16",
    TensorProto.BFLOAT16: "bf16", TensorProto.INT8: "i8", TensorProto.INT16: "i16",
    TensorProto.INT32: "i32", TensorProto.INT64: "i64", TensorProto.UINT8: "u8",
    TensorProto.UINT16: "u16", TensorProto.UINT32: "u32", TensorProto.UINT64: "u64",
    TensorProto.BOOL: "bool", TensorProto.COMPLEX64: "c64", TensorProto.COMPLEX128: "c128",
    TensorProto.FLOAT8E4M3FN: "f8e4m3", TensorProto.FLOAT8E5M2: "f8e5m2",
}
INT_DTYPES = {"i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"}
FLOAT_DTYPES = {"f16", "bf16", "f32", "f64", "f8e4m3", "f8e5m2"}

# Known integer tensors up to this many elements are folded at import; larger
# ones (and all float data) stay graph constants.
FOLD_LIMIT = 1024
FLOAT_FOLD_LIMIT = 16


class NoFold(Exception):
    """Raised by a fold rule that cannot decide its result at import (e.g. T == 4)."""


class Val:
    """One ONNX value: an IR Value (`ir`), a value known at import (`known`,
    a numpy array), or both once a known value has been materialised."""
    __slots__ = ("ir", "known", "dtype", "name")

    def __init__(self, ir=None, known: np.ndarray | None = None, dtype: str | None = None, name: str | None = None):
        self.ir = ir
        self.known = known
        self.dtype = dtype if dtype is not None else ir.type.dtype
        self.name = name

    @property
    def shape(self) -> tuple:
        return tuple(self.ir.type.shape) if self.ir is not None else tuple(int(d) for d in self.known.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)


def simplify(x):
    """One element of a known array in canonical form: int, bool, float or a sympy dim."""
    if isinstance(x, sympy.Basic):
        if x is sympy.true or x is sympy.false:
            return bool(x)
        if x.is_Integer:
            return int(x)
        if x.is_Float or x.is_Rational:
            return float(x)
        return x
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x)
    return x


def as_obj(a: np.ndarray) -> np.ndarray:
    """An object array of python scalars / sympy dims (python semantics, no overflow)."""
    out = np.empty(a.shape, dtype=object)
    for idx, x in np.ndenumerate(a):
        out[idx] = simplify(x)
    return out


def obj_array(items, shape=None) -> np.ndarray:
    items = list(items)
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = simplify(x)
    return out.reshape(shape if shape is not None else (len(items),))


def is_symbolic(a: np.ndarray | None) -> bool:
    return a is not None and a.dtype == object and any(
        isinstance(x, sympy.Basic) and not x.is_number for x in a.flat)


def to_torch(a: np.ndarray, dtype: str) -> torch.Tensor:
    """A torch tensor of IR dtype `dtype` from a (non-symbolic) known array."""
    td = torch_dtype(dtype)
    if a.dtype == object:
        return torch.tensor(a.tolist() if a.ndim else a.item(), dtype=td)
    if dtype == "bf16" or dtype.startswith("f8"):
        # numpy holds these as ml_dtypes; reinterpret the bits.
        raw = np.ascontiguousarray(a).view(np.uint16 if dtype == "bf16" else np.uint8)
        return torch.from_numpy(raw.copy()).view(td)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a).copy()
    t = torch.from_numpy(a)
    return t if t.dtype == td else t.to(td)


NUMPY_DTYPES = {
    "f16": np.float16, "f32": np.float32, "f64": np.float64, "i8": np.int8, "i16": np.int16,
    "i32": np.int32, "i64": np.int64, "u8": np.uint8, "u16": np.uint16, "u32": np.uint32,
    "u64": np.uint64, "bool": np.bool_, "c64": np.complex64, "c128": np.complex128,
}
