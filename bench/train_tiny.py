"""Train a zoo model's ``tiny`` preset on the stdlib corpus and record the run.

    .venv/bin/python bench/train_tiny.py                      # spikingbrain tiny, 300 steps
    .venv/bin/python bench/train_tiny.py --model spikegpt --steps 100 --save out/spikegpt-tiny

Writes bench/results/train_tiny.json (and train_tiny.png when matplotlib is installed). A
checkpoint is written only with --save; keep it out of git (out/ is ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

import spikec.models as zoo

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def plot(history, path: str, title: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [h["val_loss"] for h in history], marker="o", label="validation")
    ax.plot(steps[1:], [h["train_loss"] for h in history[1:]], marker=".", label="train (last batch)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross entropy (nats/byte)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="spikingbrain", choices=zoo.names())
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(RESULTS, "train_tiny.json"))
    ap.add_argument("--save", default=None, help="directory for the trained checkpoint (keep out of git)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    corpus = zoo.build_corpus()
    corpus_s = time.perf_counter() - t0
    model = zoo.create(args.model, args.preset)
    result = zoo.train_eager(model, corpus, steps=args.steps, batch_size=args.batch_size,
                             seq_len=args.seq_len, lr=args.lr, eval_every=args.eval_every,
                             eval_batches=args.eval_batches, seed=args.seed,
                             progress=not args.no_progress)
    record = {
        "model": args.model, "preset": args.preset, "config": model.config.to_dict(),
        "param_counts": zoo.param_counts(model),
        "corpus": {"source": "python stdlib *.py", "train_tokens": corpus["train"].numel(),
                   "val_tokens": corpus["val"].numel(), "build_s": round(corpus_s, 2)},
        "hyperparameters": {k: getattr(args, k) for k in ("steps", "batch_size", "seq_len", "lr", "seed",
                                                          "eval_every", "eval_batches")},
        "initial_val_loss": result.initial_val_loss, "final_val_loss": result.final_val_loss,
        "relative_drop": 1 - result.final_val_loss / result.initial_val_loss,
        "elapsed_s": result.elapsed_s, "tokens": result.tokens,
        "mean_tokens_per_s": result.tokens / result.elapsed_s,
        "history": result.history,
        "environment": {"torch": torch.__version__, "python": sys.version.split()[0],
                        "platform": platform.platform(), "threads": torch.get_num_threads()},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    png = os.path.splitext(args.out)[0] + ".png"
    record["plot"] = os.path.basename(png) if plot(result.history, png, f"{args.model}:{args.preset}") else \
        "skipped (matplotlib not installed)"
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    if args.save:
        model.save_pretrained(args.save)
        zoo.ByteTokenizer().save(args.save)
    print(f"val loss {result.initial_val_loss:.3f} -> {result.final_val_loss:.3f} "
          f"({100 * record['relative_drop']:.1f}% lower) in {result.elapsed_s:.1f}s, "
          f"{record['mean_tokens_per_s']:,.0f} tok/s; wrote {args.out}; plot: {record['plot']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
