"""The LLVM target for this machine: a valid `mcpu` for the host, generic as fallback."""
from __future__ import annotations

import functools
import os

from tvm.target import Target, codegen

TRIPLE = "x86_64-linux-gnu"
# LLVM 22 rejects mcpu=native; try the host's name, then older names of the same ISA.
_FALLBACKS = ("znver4", "skylake-avx512", "x86-64-v3", "generic")


@functools.lru_cache(maxsize=None)
def host_mcpu() -> str:
    forced = os.environ.get("SPIKEC_TVM_MCPU")
    if forced:
        return forced
    try:
        cands = [codegen.llvm_get_system_cpu(), *_FALLBACKS]
    except Exception:          # noqa: BLE001 - an LLVM without host detection
        cands = list(_FALLBACKS)
    for c in cands:
        try:
            if c and codegen.llvm_is_valid_cpu(c, TRIPLE):
                return c
        except Exception:      # noqa: BLE001
            continue
    return "generic"


def host_target(num_threads: int | None = None) -> Target:
    spec = {"kind": "llvm", "mcpu": host_mcpu(), "mtriple": TRIPLE}
    if num_threads:
        spec["num-cores"] = int(num_threads)
    return Target(spec)


def set_threads(n: int | None) -> None:
    """Size TVM's CPU thread pool (None: leave TVM's default, one per core)."""
    if n:
        import tvm
        tvm.get_global_func("runtime.config_threadpool")(0, int(n))
