"""One fused op as a runnable ONNX model, for kernel benchmarks (bench/kernels.py)."""
from __future__ import annotations

from spikec.ir import Graph, TensorType, sym

from .target import OnnxTarget


def linear_attention_graph(B: int, H: int, T: int | None, D: int, gate_kind: str = "channel",
                           dtype: str = "f32") -> Graph:
    """A graph holding one linear_attention node: (q, k, v[, gate]) -> o, all [B, H, T, D].
    T=None keeps the length symbolic."""
    g = Graph("linear_attention")
    t = T if T is not None else sym("T")
    if T is None:
        g.symbols["T"] = (1, None)
    ins = [g.add_input(TensorType((B, H, t, D), dtype), n) for n in ("q", "k", "v")]
    if gate_kind == "channel":
        ins.append(g.add_input(TensorType((B, H, t, D), dtype), "gate"))
    elif gate_kind == "scalar":
        ins.append(g.add_input(TensorType((B, H, t), dtype), "gate"))
    args = {"q": ins[0], "k": ins[1], "v": ins[2], "gate_kind": gate_kind, "scale": D ** -0.5}
    if len(ins) > 3:
        args["gate"] = ins[3]
    out = g.add_node("linear_attention", args, [TensorType((B, H, t, D), dtype)]).output
    g.set_outputs([out])
    return g


def linear_attention_model(B: int, H: int, T: int | None, D: int, chunk: int = 64, gate_kind: str = "channel",
                           intra_op_threads: int | None = None):
    """Compiled fused GLA forward; `mod.run(q, k, v, gate) -> [o]` (torch tensors in, out)."""
    return OnnxTarget().lower(linear_attention_graph(B, H, T, D, gate_kind), chunk=chunk,
                              intra_op_threads=intra_op_threads)
