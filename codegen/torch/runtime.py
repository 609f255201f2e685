"""Helpers the generated code calls (imported there as `rt`): input checks and
the structured control-flow ops. Plain torch, so autograd sees through them."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from spikec.ir import SpikecError


class InputMismatchError(SpikecError, TypeError):
    """An input whose rank, dtype or static size differs from the graph's signature."""


def check_input(x, name: str, dtype: torch.dtype, shape: Sequence[int | None]) -> None:
    """`shape` holds the static sizes, None where the graph has a symbol."""
    if not isinstance(x, torch.Tensor):
        raise InputMismatchError(f"input %{name} must be a tensor, got {type(x).__name__}")
    if x.dtype != dtype or x.dim() != len(shape) or any(d is not None and d != n for d, n in zip(shape, x.shape)):
        want = ", ".join("?" if d is None else str(d) for d in shape)
        raise InputMismatchError(f"input %{name} must be {dtype} [{want}], got {x.dtype} {list(x.shape)}",
                                 hint="trace the model with these shapes, or with dynamic={...} for symbolic dims")


def scan(combine: Callable, init: list, xs: list, additional: list) -> tuple:
    """carry = init; for each i: carry, y_i = combine(*carry, *[x[i] for x in xs], *additional);
    returns the final carries then the stacked y's."""
    carries = list(init)
    length = xs[0].shape[0] if xs else 0
    if length == 0:
        raise SpikecError("scan over a zero-length sequence has no defined outputs")
    ys: list[Sequence[torch.Tensor]] = []
    for i in range(length):
        out = combine(*carries, *[x[i] for x in xs], *additional)
        carries, y = list(out[:len(carries)]), out[len(carries):]
        ys.append(y)
    return (*carries, *[torch.stack([step[j] for step in ys]) for j in range(len(ys[0]))])


def while_loop(cond: Callable, body: Callable, carried: list, additional: list) -> tuple:
    carried = list(carried)
    while bool(cond(*carried, *additional)[0]):
        carried = list(body(*carried, *additional))
    return tuple(carried)


def cond(pred, true_branch: Callable, false_branch: Callable, operands: list) -> tuple:
    return tuple((true_branch if bool(pred) else false_branch)(*operands))
