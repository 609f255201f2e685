"""The kernel variants that are compiled ahead of time, with their signatures.

Each spec names a kernel and fixes the specialisation a GPU run would use for
the common case (fp32, head dim 64, per-channel gate, the launchers' block
sizes), plus a few variants (packed sequences, bf16) so that those code paths
are compile-checked too. Pointers that a launcher passes as None are
`constexpr` None here, as Triton specialises them at launch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .kernels.linear_attention.layout import state_tiles

BT, BC = 64, 16   # the launchers' chunking on a GPU


@dataclass(frozen=True)
class Spec:
    name: str
    kernel: str                       # "module:attr" under spikec.codegen.triton.kernels
    signature: dict = field(default_factory=dict)
    constexprs: dict = field(default_factory=dict)


def _sig(pointers: dict, scalars: dict, consts: dict) -> tuple[dict, dict]:
    sig = {**pointers, **scalars, **{k: "constexpr" for k in consts}}
    return sig, consts


def _la(name, kernel, pointers, scalars, consts):
    return Spec(name, kernel, *_sig(pointers, scalars, consts))


def _varlen(varlen: bool, *names) -> tuple[dict, dict]:
    """Pointers of the packed-sequence maps: real int32 pointers, or None constants."""
    if varlen:
        return {n: "*i32" for n in names}, {}
    return {}, {n: None for n in names}


def _p2(n: int) -> int:
    return max(16, 1 << (int(n) - 1).bit_length())


def linear_attention_specs(dtype: str = "fp32", varlen: bool = False, suffix: str = "", *, K: int = 64,
                           V: int = 64, H: int = 4, HKV: int = 2, gate: bool = True,
                           scalar: bool = False) -> list[Spec]:
    """Every linear-attention kernel, forward and backward (no gate: no gate kernels)."""
    t = f"*{dtype}"
    common = dict(H=H, HKV=HKV, K=K, V=V, IS_VARLEN=varlen)
    BK, BV, BKq, BVv = _p2(K), _p2(V), min(_p2(K), 64), min(_p2(V), 64)
    BKs, BVs = state_tiles(K, V, H)          # the state passes' tiles at batch size 1
    prec = {"PRECISION": "ieee"}
    vp, vc = _varlen(varlen, "cu_seqlens", "chunk_indices")
    sp, sc = _varlen(varlen, "cu_seqlens", "chunk_offsets")
    specs = [
        _la("la_gate_cumsum" + suffix, "linear_attention.gate_cumsum:gate_cumsum_kernel",
            {"g": t, "b": "*fp32", **vp}, {"T": "i32"},
            {**vc, "HKV": HKV, "K": K, "BT": BT, "BK": BK, "SCALAR": scalar, "IS_VARLEN": varlen}),
        _la("la_state_fwd" + suffix, "linear_attention.state_fwd:state_fwd_kernel",
            {"k": t, "v": t, "b": "*fp32", "h": "*fp32", "h0": "*fp32", "ht": "*fp32", **sp}, {"T": "i32"},
            {**sc, **common, "BT": BT, "BK": BKs, "BV": BVs, "GATE": gate, "USE_H0": True, "STORE_HT": True, **prec}),
        _la("la_output_fwd" + suffix, "linear_attention.output_fwd:output_fwd_kernel",
            {"q": t, "k": t, "v": t, "b": "*fp32", "h": "*fp32", "o": t, **vp}, {"scale": "fp32", "T": "i32"},
            {**vc, **common, "BT": BT, "BC": BC, "BK": BK, "BV": BVv, "GATE": gate, **prec}),
        _la("la_state_bwd" + suffix, "linear_attention.state_bwd:state_bwd_kernel",
            {"q": t, "do": t, "b": "*fp32", "dh": "*fp32", "dht": "*fp32", "dh0": "*fp32", **sp},
            {"scale": "fp32", "T": "i32"},
            {**sc, **common, "BT": BT, "BK": BKs, "BV": BVs, "GATE": gate, "USE_DHT": True, "STORE_DH0": True,
             **prec}),
        _la("la_grad_qk" + suffix, "linear_attention.grad_qk:grad_qk_kernel",
            {"q": t, "k": t, "v": t, "b": "*fp32", "h": "*fp32", "do": t, "dh": "*fp32", "dq": "*fp32",
             "dk": "*fp32", **vp}, {"scale": "fp32", "T": "i32"},
            {**vc, **common, "BT": BT, "BC": BC, "BK": BKq, "BV": BV, "GATE": gate, **prec}),
        _la("la_grad_v" + suffix, "linear_attention.grad_v:grad_v_kernel",
            {"q": t, "k": t, "b": "*fp32", "do": t, "dh": "*fp32", "dv": "*fp32", **vp}, {"scale": "fp32", "T": "i32"},
            {**vc, **common, "BT": BT, "BC": BC, "BK": BK, "BV": BVv, "GATE": gate, **prec}),
        _la("la_grad_gate" + suffix, "linear_attention.grad_gate:grad_gate_kernel",
            {"q": t, "k": t, "dq": "*fp32", "dk": "*fp32", "dg": "*fp32", "dg_final": "*fp32", **sp}, {"T": "i32"},
            {**sc, "H": H, "HKV": HKV, "K": K, "BT": BT, "BK": BK, "SCALAR": scalar, "USE_FINAL": True,
             "IS_VARLEN": varlen}),
        _la("la_recurrent_step" + suffix, "linear_attention.recurrent_step:recurrent_step_kernel",
            {"q": t, "k": t, "v": t, "g": "*fp32", "state": "*fp32", "o": t}, {"scale": "fp32", "T": "i32"},
            {"H": H, "HKV": HKV, "K": K, "V": V, "BK": BK, "BV": BVv, "GATE": gate, "SCALAR": scalar}),
    ]
    if not gate:
        specs = [s for s in specs if not s.name.startswith(("la_gate_cumsum", "la_grad_gate"))]
    return specs


def attention_specs(dtype: str = "fp32", suffix: str = "", *, D: int = 64, DV: int = 64, H: int = 4,
                    HKV: int = 2, causal: bool = True) -> list[Spec]:
    t = f"*{dtype}"
    attn = dict(H=H, HKV=HKV, D=D, DV=DV, BM=32, BN=32, BD=_p2(D), BDV=_p2(DV), CAUSAL=causal, PRECISION="ieee")
    qkv = {"q": t, "k": t, "v": t}
    band = {"scale": "fp32", "Tq": "i32", "Tk": "i32", "WINDOW": "i32"}
    return [
        _la("swa_fwd" + suffix, "attention.fwd:attention_fwd_kernel", {**qkv, "o": t, "lse": "*fp32"}, band, attn),
        _la("swa_bwd_delta" + suffix, "attention.bwd:attention_delta_kernel",
            {"o": t, "do": t, "delta": "*fp32"}, {"Tq": "i32"}, {"DV": DV, "BM": 32, "BDV": _p2(DV)}),
        _la("swa_bwd_dkdv" + suffix, "attention.bwd:attention_dkdv_kernel",
            {**qkv, "do": t, "lse": "*fp32", "delta": "*fp32", "dk": "*fp32", "dv": "*fp32"}, band, attn),
        _la("swa_bwd_dq" + suffix, "attention.bwd:attention_dq_kernel",
            {**qkv, "do": t, "lse": "*fp32", "delta": "*fp32", "dq": "*fp32"}, band, attn),
    ]


def spike_specs(dtype: str = "fp32", suffix: str = "") -> list[Spec]:
    return [
        _la("spike_encode" + suffix, "spike.encode:spike_encode_kernel",
            {"x": f"*{dtype}", "counts": "*i32", "v_th": "*fp32"},
            {"k": "fp32", "F": "i32", "VTH_MIN": "fp32", "VTH_MAX": "fp32"}, {"BF": 1024}),
    ]


def grouped_gemm_specs(dtype: str = "fp32", suffix: str = "", *, top_k: int = 2, weighted: bool = True,
                       N: int = 64, K: int = 64) -> list[Spec]:
    t = f"*{dtype}"
    BN, BK = min(64, _p2(N)), min(64, _p2(K))
    return [
        _la("grouped_gemm" + suffix, "moe.grouped_gemm:grouped_gemm_kernel",
            {"x": t, "w": t, "out": t, "row_ids": "*i32", "block_group": "*i32", "row_weight": t},
            {"N": "i32", "K": "i32", "stride_xm": "i32", "stride_wg": "i32", "stride_wn": "i32",
             "stride_wk": "i32", "stride_om": "i32"},
            {"ROW_DIV": top_k, "HAS_WEIGHT": weighted, "BM": 16, "BN": BN, "BK": BK, "PRECISION": "ieee"}),
    ]


def base_specs(head_dim: int = 64) -> list[Spec]:
    """One variant of every kernel (fp32, per-channel gate, grouped-query heads)."""
    d = dict(K=head_dim, V=head_dim)
    return (linear_attention_specs(**d) + attention_specs(D=head_dim, DV=head_dim) + spike_specs()
            + grouped_gemm_specs(N=head_dim, K=head_dim))


def variant_specs(head_dim: int = 64) -> list[Spec]:
    """The other code paths: packed sequences, bf16 inputs, no gate, full causal attention."""
    d = dict(K=head_dim, V=head_dim)
    varlen = ("la_state_fwd", "la_output_fwd", "la_grad_qk", "la_grad_gate")   # both kinds of sequence lookup
    return ([s for s in linear_attention_specs(varlen=True, suffix="_varlen", **d) if s.name.startswith(varlen)]
            + [s for s in linear_attention_specs("bf16", suffix="_bf16", **d) if "output_fwd" in s.name]
            + [s for s in linear_attention_specs(suffix="_nogate", gate=False, **d)
               if s.name.startswith(("la_output_fwd", "la_grad_qk"))]
            + attention_specs("bf16", "_bf16", D=head_dim, DV=head_dim)[:1]
            + grouped_gemm_specs("bf16", "_bf16", N=head_dim, K=head_dim))


def all_specs(head_dim: int = 64) -> list[Spec]:
    return base_specs(head_dim) + variant_specs(head_dim)
