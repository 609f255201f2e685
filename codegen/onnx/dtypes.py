"""IR dtype names <-> ONNX element types, and the dtype an elementwise op computes in."""
from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto

from spikec.ir import TensorType, Value
from spikec.ir.types import torch_dtype

ONNX_TYPES: dict[str, int] = {
    "f32": TensorProto.FLOAT, "f64": TensorProto.DOUBLE, "f16": TensorProto.FLOAT16,
    "bf16": TensorProto.BFLOAT16, "i64": TensorProto.INT64, "i32": TensorProto.INT32,
    "i16": TensorProto.INT16, "i8": TensorProto.INT8, "u8": TensorProto.UINT8,
    "u16": TensorProto.UINT16, "u32": TensorProto.UINT32, "u64": TensorProto.UINT64,
    "bool": TensorProto.BOOL, "f8e4m3": TensorProto.FLOAT8E4M3FN, "f8e5m2": TensorProto.FLOAT8E5M2,
    "c64": TensorProto.COMPLEX64, "c128": TensorProto.COMPLEX128,
}

NUMPY_TYPES: dict[str, type] = {
    "f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64, "i32": np.int32,
    "i16": np.int16, "i8": np.int8, "u8": np.uint8, "bool": np.bool_,
}


def onnx_type(dtype: str) -> int:
    return ONNX_TYPES[dtype]


def is_float(dtype: str) -> bool:
    return dtype.startswith("f") or dtype == "bf16"


def _meta(arg):
    # A stand-in with the right dtype and "dimensionality class" for torch's promotion rules:
    # 0-dim tensors and python numbers rank below dimensioned tensors.
    if isinstance(arg, Value):
        t = arg.type
        return torch.empty((1,) if t.rank else (), dtype=torch_dtype(t.dtype), device="meta")
    return arg


def promoted(*args) -> str:
    """The dtype torch computes `args` (Values or python numbers) in, as an IR dtype name."""
    from spikec.ir.types import dtype_name
    metas = [_meta(a) for a in args if a is not None]
    if len(metas) == 1:
        m = metas[0]
        return dtype_name(m.dtype) if isinstance(m, torch.Tensor) else dtype_name(torch.tensor(m).dtype)
    dt = torch.result_type(metas[0], metas[1])
    for m in metas[2:]:
        dt = torch.result_type(torch.empty((1,), dtype=dt, device="meta"), m)
    return dtype_name(dt)


def value_dtype(v) -> str:
    return v.type.dtype if isinstance(v, Value) and isinstance(v.type, TensorType) else promoted(v)
