"""Which kernel specialisations a graph needs, read off its fused nodes.

One rule per fused op (a table, like the lowering rules) turns a node's types
into the `Spec`s its launcher will run with: head dims, head counts, gate kind,
dtype. The targets compile these ahead of time to ship them (PTX/cubin for
NVIDIA, hsaco for AMD).
"""
from __future__ import annotations

from typing import Callable

from spikec.ir import Graph, Node

from ..errors import LoweringError
from .aot_specs import Spec, attention_specs, grouped_gemm_specs, linear_attention_specs, spike_specs
from .kernels.linear_attention.layout import MAX_HEAD_DIM

TRITON_DTYPES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}
SPEC_RULES: dict[str, Callable[[Node, bool], list[Spec]]] = {}


def spec_rule(*ops: str):
    def deco(fn):
        for op in ops:
            SPEC_RULES[op] = fn
        return fn
    return deco


def _static(node: Node, value, dims: tuple[int, ...]) -> list[int]:
    shape = value.type.shape
    out = []
    for d in dims:
        if not isinstance(shape[d], int):
            raise LoweringError(f"{node.op}: dim {d} of %{value.name} is symbolic ({shape[d]}); the Triton "
                                "kernels are specialised on head dims and head counts", where=node.where())
        out.append(shape[d])
    return out


def _dtype(node: Node, value) -> str:
    dt = value.type.dtype
    if dt not in TRITON_DTYPES:
        raise LoweringError(f"{node.op}: the Triton kernels take f32, f16 or bf16, not {dt}", where=node.where())
    return TRITON_DTYPES[dt]


def _named(specs: list[Spec], key: str) -> list[Spec]:
    return [Spec(f"{s.name}_{key}", s.kernel, s.signature, s.constexprs) for s in specs]


def _training(specs: list[Spec], backward: bool) -> list[Spec]:
    forward = ("la_gate_cumsum", "la_state_fwd", "la_output_fwd", "la_recurrent_step", "swa_fwd",
               "spike_encode", "grouped_gemm")
    return specs if backward else [s for s in specs if s.name.startswith(forward)]


@spec_rule("linear_attention")
def _linear_attention(node: Node, backward: bool) -> list[Spec]:
    kind = node.arg("gate_kind")
    if kind == "key_tied":
        return []                                   # runs on the torch target's kernel (ops.linear_attention)
    q, k, v = node.args["q"], node.args["k"], node.args["v"]
    H, K = _static(node, q, (1, 3))
    (HKV,), (V,) = _static(node, k, (1,)), _static(node, v, (3,))
    if max(K, V) > MAX_HEAD_DIM:
        return []                                   # runs on the torch target's kernel
    dt = _dtype(node, q)
    specs = linear_attention_specs(dt, K=K, V=V, H=H, HKV=HKV, gate=kind != "none", scalar=kind == "scalar")
    return _named(_training(specs, backward), f"{dt}_h{H}x{HKV}_k{K}v{V}_{kind}")


@spec_rule("attention", "sliding_window_attention")
def _attention(node: Node, backward: bool) -> list[Spec]:
    q, k, v = node.args["q"], node.args["k"], node.args["v"]
    H, D = _static(node, q, (1, 3))
    (HKV,), (DV,) = _static(node, k, (1,)), _static(node, v, (3,))
    if max(D, DV) > MAX_HEAD_DIM:
        return []                                   # runs on the torch target's kernel
    causal = node.op == "sliding_window_attention" or bool(node.arg("causal"))
    dt = _dtype(node, q)
    specs = attention_specs(dt, D=D, DV=DV, H=H, HKV=HKV, causal=causal)
    return _named(_training(specs, backward), f"{dt}_h{H}x{HKV}_d{D}v{DV}_{'causal' if causal else 'full'}")


@spec_rule("spike_encode")
def _spike_encode(node: Node, backward: bool) -> list[Spec]:
    dt = _dtype(node, node.args["x"])
    return _named(spike_specs(dt), dt)


@spec_rule("grouped_matmul")
def _grouped_matmul(node: Node, backward: bool) -> list[Spec]:
    w = node.args["weight"]
    N, K = _static(node, w, (1, 2))
    dt = _dtype(node, node.args["x"])
    return _named(grouped_gemm_specs(dt, N=N, K=K, top_k=1, weighted=False), f"{dt}_n{N}k{K}")


@spec_rule("moe")
def _moe(node: Node, backward: bool) -> list[Spec]:
    F_, D = _static(node, node.args["w_gate"], (1, 2))
    dt = _dtype(node, node.args["x"])
    specs = []
    for n, k in {(F_, D), (D, F_)}:               # gate/up projections, then down
        specs += _named(grouped_gemm_specs(dt, N=n, K=k, top_k=1, weighted=False), f"{dt}_n{n}k{k}")
    return specs


def graph_specs(graph: Graph, backward: bool = False) -> list[Spec]:
    """The distinct kernel specialisations the fused nodes of `graph` launch
    (forward only, unless `backward` for a training artifact)."""
    found: dict[str, Spec] = {}
    for node in graph.walk():
        rule = SPEC_RULES.get(node.op)
        for spec in rule(node, backward) if rule else ():
            found.setdefault(spec.name, spec)
    return list(found.values())
