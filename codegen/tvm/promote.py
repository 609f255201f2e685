"""torch's type promotion for the operands of an elementwise op, on IR dtype names."""
from __future__ import annotations

import torch

from spikec.ir import Value
from spikec.ir.types import dtype_name, torch_dtype


def _category(dt: str) -> int:
    if dt == "bool":
        return 0
    if dt.startswith(("i", "u")):
        return 1
    return 2


def promote(*args) -> str:
    """Result dtype of combining tensors (Values) and python numbers, as torch does:
    numbers only raise the category (bool < int < float), never the width."""
    tensors = [a.type.dtype for a in args if isinstance(a, Value)]
    numbers = [a for a in args if not isinstance(a, Value) and a is not None]
    dt = None
    for t in tensors:
        dt = t if dt is None else dtype_name(torch.promote_types(torch_dtype(dt), torch_dtype(t)))
    if dt is None:
        dt = "bool" if all(isinstance(n, bool) for n in numbers) else (
            "i64" if all(isinstance(n, int) for n in numbers) else "f32")
        return dt
    for n in numbers:
        cat = 0 if isinstance(n, bool) else (1 if isinstance(n, int) else 2)
        if cat > _category(dt):
            dt = "i64" if cat == 1 else "f32"
    return dt
