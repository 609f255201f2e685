"""convert-attention: SpikingBrain's conversion step on the graph (after `fuse-attention`).

Each causal `attention` node (one per layer of a traced Transformer, in program order) is
replaced per the plan (`spikec.models.convert.resolve_plan`: alternate | all-swa | all-gla |
gla|swa|...):

- swa: `sliding_window_attention(q, k, v, window)`, the same (RoPE'd) q/k/v.
- gla: `linear_attention(relu(q'), relu(k'), v, gate, gate_kind="channel")` where q', k'
  are q and k *before* RoPE (SpikingBrain's GLA layers have none): we walk up from the
  attention's operand to the nearest `permute(view(linear(x, W, b)))` -- the head split of
  the projection. The gate is the low-rank projection of that same x,
  `logsigmoid(W2 W1 x + b2) / 16`, split into KV heads like k; the output gets the
  per-head RMSNorm (`g_norm`) before the unchanged o-projection.

The new weights come from `spikec.models.convert.gla_init` with the same (seed, layer), so
the result equals `convert_to_hybrid(model)` run eagerly. They are added to
`graph.constants` next to the projection they belong to (`...self_attn.gk_proj.0.weight`).
"""
from __future__ import annotations

from collections import deque

from spikec.ir import Graph, TensorType, Value, torch_dtype
from spikec.models.convert import DEFAULT_WINDOW, GATE_BIAS, GATE_STD, gla_init, resolve_plan

from .fuse_attention import VIEWS, _perm_of
from .manager import stat
from .registry import register
from .rewrite import Builder, dead_code_elimination


class HeadSplit:
    """value = permute(view(linear(x, weight, bias))): one projection split into heads."""

    def __init__(self, value: Value, view, perm: list[int], linear):
        self.value, self.view, self.perm, self.linear = value, view, perm, linear

    @property
    def x(self) -> Value:
        return self.linear.arg("input")


def _as_head_split(v: Value) -> HeadSplit | None:
    p = v.producer
    if p is None or v.type.rank != 4:
        return None
    perm = _perm_of(p, 4)
    view = p.arg("self").producer if perm is not None else None
    if view is None or view.op not in VIEWS:
        return None
    lin = view.arg("self").producer
    if lin is None or lin.op != "linear":
        return None
    return HeadSplit(v, view, perm, lin)


def find_head_split(v: Value, limit: int = 64) -> HeadSplit | None:
    """The nearest head split above v with v's shape (through RoPE, casts, ...), breadth first."""
    seen, todo = set(), deque([v])
    while todo and len(seen) < limit:
        u = todo.popleft()
        if id(u) in seen:
            continue
        seen.add(id(u))
        hs = _as_head_split(u)
        if hs is not None and u.type.shape == v.type.shape:
            return hs
        if u.producer is not None and u.producer.op != "constant":
            todo.extend(u.producer.inputs)
    return None


def _constant(graph: Graph, anchor, name: str, tensor) -> Value:
    """Register `tensor` under a free name and read it just before `anchor`."""
    base, i = name, 1
    while name in graph.constants:
        name, i = f"{base}_{i}", i + 1
    graph.constants[name] = tensor
    node = graph.make_node("constant", {"name": name}, [TensorType.of(tensor)], loc=anchor.loc, names=[name])
    graph.insert_before(anchor, node)
    return node.output


def _weight_prefix(graph: Graph, lin, layer: int) -> str:
    w = lin.arg("weight")
    name = w.producer.arg("name") if w.producer is not None and w.producer.op == "constant" else ""
    return name[: -len("q_proj.weight")] if name.endswith("q_proj.weight") else f"convert.layers.{layer}."


