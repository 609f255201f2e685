"""How this process runs Triton kernels: on a GPU, or in Triton's interpreter.

Triton decides at *decoration* time (`@triton.jit`) whether a function is a
compiled JITFunction or an interpreted one, from the environment variable
TRITON_INTERPRET -- and that includes Triton's own library functions
(`tl.zeros`, `tl.sum`, `tl.cumsum`, ...), decorated when `triton` is first
imported. torch imports triton early (torch._dynamo does), so by the time this
module runs the library is usually already decorated for compilation.

So, with no GPU and no choice made by the user, this module
  1. sets TRITON_INTERPRET=1 for the whole process (our kernels, imported
     after this module, are then decorated as interpreted functions), and
  2. if triton.language was already imported in compile mode, rebinds its
     JIT-decorated library functions to interpreted ones.
Kernels then run on CPU tensors (slowly; that is how CI tests them). Ahead-of-
time compilation in such a process runs in a subprocess (see `aot`).
"""
from __future__ import annotations

import os
import sys

import torch


def _gpu_present() -> bool:
    return torch.cuda.is_available()   # true for both CUDA and ROCm builds of torch


def interpreting() -> bool:
    """True when kernels decorated in this process run in Triton's interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _interpret_triton_library() -> None:
    """Rebind triton.language's JIT-decorated helpers to interpreted functions."""
    if "triton.language" not in sys.modules:
        return                      # not imported yet: it will see TRITON_INTERPRET=1 itself
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction
    converted: dict[int, InterpretedFunction] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "triton.language" or name.startswith("triton.language.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, JITFunction):
                if id(value) not in converted:
                    converted[id(value)] = InterpretedFunction(value.fn)
                setattr(module, attr, converted[id(value)])


if "TRITON_INTERPRET" not in os.environ and not _gpu_present():
    os.environ["TRITON_INTERPRET"] = "1"
if interpreting():
    _interpret_triton_library()


def device() -> str:
    """Where kernel inputs must live: "cpu" in interpreter mode, else "cuda"."""
    return "cpu" if interpreting() else "cuda"


def unavailable_reason() -> str | None:
    """None when the kernels run natively on a GPU here."""
    if interpreting():
        why = "no GPU present" if not _gpu_present() else "TRITON_INTERPRET is set"
        return (f"{why}: Triton kernels run in interpreter mode on CPU tensors "
                f"(TRITON_INTERPRET=1, correct but slow); GPU code is compiled ahead of time only")
    return None
