"""TVM source emission: the same Relax lowering, built for other TVM device kinds.

    emit_sources(graph, kinds=("cuda", "opencl", "webgpu", "c")) -> {kind: {filename: text}}

Generic ops are scheduled by TVM's default pipeline for each device (dlight on
GPUs); the fused ops use the device-neutral TE forms of rules_portable.py.
Nothing here needs the device: CUDA source is checked by compiling it with nvcc
(tests), C source with gcc. What this TVM build cannot do is said by the error:
`vulkan` has no codegen in the wheel, `metal` crashes on matmuls, `rocm` needs
the ROCm device libraries, `nvptx` fails on kernels with barriers (toolchain.md).
"""
from __future__ import annotations

import tvm
from tvm import tirx
from tvm.target import Target

from spikec.ir import Graph

from .errors import TvmLoweringError
from .lower import Lowering
from .rules_portable import portable_rules

KINDS = {
    "cuda": ({"kind": "cuda", "arch": "sm_90"}, "kernels.cu"),
    "opencl": ({"kind": "opencl"}, "kernels.cl"),
    "webgpu": ({"kind": "webgpu"}, "kernels.wgsl"),
    "c": ({"kind": "c"}, "module.c"),
}
UNSUPPORTED = {
    "vulkan": "this TVM wheel has no target.build.vulkan",
    "metal": "TVM 0.27's Metal codegen segfaults on matmul (dlight Metal tensorize path)",
    "rocm": "TVM's rocm target needs the ROCm device bitcode libraries (oclc_*), absent here",
    "nvptx": "TVM's LLVM NVPTX path fails on kernels with barriers; use cuda + nvcc",
}


def lower_portable(graph: Graph) -> tuple[tvm.IRModule, list]:
    """The graph as a Relax module with device-neutral fused ops and Relax GEMMs,
    and the weight tensors its extra parameters take (after the graph inputs)."""
    lw = Lowering(graph, portable_rules(), {"gemm": "relax", "portable": True})
    return lw.build(), lw.weights


def _gpu_pipeline(target: Target, narrow: bool):
    """TVM's default pipeline for `target`, after scheduling the fused-op TE kernels
    (marked `spikec.portable`) with dlight's GPU fallback. WebGPU has no 64-bit
    integers: there, index arithmetic is narrowed to int32 (TVM's pass for its web
    runtime) before the device build."""
    from tvm.relax import pipeline as rp
    from tvm.s_tir import dlight as dl

    if narrow:        # the device kernels only (before VMShapeLower): host shape functions stay int64
        stages = (rp.library_dispatch_passes(target) + rp.legalize_passes(target)
                  + rp.dataflow_lower_passes(target) + [tirx.transform.ForceNarrowIndexToInt32()]
                  + rp.finalize_passes(target))
    else:
        stages = [rp.get_default_pipeline(target)]

    @tvm.transform.module_pass(opt_level=0, name="SpikecSourcePipeline")
    def _pipeline(mod, _ctx):
        marked = {gv: f for gv, f in mod.functions_items()
                  if isinstance(f, tirx.PrimFunc) and "spikec.portable" in f.attrs}
        if marked:
            with target:
                sub = dl.ApplyDefaultSchedule(dl.gpu.Fallback())(tvm.IRModule(marked))
            mod = mod.clone()             # the caller's module serves other device kinds too
            for gv in marked:
                mod.update_func(gv, sub[gv])
        with target:
            return tvm.transform.Sequential(stages)(mod)
    return _pipeline


_C_INTRINSICS = []


def _c_intrinsics() -> None:
    """TVM 0.27's C backend has no lowering for `fabs` (abs of a float): libm's."""
    from tvm.tirx.op import register_intrin_lowering
    if _C_INTRINSICS:
        return
    _C_INTRINSICS.append(True)

    def fabs(op):
        x = op.args[0]
        return tirx.call_pure_extern(x.ty, "fabsf" if str(x.ty) == "float32" else "fabs", x)
    register_intrin_lowering("tirx.fabs", "c", f=fabs, level=99)


def _modules(m):
    yield m
    for i in m.imports:
        yield from _modules(i)


def _device_source(ex, kind: str) -> str:
    """The source of every module of `kind` the executable carries (the VM's
    imports: host code, then the device modules it launches)."""
    found = [m for m in _modules(ex.mod) if m.kind == kind]
    if not found:
        kinds = sorted({m.kind for m in _modules(ex.mod)})
        raise TvmLoweringError(f"TVM built no {kind} module for this graph (modules: {', '.join(kinds)})")
    return "\n".join(m.inspect_source() for m in found)


def emit_sources(graph: Graph, kinds=("cuda", "opencl", "webgpu", "c"), *, cuda_arch: str = "sm_90") -> dict:
    """Build `graph` for each TVM device kind and return its source files:
    {kind: {filename: text}}; `relax_module.py` (the TVMScript input) under "relax"."""
    mod, _ = lower_portable(graph)
    out = {"relax": {"relax_module.py": mod.script()}}
    for kind in kinds:
        if kind in UNSUPPORTED:
            raise TvmLoweringError(f"TVM source target {kind!r} is not available: {UNSUPPORTED[kind]}",
                                   hint=f"supported: {', '.join(KINDS)}")
        if kind not in KINDS:
            raise TvmLoweringError(f"unknown TVM source target {kind!r}", hint=f"supported: {', '.join(KINDS)}")
        spec, fname = KINDS[kind]
        spec = dict(spec, arch=cuda_arch) if kind == "cuda" else spec
        target = Target(spec)
        if kind == "c":
            from .build import cpu_pipeline
            pipeline = cpu_pipeline(target)      # the cpu target's passes; its schedules are llvm-only
        else:
            pipeline = _gpu_pipeline(target, narrow=kind == "webgpu")
        if kind == "c":
            _c_intrinsics()
        try:
            ex = tvm.compile(mod, target=target, relax_pipeline=pipeline)
        except Exception as e:      # noqa: BLE001 - say which kind failed and why
            msg = (str(e).strip().splitlines() or [type(e).__name__])[-1][:400]
            raise TvmLoweringError(f"TVM could not build {graph.name!r} for {kind}: {msg}") from e
        out[kind] = {fname: _device_source(ex, kind)}
    return out
