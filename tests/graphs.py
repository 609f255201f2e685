"""Hand-built graphs shared by several tests."""
import torch

from spikec import ir
from spikec.ir import TensorType, sym

T = sym("T")


def small_graph():
    g = ir.Graph("main")
    g.symbols["T"] = (2, 4096)
    x = g.add_input(TensorType((2, T, 16), "f32"), "x")
    w = g.add_constant("proj.weight", torch.randn(16, 16))
    y = g.add_node("linear", {"input": x, "weight": w}, [TensorType((2, T, 16), "f32")],
                   loc=ir.Loc("model.py", 12)).output
    z = g.add_node("mul", {"self": y, "other": 0.5}, [TensorType((2, T, 16), "f32")]).output
    c = g.add_node("cat", {"tensors": [z, y], "dim": 1}, [TensorType((2, 2 * T, 16), "f32")]).output
    k = g.add_node("topk", {"self": c, "k": 2}, [TensorType((2, 2 * T, 2), "f32"), TensorType((2, 2 * T, 2), "i64")])
    h = g.add_node("_to_copy", {"self": k.outputs[1], "dtype": torch.float16}, [TensorType((2, 2 * T, 2), "f16")]).output
    g.set_outputs([k.outputs[0], h])
    return g
