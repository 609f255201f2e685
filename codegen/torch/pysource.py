"""Python source text for IR literals, symbolic dims and names.

The generated module must read like code a person wrote: locals named after
the IR values, literals as Python spells them (`math.inf`, `torch.float32`),
symbolic sizes as integer arithmetic over the bound symbols (`(T + 15) // 16`).
"""
from __future__ import annotations

import keyword
import math
from typing import Callable

import sympy
import torch
import torch.utils._sympy.functions as tsf

from spikec.ir import Value

from ..errors import LoweringError

# Names the generated module defines or imports itself; no local may shadow them.
MODULE_NAMES = {"self", "torch", "aten", "math", "rt", "device", "range", "len", "max", "min", "abs", "float",
                "int", "bool", "list", "tuple"}


def identifier(hint: str) -> str:
    """A Python identifier made from an IR name (`model.layers.0.w` -> `model_layers_0_w`, `12` -> `v12`)."""
    s = "".join(c if (c.isalnum() or c == "_") and c.isascii() else "_" for c in hint) or "v"
    if s[0].isdigit():
        s = "v" + s
    if keyword.iskeyword(s) or keyword.issoftkeyword(s):
        s += "_"
    return s


class Namer:
    """Unique identifiers within one function, never shadowing an enclosing scope."""

    def __init__(self, taken: set[str] | None = None):
        self.taken = set(MODULE_NAMES if taken is None else taken)

    def fresh(self, hint: str) -> str:
        base = identifier(hint)
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name


def _wrap(fn: str) -> Callable:
    return lambda args: f"{fn}({', '.join(args)})"


# sympy function class -> how to write it over Python ints (arguments already printed).
_FUNCS: dict[type, Callable[[list[str]], str]] = {
    tsf.FloorDiv: lambda a: f"({a[0]} // {a[1]})",
    tsf.CleanDiv: lambda a: f"({a[0]} // {a[1]})",
    tsf.CeilDiv: lambda a: f"(-(-{a[0]} // {a[1]}))",
    tsf.IntTrueDiv: lambda a: f"({a[0]} / {a[1]})",
    tsf.ModularIndexing: lambda a: f"(({a[0]} // {a[1]}) % {a[2]})",
    tsf.Mod: lambda a: f"({a[0]} % {a[1]})",
    tsf.PythonMod: lambda a: f"({a[0]} % {a[1]})",
    tsf.PowByNatural: lambda a: f"({a[0]} ** {a[1]})",
    sympy.Max: _wrap("max"),
    sympy.Min: _wrap("min"),
    tsf.Max: _wrap("max"),
    tsf.Min: _wrap("min"),
    sympy.Mod: lambda a: f"({a[0]} % {a[1]})",
    sympy.floor: _wrap("math.floor"),
    sympy.ceiling: _wrap("math.ceil"),
}


def sym_expr(e: sympy.Expr, name_of: Callable[[sympy.Symbol], str]) -> str:
    """`e` as a Python integer expression; `name_of` gives (and binds) a symbol's local."""
    if isinstance(e, int):
        return str(e)
    if e.is_Integer:
        return str(int(e))
    if e.is_Symbol:
        return name_of(e)
    if e.is_Rational:
        return f"({e.p} / {e.q})"
    if isinstance(e, sympy.Add):
        terms = [sym_expr(a, name_of) for a in e.args]
        out = terms[0]
        for t in terms[1:]:
            out += f" - {t[1:]}" if t.startswith("-") and not t.startswith("-(") else f" + {t}"
        return f"({out})"
    if isinstance(e, sympy.Mul):
        coeff, rest = e.as_coeff_Mul()
        body = sym_expr(rest, name_of)
        if coeff == -1:
            return f"-{body}"
        if coeff == 1:
            return "*".join(sym_expr(a, name_of) for a in e.args)
        return f"{sym_expr(coeff, name_of)}*{body}"
    if isinstance(e, sympy.Pow) and e.exp.is_Integer and int(e.exp) > 0:
        return f"({sym_expr(e.base, name_of)} ** {int(e.exp)})"
    for cls, fmt in _FUNCS.items():
        if type(e) is cls:
            return fmt([sym_expr(a, name_of) for a in e.args])
    raise LoweringError(f"the torch target cannot write the symbolic size {e} as Python "
                        f"(no rule for {type(e).__name__})",
                        hint="add the function to spikec.codegen.torch.pysource._FUNCS")


def literal(a, value_name: Callable[[Value], str], sym_name: Callable[[sympy.Symbol], str]) -> str:
    """Python source for an argument: Values by their local, literals as Python writes them."""
    if isinstance(a, Value):
        return value_name(a)
    if a is None or isinstance(a, (bool, str)):
        return repr(a)
    if isinstance(a, int):
        return str(a)
    if isinstance(a, float):
        if math.isnan(a):
            return "math.nan"
        if math.isinf(a):
            return "math.inf" if a > 0 else "-math.inf"
        return repr(a)
    if isinstance(a, torch.dtype):
        return str(a)                      # 'torch.float32'
    if isinstance(a, sympy.Expr):
        return sym_expr(a, sym_name)
    if isinstance(a, (list, tuple)):
        return "[" + ", ".join(literal(x, value_name, sym_name) for x in a) + "]"
    if isinstance(a, torch.device):
        return f"torch.device({str(a)!r})"
    raise LoweringError(f"the torch target cannot write a literal of type {type(a).__name__} ({a!r})")
