"""GPU kernel benchmark: the Triton GLA kernel (spikec cuda target) against torch
SDPA (flash attention, causal) and flash-linear-attention's chunk_gla, at long T.

    python bench/kernels_cuda.py                   # B=1, H=8, D=64, T=16384, bf16
    python bench/kernels_cuda.py --T 4096 16384 --dtype fp32

Times forward and forward+backward with triton.testing.do_bench (median ms),
checks the Triton output against chunk_gla (when installed) and against the
torch target's chunked kernel, and writes bench/results/kernels_cuda.json.
Without a CUDA GPU it says so and exits 0.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys

import torch

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "kernels_cuda.json")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _chunk_gla():
    try:
        from fla.ops.gla import chunk_gla
    except Exception as e:  # noqa: BLE001 -- any import failure means "not available"
        print(f"flash-linear-attention not importable ({type(e).__name__}: {e}); skipping chunk_gla")
        return None
    head_first = "head_first" in inspect.signature(chunk_gla).parameters

    def run(q, k, v, g, scale):       # head-first [B, H, T, D] in, head-first out
        if head_first:
            return chunk_gla(q, k, v, g, scale=scale, head_first=True)[0]
        t = [x.transpose(1, 2).contiguous() for x in (q, k, v, g)]
        return chunk_gla(*t, scale=scale)[0].transpose(1, 2)
    return run


def _bench(fn, backward_of=None):
    from triton.testing import do_bench
    fwd = do_bench(fn)
    if backward_of is None:
        return {"fwd_ms": fwd}

    def fwd_bwd():
        out = fn()
        torch.autograd.grad(out, backward_of, torch.ones_like(out))
    return {"fwd_ms": fwd, "fwd_bwd_ms": do_bench(fwd_bwd)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[16384])
    p.add_argument("--B", type=int, default=1)
    p.add_argument("--H", type=int, default=8)
    p.add_argument("--D", type=int, default=64)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU present: bench/kernels_cuda.py needs a CUDA device; nothing measured")
        return 0

    # imported after the check: with no GPU, importing the package selects Triton's interpreter
    from spikec.codegen.torch.kernels.linear_attention import linear_attention as torch_gla
    from spikec.codegen.triton import mode
    assert not mode.interpreting(), "unset TRITON_INTERPRET to benchmark the compiled kernels"
    from spikec.codegen.triton.kernels.linear_attention.api import linear_attention as triton_gla

    dt, dev = DTYPES[args.dtype], "cuda"
    B, H, D = args.B, args.H, args.D
    scale = D ** -0.5
    fla = _chunk_gla()
    rows = []
    for T in args.T:
        gen = torch.Generator(device=dev).manual_seed(0)
        q, k, v = (torch.randn(B, H, T, D, device=dev, generator=gen, dtype=dt).requires_grad_() for _ in range(3))
        g = (torch.nn.functional.logsigmoid(torch.randn(B, H, T, D, device=dev, generator=gen)) / 16)
        g = g.to(dt).requires_grad_()
        row = {"T": T, "B": B, "H": H, "D": D, "dtype": args.dtype}
        row["triton_gla"] = _bench(lambda: triton_gla(q, k, v, g, gate_kind="channel", scale=scale), (q, k, v, g))
        row["torch_sdpa_causal"] = _bench(
            lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v))
        with torch.no_grad():
            o = triton_gla(q, k, v, g, gate_kind="channel", scale=scale).float()
            o_ref = torch_gla(q.float(), k.float(), v.float(), g.float(), gate_kind="channel", scale=scale)
            row["max_abs_diff_vs_torch_chunked_fp32"] = float((o - o_ref).abs().max())
            if fla is not None:
                row["max_abs_diff_vs_chunk_gla"] = float((o - fla(q, k, v, g, scale).float()).abs().max())
        if fla is not None:
            row["fla_chunk_gla"] = _bench(lambda: fla(q, k, v, g, scale), (q, k, v, g))
        rows.append(row)
        print(json.dumps(row))
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "triton": __import__("triton").__version__, "rows": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
