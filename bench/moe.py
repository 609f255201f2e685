"""Tokens/s of one MoE layer, three ways, in one run (CPU, fp32):

    grouped  the torch target's `moe` kernel: route, sort the N*k token slots by expert,
             pad each expert to a block (--block, CPU default 1), one GEMM per expert
             segment, weighted sum over k; grouped_b16 is the same with GPU-style 16-row blocks
    loop     the zoo's eager SparseMoE: per expert torch.where + gather + FFN + index_add
    dense    the zoo's compute-all SparseMoE: every expert on every token, masked combine

    .venv/bin/python bench/moe.py                       # the default shapes, ~1 minute
    .venv/bin/python bench/moe.py --repeats 3 --configs 8x2@512   # experts x top_k @ tokens

Methods run interleaved (round robin) so machine load hits them alike; the report gives
per-method medians, tokens/s and ratios against the eager loop. All three are checked
against each other first (relative error <= 1e-5). Writes bench/results/moe.json (and
moe.png when PIL is installed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

from spikec.codegen.torch.kernels.grouped_gemm import moe_forward
from spikec.models.moe import SparseMoE

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def stacked(layer: SparseMoE):
    w = [torch.stack([getattr(e, p).weight for e in layer.experts]) for p in ("gate_proj", "up_proj", "down_proj")]
    s = layer.shared_expert
    shared = [s.gate_proj.weight, s.up_proj.weight, s.down_proj.weight] if s is not None else [None] * 3
    return [layer.gate.weight, *w, *shared]


def methods(layer: SparseMoE, block: int):
    args = stacked(layer)

    def grouped(b):
        return lambda x: moe_forward(x, *args, top_k=layer.top_k, activation=layer.router_activation,
                                     renormalize=layer.norm_topk_prob, block=b)
    return {
        "grouped": grouped(block),
        "grouped_b16": grouped(16),
        "loop": lambda x: layer.forward_with_aux(x, impl="sparse")[0],
        "dense": lambda x: layer.forward_with_aux(x, impl="dense")[0],
    }


def bench_config(E: int, k: int, tokens: int, args) -> dict:
    torch.manual_seed(0)
    layer = SparseMoE(args.hidden, args.ffn, E, k, args.ffn if args.shared else 0).eval()
    x = torch.randn(1, tokens, args.hidden)
    fns = methods(layer, args.block)
    with torch.no_grad():
        ref = fns["loop"](x)
        for name, fn in fns.items():
            err = float((fn(x) - ref).norm() / ref.norm())
            if err > 1e-5:
                raise SystemExit(f"{name} disagrees with the eager loop: relative error {err:.2e}")
        times: dict[str, list[float]] = {n: [] for n in fns}
        for _ in range(args.warmup):
            for fn in fns.values():
                fn(x)
        for _ in range(args.repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - t0)
    med = {n: statistics.median(t) for n, t in times.items()}
    return {"experts": E, "top_k": k, "tokens": tokens, "hidden": args.hidden, "expert_ffn": args.ffn,
            "shared_expert": bool(args.shared), "median_s": med,
            "tokens_per_s": {n: tokens / m for n, m in med.items()},
            "speedup_vs_loop": {n: med["loop"] / m for n, m in med.items()},
            "all_s": times}


def plot(results: list[dict], path: str) -> bool:
    """Grouped bars of tokens/s per config, drawn with PIL (no PNG without it)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return False
    names = ["grouped", "grouped_b16", "loop", "dense"]
    colors = [(31, 119, 180), (148, 103, 189), (255, 127, 14), (44, 160, 44)]
    W, H, pad = 640, 360, 40
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    top = max(r["tokens_per_s"][n] for r in results for n in names)
    group = (W - 2 * pad) / len(results)
    bar = group * 0.8 / len(names)
    for j, r in enumerate(results):
        for i, n in enumerate(names):
            x0 = pad + j * group + i * bar
            h = (H - 2 * pad) * r["tokens_per_s"][n] / top
            d.rectangle([x0, H - pad - h, x0 + bar - 2, H - pad], fill=colors[i])
            d.text((x0, H - pad - h - 12), f"{r['tokens_per_s'][n]:.0f}", fill="black")
        d.text((pad + j * group, H - pad + 8), f"E={r['experts']} k={r['top_k']} N={r['tokens']}", fill="black")
    for i, n in enumerate(names):
        d.rectangle([W - 120, 10 + 16 * i, W - 108, 22 + 16 * i], fill=colors[i])
        d.text((W - 100, 10 + 16 * i), n, fill="black")
    d.text((pad, 10), "MoE layer tokens/s (median), CPU fp32", fill="black")
    img.save(path)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="8x2@2048,16x1@2048,64x2@64",
                    help="experts x top_k @ tokens, comma separated (the last: decode-like, many small experts)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--ffn", type=int, default=512, help="each expert's intermediate size")
    ap.add_argument("--shared", type=int, default=1, help="1: one shared expert, as in spikingbrain_moe")
    ap.add_argument("--block", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(RESULTS, "moe.json"))
    ap.add_argument("--quick", action="store_true", help="`make bench` sizes: 1 warm-up, 3 repeats")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that only check the script runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats = 1, 3
    if args.smoke:
        args.configs, args.hidden, args.ffn, args.warmup, args.repeats = "4x1@32", 64, 64, 0, 1
        args.out = args.out.replace(".json", ".smoke.json")
    torch.set_num_threads(args.threads)
    results = []
    for spec in args.configs.split(","):
        ek, _, n = spec.partition("@")
        E, k = (int(v) for v in ek.split("x"))
        r = bench_config(E, k, int(n or 2048), args)
        results.append(r)
        cells = [f"{n}: {r['tokens_per_s'][n]:9.0f} tok/s ({r['speedup_vs_loop'][n]:.2f}x)"
                 for n in ("grouped", "grouped_b16", "loop", "dense")]
        print(f"E={E:3d} k={k} N={r['tokens']:5d}  " + "  ".join(cells))
    report = {"bench": "moe layer tokens/s", "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
              "torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
              "processor": platform.processor(), "cpus": os.cpu_count(), "block": args.block,
              "load_average_1m_at_end": os.getloadavg()[0],
              "repeats": args.repeats, "results": results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    png = os.path.splitext(args.out)[0] + ".png"
    print(f"wrote {args.out}" + (f" and {png}" if plot(results, png) else " (PIL not installed: no PNG)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
