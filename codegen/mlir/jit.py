"""linalg-on-tensors -> LLVM -> torch-mlir's ExecutionEngine, with a small invoker.

The lowering follows the reference-backend recipe: bufferize, then rewrite the entry point
to the refbackend calling convention (inputs as unranked memrefs, results handed to an
external `refbackend_consume_func_return_<types>` callback), then deallocate, then lower
to loops and LLVM. Deallocation runs after the rewrite so that result buffers are freed
once the callback returned (the callback copies them out); run before, they would leak.
log1p, tanh and erf go to libm: math-to-llvm by default turns log1p into log(1 + x) (2.7e-5
relative error near 0) and the refbackend's op expansion approximates tanh and erf (7e-7 and
5e-5); libm's log1pf / tanhf / erff are within an ulp of torch.
"""
from __future__ import annotations

import ctypes
import re

import numpy as np

from .toolchain import run_pipeline

BUFFERIZE = ("func.func(linalg-generalize-named-ops),func.func(linalg-fuse-elementwise-ops),convert-shape-to-std,"
             "func.func(refback-generalize-tensor-pad),func.func(refback-generalize-tensor-concat),"
             "func.func(tm-tensor-bufferize),"
             "one-shot-bufferize{copy-before-write bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map},"
             "refback-mlprogram-bufferize,refback-munge-calling-conventions")
DEALLOCATE = ("ownership-based-buffer-deallocation,buffer-deallocation-simplification,"
              "bufferization-lower-deallocations,inline")
TO_LLVM = ("func.func(tm-tensor-to-loops),func.func(refback-munge-memref-copy),func.func(convert-linalg-to-loops),"
           "func.func(lower-affine),convert-scf-to-cf,func.func(arith-expand),"
           "func.func(convert-math-to-llvm{approximate-log1p=false}),convert-math-to-libm,expand-strided-metadata,"
           "finalize-memref-to-llvm,"
           "lower-affine,convert-bufferization-to-memref,finalize-memref-to-llvm,func.func(convert-arith-to-llvm),"
           "convert-vector-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,convert-complex-to-llvm,"
           "reconcile-unrealized-casts")
PIPELINE = f"builtin.module({BUFFERIZE},{DEALLOCATE},{TO_LLVM})"

CALLBACK_PREFIX = "refbackend_consume_func_return_"
_ELEMENT = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64, "i32": np.int32,
            "i8": np.int8, "i1": np.bool_}


class _Unranked(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int64), ("descriptor", ctypes.c_void_p)]


def _ranked_struct(rank: int):
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_int64)]
    if rank:
        fields += [("shape", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"MemRef{rank}", (ctypes.Structure,), {"_fields_": fields})


def _descriptor(a: np.ndarray):
    """Ranked descriptor of a C-contiguous array, wrapped as an unranked memref."""
    rank = a.ndim
    d = _ranked_struct(rank)()
    d.allocated = d.aligned = a.ctypes.data
    d.offset = 0
    if rank:
        d.shape = (ctypes.c_int64 * rank)(*a.shape)
        d.strides = (ctypes.c_int64 * rank)(*[s // a.itemsize if a.itemsize else 0 for s in a.strides])
    u = _Unranked(rank, ctypes.cast(ctypes.pointer(d), ctypes.c_void_p))
    return u, d


def _copy_out(u: _Unranked, dtype) -> np.ndarray:
    d = ctypes.cast(u.descriptor, ctypes.POINTER(_ranked_struct(u.rank))).contents
    shape = tuple(d.shape) if u.rank else ()
    strides = tuple(d.strides) if u.rank else ()
    item = np.dtype(dtype).itemsize
    n = int(np.prod(shape)) if shape else 1
    if n == 0:
        return np.zeros(shape, dtype=dtype)
    span = 1 + sum((s - 1) * abs(st) for s, st in zip(shape, strides))
    base = np.ctypeslib.as_array((ctypes.c_uint8 * (span * item)).from_address(d.aligned + d.offset * item))
    arr = np.lib.stride_tricks.as_strided(base.view(dtype), shape, [st * item for st in strides])
    return np.array(arr, copy=True)


class JitFunction:
    """`main` of a linalg-on-tensors module, compiled by the LLVM ExecutionEngine."""

    def __init__(self, module, func_name: str = "main", opt_level: int = 0):
        from torch_mlir.execution_engine import ExecutionEngine
        self.func_name = func_name
        run_pipeline(module, f"builtin.module({BUFFERIZE})", "bufferizing linalg for the CPU execution engine")
        self.result_types = self._callback_types(module)
        run_pipeline(module, f"builtin.module({DEALLOCATE},{TO_LLVM})", "lowering linalg to LLVM")
        self.engine = ExecutionEngine(module, opt_level=opt_level)
        self._results: list | None = None
        arg_t = [ctypes.POINTER(_Unranked)] * len(self.result_types)
        self._callback = ctypes.CFUNCTYPE(None, *arg_t)(self._consume)      # kept alive with self
        name = CALLBACK_PREFIX + "_".join("mr" + t for t in self.result_types)
        self.engine.register_runtime(name, self._callback)

    @staticmethod
    def _callback_types(module) -> list[str]:
        # the munged module declares `func.func private @refbackend_consume_func_return_mrf32_mri64(...)`
        names = re.findall(rf"@{CALLBACK_PREFIX}(\w+)\(", str(module.operation.get_asm(large_elements_limit=1)))
        if len(set(names)) != 1:
            raise RuntimeError(f"expected one result callback, found {sorted(set(names))}")
        return [t[2:] for t in names[0].split("_")]

    def _consume(self, *ptrs):
        self._results = [_copy_out(p.contents, _ELEMENT[t]) for p, t in zip(ptrs, self.result_types)]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        keep, args = [], []
        for a in arrays:
            a = np.ascontiguousarray(a)
            u, d = _descriptor(a)
            keep.append((a, u, d))
            args.append(ctypes.pointer(ctypes.pointer(u)))
        self._results = None
        self.engine.invoke(self.func_name, *args)
        out, self._results = self._results, None
        return out
