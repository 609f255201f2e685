"""Dense GEMMs of the cpu target (`linear`, `matmul`, `mm`, `bmm`).

Three implementations, chosen with the target option `gemm=`:

- "tir":  the hand-scheduled TensorIR kernel of kernels/dense.py (weights packed
          into column panels at lowering time); used for `linear` with a
          constant weight;
- "blas": torch's GEMM (MKL/oneDNN) as a packed function the VM calls (blas.py);
- "relax": Relax's own matmul, legalized by TOPI and given the default CPU
          schedule (parallel outer loop only): the fallback for everything else
          (batched / broadcast matmuls, non-constant weights, non-f32 dtypes).

The default (DEFAULT below) is the one measured faster on this machine; the
numbers are in docs/targets.md (cpu section) and bench/results/kernels.json.
"""
from __future__ import annotations

from tvm import relax

from .kernels import dense

op = relax.op
DEFAULT = "tir"


def _mode(cx) -> str:
    m = cx.options.get("gemm", DEFAULT)
    if m not in ("tir", "blas", "relax"):
        cx.fail(f"unknown gemm option {m!r}", hint="use gemm='tir', 'blas' or 'relax'")
    return m


def _rows(cx, xv):
    shape = cx.shape(xv)
    rows = 1
    for d in shape[:-1]:
        rows = rows * d
    return shape, rows


def linear(cx, x, xv, w, wv, b, bv, dt):
    mode = _mode(cx)
    N, K = wv.type.shape
    if dt != "f32" or xv.type.rank < 1 or not isinstance(N, int) or not isinstance(K, int):
        mode = "relax"
    wt = cx.constant_of(wv)
    if mode == "tir" and wt is None:
        mode = "blas"
    shape, rows = _rows(cx, xv)
    out_shape = shape[:-1] + [N]
    if mode == "relax":
        y = cx.emit(op.matmul(x, op.permute_dims(w, [1, 0])))
        return y if b is None else op.add(y, b)
    x2 = cx.emit(op.reshape(x, [rows, K]))
    if mode == "tir":
        wp = cx.derived(f"{wv.name}.panels", lambda: dense.pack(wt.float()))
        bt = None if bv is None else cx.constant_of(bv)
        if b is None:
            bp = cx.emit(op.zeros([1], "float32"))
        elif N % dense.NP == 0:
            bp = b
        elif bt is not None:
            bp = cx.derived(f"{bv.name}.padded", lambda: dense.pad_bias(bt.float()))
        else:
            pad = -(-N // dense.NP) * dense.NP - N
            bp = cx.emit(op.concat([b, op.zeros([pad], "float32")]))
        gv = cx.kernel(f"dense_k{K}_n{N}{'_bias' if b is not None else ''}",
                       lambda: dense.make(K, N, b is not None))
        y = cx.emit(relax.call_tir(gv, [x2, wp, bp], out_ty=relax.TensorType([rows, N], "float32")))
    else:
        from . import blas
        bb = b if b is not None else cx.emit(op.zeros([0], "float32"))
        y = cx.emit(relax.call_dps_packed(blas.LINEAR, [x2, w, bb],
                                          out_ty=relax.TensorType([rows, N], "float32")))
    return op.reshape(y, out_shape)


def matmul(cx, a, av, b, bv, dt):
    if _mode(cx) == "blas" and dt == "f32" and av.type.rank >= 2 and bv.type.rank == 2:
        from . import blas
        shape = cx.shape(av)[:-1] + [cx.shape(bv)[-1]]
        return relax.call_dps_packed(blas.MATMUL, [a, b], out_ty=relax.TensorType(shape, "float32"))
    return op.matmul(a, b)
