"""Rules for the spike-coding ops: calls into spike_kernels (straight-through gradients,
so a spike-coded graph fine-tunes on this target)."""
from __future__ import annotations

from spikec.ir.ops_spike import spike_decode_reference, spike_train_reference

from . import spike_kernels as K
from .table import TORCH_RULES


@TORCH_RULES.rule("spike_encode")
def _spike_encode(node, e):
    return e.call(e.use(K.spike_encode), e.arg("x"), e.arg("k"), e.arg("axis"))


@TORCH_RULES.rule("spike_train")
def _spike_train(node, e):
    return e.call(e.use(spike_train_reference, "spike_train"), e.arg("counts"), e.arg("coding"), e.arg("steps"))


@TORCH_RULES.rule("spike_decode")
def _spike_decode(node, e):
    return e.call(e.use(spike_decode_reference, "spike_decode"), e.arg("trains"), e.arg("coding"))


@TORCH_RULES.rule("spike_linear")
def _spike_linear(node, e):
    # The dense equivalent (a matmul; W, b and v_th get gradients); the event-driven
    # reference sums the same products in another order.
    s = e.arg("s")
    if node.arg("trains"):
        s = e.call(e.use(spike_decode_reference, "spike_decode"), s, e.arg("coding"))
    return e.call(e.use(K.spike_linear_dense), s, e.arg("v_th"), e.arg("weight"), e.arg("bias"))


@TORCH_RULES.rule("straight_through")
def _straight_through(node, e):
    return e.call(e.use(K.straight_through), e.arg("x"), e.arg("y"))


@TORCH_RULES.rule("int8_fake_quant")
def _int8_fake_quant(node, e):
    return e.call(e.use(K.int8_fake_quant), e.arg("x"), e.arg("axis"), e.arg("group_size"))