def _to_gla(graph: Graph, att, layer: int, *, seed, low_rank, std, gate_bias, normalizer, eps) -> None:
    q, k = find_head_split(att.arg("q")), find_head_split(att.arg("k"))
    if q is None or k is None:
        raise ValueError(f"convert-attention: layer {layer} ({att.where()}): cannot find the q/k "
                         "projections (permute(view(linear(x)))) above the attention")
    if q.x is not k.x:
        raise ValueError(f"convert-attention: layer {layer}: q and k are projected from different inputs")
    v = att.arg("v")
    B, Hkv, T, D = k.value.type.shape
    new = gla_init(layer, q.x.type.shape[-1], Hkv, D, low_rank_dim=low_rank, seed=seed, std=std,
                   gate_bias=gate_bias, dtype=torch_dtype(q.value.type.dtype))
    prefix = _weight_prefix(graph, q.linear, layer)
    c = {n: _constant(graph, att, prefix + n, t) for n, t in new.items()}
    b = Builder(graph, att)
    # gate: logsigmoid(z) / normalizer, with logsigmoid(z) = -softplus(-z)
    z = b.op("linear", {"input": q.x, "weight": c["gk_proj.0.weight"]})
    z = b.op("linear", {"input": z, "weight": c["gk_proj.1.weight"], "bias": c["gk_proj.1.bias"]})
    g = b.op("neg", {"self": b.op("softplus", {"self": b.op("neg", {"self": z})})})
    g = b.op("div", {"self": g, "other": float(normalizer)})
    g = b.op("view", {"self": g, "size": list(k.view.arg("size"))})      # split like k: [B, Hkv, T, D]
    g = b.op("permute", {"self": g, "dims": k.perm})
    o = b.op("linear_attention", {"q": b.op("relu", {"self": q.value}), "k": b.op("relu", {"self": k.value}),
                                  "v": v, "gate": g, "gate_kind": "channel", "scale": float(D) ** -0.5})
    # g_norm: RMSNorm over head_dim, per head
    ms = b.op("mean", {"self": b.op("pow", {"self": o, "exponent": 2}), "dim": [-1], "keepdim": True})
    o = b.op("mul", {"self": o, "other": b.op("rsqrt", {"self": b.op("add", {"self": ms, "other": float(eps)})})})
    o = b.op("mul", {"self": o, "other": c["g_norm.weight"]})
    _replace(graph, att, o)


def _to_swa(graph: Graph, att, window: int) -> None:
    b = Builder(graph, att)
    o = b.op("sliding_window_attention", {"q": att.arg("q"), "k": att.arg("k"), "v": att.arg("v"),
                                          "window": int(window), "scale": float(att.arg("scale"))})
    _replace(graph, att, o)


def _replace(graph: Graph, att, new: Value) -> None:
    if new.type != att.output.type:
        raise ValueError(f"convert-attention: {att.where()}: replacement has type {new.type}, "
                         f"expected {att.output.type}")
    graph.replace_all_uses(att.output, new)
    graph.nodes.remove(att)
    att.graph = None


@register("convert-attention")
def convert_attention(graph: Graph, *, plan: str = "alternate", window: int = DEFAULT_WINDOW, seed: int = 0,
                      low_rank: int = 16, std: float = GATE_STD, gate_bias: float = GATE_BIAS,
                      normalizer: float = 16.0, eps: float = 1e-6) -> None:
    """Full softmax attention -> GLA / SWA per layer plan (SpikingBrain conversion), weights reused."""
    layers = [n for n in graph.nodes if n.op == "attention" and n.arg("causal")]
    if not layers:
        raise ValueError("convert-attention found no causal `attention` node (run fuse-attention first)")
    kinds = resolve_plan(plan, len(layers))
    for i, (att, kind) in enumerate(zip(layers, kinds)):
        if kind == "swa":
            _to_swa(graph, att, window)
        else:
            _to_gla(graph, att, i, seed=seed, low_rank=low_rank, std=std, gate_bias=gate_bias,
                    normalizer=normalizer, eps=eps)
        stat(kind)
    dead_code_elimination(graph)       # the RoPE of GLA layers is now unused
