"""Rule for the spiking-neuron op `lif`: calls kernels/lif.py (a loop over T with the ATan
surrogate gradient, so a fused SpikeGPT trains on this target)."""
from __future__ import annotations

from .kernels.lif import lif
from .table import TORCH_RULES


@TORCH_RULES.rule("lif")
def _lif(node, e):
    return e.call(e.use(lif, "lif"), e.arg("x"), e.arg("v0"), tau=e.arg("tau"), v_threshold=e.arg("v_threshold"),
                  v_reset=e.arg("v_reset"), alpha=e.arg("alpha"))
