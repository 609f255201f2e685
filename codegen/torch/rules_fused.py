"""Rules for the fused ops: each calls its kernel in kernels/ (imported by the
generated source), passing the node's arguments by the op's parameter names."""
from __future__ import annotations

from .kernels.attention import attention
from .kernels.linear_attention import linear_attention
from .kernels.sliding_window_attention import sliding_window_attention
from .table import TORCH_RULES


def kernel_call(node, e, kernel, tensors: tuple[str, ...], attrs: tuple[str, ...]) -> str:
    """`kernel(t1, t2, ..., attr=value, ...)`: tensors positionally, attributes by name."""
    return e.call(e.use(kernel), *(e.arg(t) for t in tensors), **{a: e.arg(a) for a in attrs})


@TORCH_RULES.rule("linear_attention")
def _linear_attention(node, e):
    # The kernel picks the recurrent form for short T and the chunked form otherwise;
    # a key-tied gate becomes the channel log decay log(1 - k) there.
    return kernel_call(node, e, linear_attention, ("q", "k", "v", "gate", "initial_state"),
                       ("gate_kind", "scale", "output_final_state"))


@TORCH_RULES.rule("attention")
def _attention(node, e):
    return kernel_call(node, e, attention, ("q", "k", "v"), ("scale", "causal"))


@TORCH_RULES.rule("sliding_window_attention")
def _sliding_window_attention(node, e):
    return kernel_call(node, e, sliding_window_attention, ("q", "k", "v"), ("window", "scale"))
