"""SpikingBrain-style conversion, measured: train a tiny Transformer, convert it to the GLA/SWA
hybrid with ``convert_to_hybrid`` and fine-tune the hybrid; record the validation losses.

    .venv/bin/python bench/convert_finetune.py                  # 300 + 300 steps, plan alternate
    .venv/bin/python bench/convert_finetune.py --plan all-gla --window 32

Writes bench/results/convert_finetune.json. With ``--control`` (default on) the Transformer
also trains for the same extra steps, so the hybrid is compared against equal total training.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time

import torch

import spikec.models as zoo

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _train(model, corpus, steps, args, seed, lr):
    return zoo.train_eager(model, corpus, steps=steps, batch_size=args.batch_size, seq_len=args.seq_len,
                           lr=lr, eval_every=args.eval_every, eval_batches=args.eval_batches, seed=seed,
                           progress=not args.no_progress)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="Transformer pre-training steps")
    ap.add_argument("--finetune-steps", type=int, default=300)
    ap.add_argument("--plan", default="alternate")
    ap.add_argument("--window", type=int, default=64, help="SWA window (< seq-len, so the band matters)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--finetune-lr", type=float, default=1e-3)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-control", dest="control", action="store_false")
    ap.add_argument("--out", default=os.path.join(RESULTS, "convert_finetune.json"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    corpus = zoo.build_corpus()
    val = lambda m: zoo.evaluate(m, corpus["val"], args.batch_size, args.seq_len, args.eval_batches)  # noqa: E731

    t0 = time.perf_counter()
    transformer = zoo.create("transformer", "tiny")
    pre = _train(transformer, corpus, args.steps, args, args.seed, args.lr)
    hybrid = zoo.convert_to_hybrid(transformer, args.plan, window=args.window, seed=args.seed)
    converted = val(hybrid)                   # before any fine-tuning: what conversion alone costs
    ft = _train(hybrid, corpus, args.finetune_steps, args, args.seed + 1, args.finetune_lr)
    record = {
        "transformer": {"config": transformer.config.to_dict(), "params": zoo.param_counts(transformer),
                        "initial_val_loss": pre.initial_val_loss, "final_val_loss": pre.final_val_loss,
                        "history": pre.history, "elapsed_s": pre.elapsed_s},
        "hybrid": {"config": hybrid.config.to_dict(), "params": zoo.param_counts(hybrid),
                   "val_loss_after_conversion": converted, "final_val_loss": ft.final_val_loss,
                   "history": ft.history, "elapsed_s": ft.elapsed_s},
        "ratio_final_to_transformer": ft.final_val_loss / pre.final_val_loss,
        "within_10_percent": abs(ft.final_val_loss / pre.final_val_loss - 1) <= 0.10,
    }
    if args.control:            # the Transformer with the same extra steps and schedule
        ctl_model = copy.deepcopy(transformer)
        ctl = _train(ctl_model, corpus, args.finetune_steps, args, args.seed + 1, args.finetune_lr)
        record["control_transformer_continued"] = {"final_val_loss": ctl.final_val_loss, "history": ctl.history}
    record.update({
        "hyperparameters": {k: getattr(args, k) for k in ("steps", "finetune_steps", "plan", "window", "batch_size",
                                                          "seq_len", "lr", "finetune_lr", "seed", "eval_batches")},
        "wall_s": time.perf_counter() - t0,
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                    "threads": torch.get_num_threads()},
    })
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"transformer {pre.initial_val_loss:.3f} -> {pre.final_val_loss:.3f}; converted {converted:.3f}; "
          f"fine-tuned {ft.final_val_loss:.3f} (ratio {record['ratio_final_to_transformer']:.3f})"
          + (f"; transformer continued {record['control_transformer_continued']['final_val_loss']:.3f}"
             if args.control else ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
