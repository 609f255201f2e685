"""prefill: time to first token vs prompt length.

spikingbrain `small` compiled by spikec (prefill entry; fused GLA + banded SWA) on the
given targets, against the `transformer` `small` baseline (same width and depth) in
eager PyTorch with SDPA, and against the eager spikingbrain (chunked GLA as the zoo
writes it; its chunk-to-chunk decay tensor is O((T/16)^2), so it stops where memory does).

    python bench/prefill.py [--quick | --smoke] [--targets torch,cpu]
"""
from __future__ import annotations

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median_seconds, parser, setup, table, write  # noqa: E402

EAGER_SB_MAX = 8192          # the zoo's chunked GLA materialises [N, N, K] decays: 34 GB at 64K


def main(argv=None) -> dict:
    p = parser(__doc__)
    p.add_argument("--targets", default="torch,cpu", help="spikec targets to compile for (default torch,cpu)")
    args = p.parse_args(argv)
    setup(args)
    import spikec
    import spikec.models as zoo
    from spikec.lm_capture import capture_lm

    preset = "tiny" if args.smoke else "small"
    # --quick stops at 16K (the transformer's attention alone is ~40 s per call there on 2
    # cores); the full run goes to 64K. Long lengths are timed once: the first lengths warm up.
    lengths = [64, 256] if args.smoke else [1024, 4096, 16384] if args.quick else \
        [1024, 2048, 4096, 8192, 16384, 32768, 65536]
    repeats = args.repeats or (1 if args.smoke else 3)

    def runs(T):
        return (repeats, 1) if T <= 4096 or args.repeats else (1, 0)
    sb = zoo.create("spikingbrain", preset).eval()
    tf = zoo.create("transformer", preset, attn_implementation="sdpa").eval()
    lm = capture_lm(sb, sb.config.vocab_size, entries=("prefill",))
    runners = {}
    for t in [t for t in args.targets.split(",") if t]:
        try:
            art = spikec.compile(lm, target=t, pipeline="default,fuse-linear-attention,fuse-attention")
            runners[f"spikec {t}"] = lambda ids, a=art: a.run("prefill", ids)
        except spikec.SpikecError as e:
            print(f"target {t}: not benchmarked ({e.message})")
    runners["transformer eager sdpa"] = lambda ids: tf.prefill(ids)
    runners["spikingbrain eager"] = lambda ids: sb.prefill(ids)

    rows = []
    with torch.no_grad():
        for T in lengths:
            ids = torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(T))
            row = {"T": T}
            for name, fn in runners.items():
                if name == "spikingbrain eager" and T > EAGER_SB_MAX and not args.smoke:
                    row[name] = None
                    continue
                n, warm = runs(T)
                row[name] = median_seconds(lambda: fn(ids), repeats=n, warmup=warm)
            rows.append(row)
            print(table([row], list(row)), flush=True)
    best = min((n for n in runners if n.startswith("spikec")), key=lambda n: rows[-1][n] or math.inf, default=None)
    summary = {}
    if best:
        for r in rows:
            r["speedup_vs_transformer"] = r["transformer eager sdpa"] / r[best]
        growth = [b[best] / a[best] for a, b in zip(rows, rows[1:]) if a["T"] >= 8192 and b["T"] == 2 * a["T"]]
        # --quick has no 8K-and-up doublings: report the per-doubling growth over its last step
        span = [(a, b) for a, b in zip(rows, rows[1:]) if a["T"] >= 4096]
        if not growth and span:
            a, b = span[-1]
            growth = [(b[best] / a[best]) ** (1 / math.log2(b["T"] / a["T"]))]
        summary = {"compiled": best, "speedup_at_max_T": rows[-1]["speedup_vs_transformer"],
                   "max_growth_per_doubling_8k_plus": max(growth) if growth else None}
    print(table(rows, list(rows[0])))
    print("summary:", summary)

    def plot(ax):
        for name in runners:
            pts = [(r["T"], r[name]) for r in rows if r.get(name)]
            ax.loglog(*zip(*pts), marker="o", label=name)
        ax.set_xlabel("prompt length T (tokens)")
        ax.set_ylabel("time to first token (s)")
        ax.set_title(f"prefill, {preset} models, {args.threads} threads (median of {repeats})")
    write("prefill", {"preset": preset, "rows": rows, "summary": summary}, args, plot)
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
