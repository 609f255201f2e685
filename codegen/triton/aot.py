"""Ahead-of-time compilation of the kernels for a GPU architecture, without a GPU.

    compile_kernels("sm_90")   -> {kernel name: {"ttir", "ttgir", "llir", "ptx", "cubin", "metadata"}}
    compile_kernels("gfx942")  -> {kernel name: {..., "amdgcn", "hsaco", "metadata"}}

Triton compiles a JITFunction; in a process where the kernels were decorated
for the interpreter (no GPU: TRITON_INTERPRET=1) the compiler cannot use them,
so there the compilation runs in a fresh Python process with TRITON_INTERPRET=0.
"""
from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import tempfile

from spikec.ir.errors import SpikecError

from . import mode
from .aot_specs import Spec, all_specs

ARCHS = {"sm_80": ("cuda", 80, 32), "sm_90": ("cuda", 90, 32), "gfx942": ("hip", "gfx942", 64)}


class KernelCompileError(SpikecError):
    """Triton could not compile a kernel for an architecture."""


def _target(arch: str):
    from triton.backends.compiler import GPUTarget
    if arch not in ARCHS:
        raise KernelCompileError(f"unknown GPU architecture {arch!r}", hint=f"use one of {', '.join(ARCHS)}")
    return GPUTarget(*ARCHS[arch])


def _compile_one(spec: Spec, arch: str) -> dict:
    import triton
    from triton.compiler import ASTSource
    module, attr = spec.kernel.split(":")
    fn = getattr(importlib.import_module(f"spikec.codegen.triton.kernels.{module}"), attr)
    try:
        compiled = triton.compile(ASTSource(fn=fn, signature=spec.signature, constexprs=spec.constexprs),
                                  target=_target(arch))
    except Exception as e:  # noqa: BLE001 -- the compiler raises many kinds; name the kernel
        raise KernelCompileError(f"Triton failed to compile {spec.name} for {arch}: {type(e).__name__}: {e}",
                                 hint="the chained exception has the compiler's message") from e
    md = compiled.metadata
    asm = {k: v for k, v in compiled.asm.items() if k != "source"}
    asm["metadata"] = json.dumps({"name": md.name, "num_warps": md.num_warps, "num_stages": md.num_stages,
                                  "shared": md.shared, "arch": arch, "kernel": spec.kernel,
                                  "constexprs": {k: v for k, v in spec.constexprs.items()}}, default=str)
    return asm


def _compile_here(arch: str, specs: list[Spec]) -> dict[str, dict]:
    return {s.name: _compile_one(s, arch) for s in specs}


def _compile_in_subprocess(arch: str, specs: list[Spec]) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        todo, out = os.path.join(tmp, "specs.pkl"), os.path.join(tmp, "kernels.pkl")
        with open(todo, "wb") as f:
            pickle.dump(specs, f)
        env = {**os.environ, "TRITON_INTERPRET": "0"}
        proc = subprocess.run([sys.executable, "-m", "spikec.codegen.triton.aot", arch, todo, out],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise KernelCompileError(f"compiling the Triton kernels for {arch} failed in a subprocess",
                                     hint=proc.stderr.strip()[-3000:] or proc.stdout.strip()[-3000:])
        with open(out, "rb") as f:
            return pickle.load(f)


def compile_kernels(arch: str, names: list[str] | None = None, specs: list[Spec] | None = None,
                    head_dim: int = 64) -> dict[str, dict]:
    """Compile kernel variants for `arch`: {name: asm dict}. By default every
    variant of `all_specs(head_dim)`; `names` picks some of them; `specs` gives
    others (e.g. specialised for a model's shapes)."""
    _target(arch)
    if specs is None:
        specs = all_specs(head_dim)
    if names is not None:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            raise KernelCompileError(f"no kernel variant named {sorted(unknown)}",
                                     hint=f"known: {', '.join(s.name for s in specs)}")
        specs = [s for s in specs if s.name in names]
    if mode.interpreting():
        return _compile_in_subprocess(arch, specs)
    return _compile_here(arch, specs)


def binary_key(arch: str) -> str:
    """The asm entry holding the loadable binary for `arch`."""
    return "hsaco" if arch.startswith("gfx") else "cubin"


if __name__ == "__main__":      # python -m spikec.codegen.triton.aot ARCH SPECS.pkl OUT.pkl
    with open(sys.argv[2], "rb") as f:
        todo = pickle.load(f)
    result = _compile_here(sys.argv[1], todo)
    with open(sys.argv[3], "wb") as f:
        pickle.dump(result, f)
