"""Rules for the structured ops: constants and control flow with regions.

Constants are read from the module (`self.const(name)`), so they are its
Parameters and buffers. Each region becomes a nested function that the
runtime helpers (runtime.py) call."""
from __future__ import annotations

from .table import TORCH_RULES


@TORCH_RULES.rule("constant")
def _constant(node, e):
    return f"self.const({e.arg('name')})"


@TORCH_RULES.rule("scan")
def _scan(node, e):
    combine = e.region(0)
    e.unpack_one = len(node.outputs) == 1
    return e.call(f"{e.runtime()}.scan", combine, e.arg("init"), e.arg("xs"), e.arg("additional_inputs"))


@TORCH_RULES.rule("while_loop")
def _while_loop(node, e):
    cond, body = e.region(0), e.region(1)
    e.unpack_one = len(node.outputs) == 1
    return e.call(f"{e.runtime()}.while_loop", cond, body, e.arg("carried_inputs"), e.arg("additional_inputs"))


@TORCH_RULES.rule("cond")
def _cond(node, e):
    true_fn, false_fn = e.region(0), e.region(1)
    e.unpack_one = len(node.outputs) == 1
    return e.call(f"{e.runtime()}.cond", e.arg("pred"), true_fn, false_fn, e.arg("operands"))
