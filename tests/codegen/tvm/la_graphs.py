"""Small graphs around one fused op, shared by the cpu-target kernel tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spikec import ir
from spikec.ir import TensorType, sym

T = sym("T")


def linear_attention_graph(B=1, H=4, Hkv=2, K=32, V=32, gate="channel", h0=True, final=True, scale=0.25,
                           length=T, Hv=None) -> ir.Graph:
    """Hv: value heads when they differ from the key heads (SpikingBrain: keys shared, values per head)."""
    g = ir.Graph("la")
    if not isinstance(length, int):
        g.symbols["T"] = (1, None)
    q = g.add_input(TensorType((B, H, length, K), "f32"), "q")
    k = g.add_input(TensorType((B, Hkv, length, K), "f32"), "k")
    v = g.add_input(TensorType((B, Hv or Hkv, length, V), "f32"), "v")
    args = {"q": q, "k": k, "v": v, "gate_kind": gate, "scale": scale, "output_final_state": final}
    if gate == "channel":
        args["gate"] = g.add_input(TensorType((B, Hkv, length, K), "f32"), "g")
    elif gate == "scalar":
        args["gate"] = g.add_input(TensorType((B, Hkv, length), "f32"), "g")
    if h0:
        args["initial_state"] = g.add_input(TensorType((B, H, K, V), "f32"), "h0")
    outs = [TensorType((B, H, length, V), "f32")] + ([TensorType((B, H, K, V), "f32")] if final else [])
    g.set_outputs(g.add_node("linear_attention", args, outs, loc=ir.Loc("model.py", 7)).outputs)
    return g


def la_inputs(g: ir.Graph, length: int, seed: int = 0, decay_scale: float = 1.0) -> list[torch.Tensor]:
    """q, v ~ N(0, 1); k small (key_tied needs decays 1 - k near 1); log-decays
    logsigmoid(x) · decay_scale (≤ 0)."""
    gen = torch.Generator().manual_seed(seed * 1000 + length)
    xs = []
    for v in g.inputs:
        shape = [length if not isinstance(d, int) else d for d in v.type.shape]
        x = torch.randn(shape, generator=gen)
        if v.name == "g":
            x = F.logsigmoid(x) * decay_scale
        elif v.name == "k":
            x = x * 0.3
        xs.append(x)
    return xs


def attention_graph(op="sliding_window_attention", B=1, H=4, Hkv=2, D=16, Dv=16, window=8, causal=True,
                    scale=0.25, q_len=T, k_len=T) -> ir.Graph:
    g = ir.Graph("attn")
    g.symbols["T"] = (1, None)
    q = g.add_input(TensorType((B, H, q_len, D), "f32"), "q")
    k = g.add_input(TensorType((B, Hkv, k_len, D), "f32"), "k")
    v = g.add_input(TensorType((B, Hkv, k_len, Dv), "f32"), "v")
    args = {"q": q, "k": k, "v": v, "scale": scale}
    if op == "sliding_window_attention":
        args["window"] = window
    else:
        args["causal"] = causal
    g.set_outputs(g.add_node(op, args, [TensorType((B, H, q_len, Dv), "f32")]).outputs)
    return g


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|: the error relative to the output's scale."""
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()
