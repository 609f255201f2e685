"""train: tokens/s of one training step (forward + backward + AdamW) of spikingbrain `small`.

spikec's torch target (fused chunked GLA with its handwritten backward, banded SWA)
against the eager model with GLA as the Python loop over time (attn_mode=naive), the
eager model with the zoo's chunked GLA, and torch.compile of that eager chunked model.

    python bench/train.py [--quick | --smoke]
"""
from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median_seconds, parser, setup, table, write  # noqa: E402


def _step_fn(module, batch):
    x, y = batch
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
    return step


def main(argv=None) -> dict:
    p = parser(__doc__)
    args = p.parse_args(argv)
    setup(args)
    import spikec
    import spikec.models as zoo

    preset = "tiny" if args.smoke else "small"
    B, T = (2, 32) if args.smoke else (4, 256) if args.quick else (4, 512)
    repeats = args.repeats or (1 if args.smoke else 3)
    torch.manual_seed(0)
    chunk = zoo.create("spikingbrain", preset).train()
    naive = zoo.create("spikingbrain", preset, attn_mode="naive").train()
    naive.load_state_dict(chunk.state_dict())
    g = torch.Generator().manual_seed(0)
    batch = (torch.randint(0, 256, (B, T), generator=g), torch.randint(0, 256, (B, T), generator=g))

    t0 = time.perf_counter()
    art = spikec.compile(zoo.create("spikingbrain", preset), (batch[0],), target="torch",
                         pipeline="default,fuse-linear-attention,fuse-attention", dynamic={"T": (2, 65536)})
    spikec_compile_s = time.perf_counter() - t0
    variants = {"spikec torch target": art.module, "eager naive (loop)": naive, "eager chunked": chunk}
    inductor_compile_s = None
    if not args.smoke:          # Inductor's cold compile alone takes longer than a smoke run should
        compiled_eager = torch.compile(chunk)
        t0 = time.perf_counter()
        _step_fn(compiled_eager, batch)()
        inductor_compile_s = time.perf_counter() - t0
        variants["torch.compile(eager chunked)"] = compiled_eager
    rows = []
    for name, module in variants.items():
        sec = median_seconds(_step_fn(module, batch), repeats=repeats, warmup=1)
        rows.append({"variant": name, "step_s": sec, "tokens_per_s": B * T / sec})
        print(table(rows[-1:], list(rows[-1])), flush=True)
    ours = rows[0]["tokens_per_s"]
    for r in rows:
        r["spikec_speedup"] = ours / r["tokens_per_s"]
    print(table(rows, list(rows[0])))
    summary = {"vs_eager_naive": rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"],
               "vs_torch_compile": rows[0]["tokens_per_s"] / rows[3]["tokens_per_s"] if len(rows) > 3 else None,
               "spikec_compile_s": spikec_compile_s, "inductor_first_step_s": inductor_compile_s}
    print("summary:", summary)

    def plot(ax):
        ax.bar([r["variant"] for r in rows], [r["tokens_per_s"] for r in rows])
        ax.set_ylabel("training tokens/s")
        ax.set_title(f"train step, spikingbrain {preset}, B={B} T={T}, {args.threads} threads")
        ax.tick_params(axis="x", labelsize=7)
    write("train", {"preset": preset, "batch": B, "seq_len": T, "rows": rows, "summary": summary}, args, plot)
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
