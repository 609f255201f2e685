"""Symbolic dims of the IR (sympy over T, u0, ...) evaluated on the sizes torch.export traces
with, so every size the program computes stays symbolic in the exported graph."""
from __future__ import annotations

import sympy
import torch

from spikec.codegen.errors import LoweringError


def evaluate(e, env: dict):
    """int for static dims; a SymInt (or int) built from `env` (symbol name -> size) otherwise."""
    if isinstance(e, (int, bool)) or e is None:
        return e
    if isinstance(e, float):
        return e
    if not isinstance(e, sympy.Basic):
        return e
    if e.is_Integer:
        return int(e)
    if isinstance(e, sympy.Symbol):
        if e.name not in env:
            raise LoweringError(f"mlir: symbolic dim {e.name!r} is not bound to any tensor size yet")
        return env[e.name]
    args = [evaluate(a, env) for a in e.args]
    if isinstance(e, sympy.Add):
        out = args[0]
        for a in args[1:]:
            out = out + a
        return out
    if isinstance(e, sympy.Mul):
        out = args[0]
        for a in args[1:]:
            out = out * a
        return out
    if isinstance(e, sympy.Pow) and e.exp.is_Integer and int(e.exp) > 0:
        out = args[0]
        for _ in range(int(e.exp) - 1):
            out = out * args[0]
        return out
    name = type(e).__name__
    if name in ("FloorDiv", "CleanDiv", "IntTrueDiv"):
        return args[0] // args[1]
    if name in ("Mod", "PythonMod"):
        # a - (a // b) * b: torch-mlir lowers floordiv on sizes but not mod (aten.fmod.int)
        return args[0] - (args[0] // args[1]) * args[1]
    if name == "CeilDiv":
        return -((-args[0]) // args[1])
    if name == "Max":
        out = args[0]
        for a in args[1:]:
            out = torch.sym_max(out, a)
        return out
    if name == "Min":
        out = args[0]
        for a in args[1:]:
            out = torch.sym_min(out, a)
        return out
    raise LoweringError(f"mlir: cannot evaluate the symbolic dim {e} ({name})")


def concrete(arg, env: dict, vals: dict):
    """An IR argument with Values replaced by tensors and symbolic dims by sizes."""
    from spikec.ir import Value
    if isinstance(arg, Value):
        return vals[id(arg)]
    if isinstance(arg, list):
        return [concrete(a, env, vals) for a in arg]
    return evaluate(arg, env)


def bind(value, tensor, env: dict) -> None:
    """Record the size of every plain symbolic dim of `value` not bound yet (inputs, data-dependent outputs)."""
    t = value.type
    if not hasattr(t, "shape") or not isinstance(tensor, torch.Tensor):
        return
    for d, n in zip(t.shape, tensor.shape):
        if isinstance(d, sympy.Symbol) and d.name not in env:
            env[d.name] = n
