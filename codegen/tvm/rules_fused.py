"""Fused ops: each a call_tir of a hand-scheduled TensorIR kernel (kernels/)."""
from __future__ import annotations

from .lower import Lowering
from .table import RULES


@RULES.rule("linear_attention")
def _linear_attention(cx: Lowering, node):
    from .kernels import linear_attention as k
    return k.lower(cx, node)


@RULES.rule("sliding_window_attention")
def _swa(cx: Lowering, node):
    from .kernels import attention as k
    a = node.args
    return k.lower(cx, node, a["q"], a["k"], a["v"], float(a.get("scale", 1.0)), True, int(a["window"]))


@RULES.rule("attention")
def _attention(cx: Lowering, node):
    from .kernels import attention as k
    a = node.args
    return k.lower(cx, node, a["q"], a["k"], a["v"], float(a.get("scale", 1.0)), bool(a.get("causal", True)), None)


@RULES.rule("lif")
def _lif(cx: Lowering, node):
    from .kernels import lif as k
    return k.lower(cx, node)
