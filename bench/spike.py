"""Spike coding on the zoo's spikingbrain tiny model trained on the corpus.

    .venv/bin/python bench/spike.py                                  # train 300 steps, then measure
    .venv/bin/python bench/spike.py --checkpoint out/spike-bench/sb-tiny   # reuse a trained model

1. Train `spikingbrain:tiny` with zoo.train_eager (or load --checkpoint; --save keeps it).
2. Trace it, run insert-spike-coding for k in {2, 3, 4} and compile each graph on the torch
   target. Validation perplexity on fixed windows of the corpus validation split.
   Unbounded counts (steps=0) decode exactly in every coding, so the three codings share
   one perplexity per k; with a fixed window of --window-steps time steps the coding
   decides which counts survive, so those get one perplexity each.
3. The spike report (interpreter, --report-samples windows) per k and coding: spikes per
   channel, silent fraction, 3-step-window sparsity, time steps, energy vs dense FP16.
4. QAT: --qat-steps AdamW steps of the k=3 bitwise graph on the torch target
   (straight-through gradients), validation perplexity before and after.

Writes bench/results/spike.json (a PNG only when matplotlib is installed).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

import spikec.passes
import spikec.models as zoo
from spikec.codegen import get_target
from spikec.frontend import from_torch
from spikec.passes.spike_report import spike_report

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
CODINGS = ("binary", "ternary", "bitwise")
PAPER = {"k3_sparsity": 0.6915, "k3_accuracy_drop": 0.02,
         "note": "SpikingBrain-7B, W8ASpike k=3: 69.15% sparsity (3-step window), average accuracy 0.6998 -> 0.6875"}


def train_or_load(args, corpus):
    if args.checkpoint and os.path.exists(os.path.join(args.checkpoint, "config.json")):
        model = zoo.from_pretrained(args.checkpoint)
        info_path = os.path.join(args.checkpoint, "training.json")
        info = json.load(open(info_path)) if os.path.exists(info_path) else {"source": args.checkpoint}
        info["loaded_from"] = args.checkpoint
        return model, info
    torch.manual_seed(args.seed)
    model = zoo.create("spikingbrain", "tiny")
    r = zoo.train_eager(model, corpus, steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                        lr=args.lr, eval_every=max(args.steps // 3, 1), eval_batches=4, seed=args.seed,
                        progress=not args.no_progress)
    info = {"steps": args.steps, "batch_size": args.batch_size, "seq_len": args.seq_len, "lr": args.lr,
            "seed": args.seed, "initial_val_loss": r.initial_val_loss, "final_val_loss": r.final_val_loss,
            "elapsed_s": r.elapsed_s}
    if args.save:
        model.save_pretrained(args.save)
        with open(os.path.join(args.save, "training.json"), "w") as f:
            json.dump(info, f, indent=2)
    return model, info


def val_batches(corpus, batch, seq_len, n):
    g = torch.Generator().manual_seed(1234)          # the windows zoo.evaluate uses
    return [zoo.random_batch(corpus["val"], batch, seq_len, g) for _ in range(n)]


@torch.no_grad()
def mean_ce(mod, batches) -> float:
    return sum(float(F.cross_entropy(mod(x).flatten(0, 1).float(), y.flatten())) for x, y in batches) / len(batches)


def compiled(graph, **kw):
    return get_target("torch").lower(graph, **kw)


def qat(graph, corpus, args, batches):
    """Fine-tune the spike-coded graph on the torch target; returns the curve and perplexities."""
    mod = compiled(graph, parameters="all")
    before = mean_ce(mod, batches)
    opt = torch.optim.AdamW(mod.parameters(), lr=args.qat_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed + 1)
    curve, t0 = [], time.perf_counter()
    for step in range(1, args.qat_steps + 1):
        x, y = zoo.random_batch(corpus["train"], args.eval_batch_size, args.seq_len, gen)
        loss = F.cross_entropy(mod(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mod.parameters(), 1.0)
        opt.step()
        if step % max(args.qat_steps // 10, 1) == 0 or step == 1:
            curve.append({"step": step, "train_loss": float(loss.detach())})
    after = mean_ce(mod, batches)
    return {"steps": args.qat_steps, "lr": args.qat_lr, "batch_size": args.eval_batch_size,
            "val_loss_before": before, "val_loss_after": after, "ppl_before": math.exp(before),
            "ppl_after": math.exp(after), "train_curve": curve, "elapsed_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="training steps of the dense model")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None, help="a trained checkpoint directory to load instead of training")
    ap.add_argument("--save", default=None, help="save the trained model here (keep it out of git: out/)")
    ap.add_argument("--ks", default="2,3,4")
    ap.add_argument("--window-steps", type=int, default=3, help="time steps of the fixed-window variant")
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--eval-batch-size", type=int, default=8)
    ap.add_argument("--report-samples", type=int, default=2)
    ap.add_argument("--qat-steps", type=int, default=200)
    ap.add_argument("--qat-lr", type=float, default=1e-3)
    ap.add_argument("--out", default=os.path.join(RESULTS, "spike.json"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--quick", action="store_true", help="`make bench` sizes: 150 + 100 QAT steps, 4 eval batches")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that only check the script runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.qat_steps, args.eval_batches = 150, 100, 4
    if args.smoke:
        args.steps, args.qat_steps, args.eval_batches, args.ks = 3, 2, 1, "3"
        args.out = args.out.replace(".json", ".smoke.json")

    t_start = time.perf_counter()
    corpus = zoo.build_corpus()
    model, training = train_or_load(args, corpus)
    model.eval()
    batches = val_batches(corpus, args.eval_batch_size, args.seq_len, args.eval_batches)
    graph = from_torch(model, (batches[0][0],))

    dense_ce = mean_ce(compiled(graph), batches)
    eager_ce = mean_ce(model, batches)
    assert abs(dense_ce - eager_ce) < 1e-4, (dense_ce, eager_ce)
    rows = []
    print(f"dense: val ppl {math.exp(dense_ce):.3f} (eager {math.exp(eager_ce):.3f})")
    print(f"{'k':>3} {'coding':<8} {'ppl':>8} {'+%':>6} {'ppl@T=' + str(args.window_steps):>9} {'spk/ch':>7} "
          f"{'silent':>7} {'sparse3':>8} {'T max':>6} {'E vs FP16':>10} {'E model':>8}")
    for k in (float(s) for s in args.ks.split(",")):
        spiked = spikec.passes.run(graph, f"insert-spike-coding{{k={k}}}")
        ce = mean_ce(compiled(spiked), batches)
        samples = [(x,) for x, _ in batches[:args.report_samples]]
        rep = spike_report(spiked, samples)
        for coding in CODINGS:
            windowed = spikec.passes.run(graph, f"insert-spike-coding{{k={k},coding={coding},steps={args.window_steps}}}")
            wce = mean_ce(compiled(windowed), batches)
            o, e = rep.overall, rep.energy
            row = {"k": k, "coding": coding, "val_loss": ce, "ppl": math.exp(ce),
                   "ppl_increase": math.exp(ce) / math.exp(dense_ce) - 1,
                   "window_steps": args.window_steps, "ppl_window": math.exp(wce),
                   "ppl_window_increase": math.exp(wce) / math.exp(dense_ce) - 1,
                   "mean_spikes_per_channel": o["mean_spikes_per_channel"][coding],
                   "silent_fraction": o["silent_fraction"][coding],
                   "sparsity_window3": o["sparsity_window3"], "fraction_counts_le_7": o["fraction_counts_le_7"],
                   "time_steps_max": o["time_steps_max"][coding], "time_steps_mean": o["time_steps_mean"][coding],
                   "energy_saving_vs_fp16": e["spiked_projections"]["saving_vs_fp16"][coding],
                   "energy_saving_vs_int8": e["spiked_projections"]["saving_vs_int8"][coding],
                   "spike_pj_per_mac": e["spiked_projections"]["per_mac_pj"][coding],
                   "model_energy_saving": e["model"]["saving"][coding]}
            rows.append(row)
            print(f"{k:>3g} {coding:<8} {row['ppl']:>8.3f} {100 * row['ppl_increase']:>5.1f}% {row['ppl_window']:>9.3f} "
                  f"{row['mean_spikes_per_channel']:>7.3f} {row['silent_fraction']:>7.3f} "
                  f"{row['sparsity_window3']:>8.4f} {row['time_steps_max']:>6} "
                  f"{100 * row['energy_saving_vs_fp16']:>9.1f}% {100 * row['model_energy_saving']:>7.1f}%")

    qat_graph = spikec.passes.run(from_torch(copy.deepcopy(model), (batches[0][0],)), "insert-spike-coding{k=3}")
    qat_result = qat(qat_graph, corpus, args, batches)
    print(f"QAT k=3 bitwise, {args.qat_steps} steps on the torch target: val ppl {qat_result['ppl_before']:.3f} -> "
          f"{qat_result['ppl_after']:.3f} (dense {math.exp(dense_ce):.3f})")
    k3 = next(r for r in rows if r["k"] == 3.0 and r["coding"] == "bitwise")
    print(f"k=3: sparsity {100 * k3['sparsity_window3']:.2f}% (paper 69.15%), perplexity +{100 * k3['ppl_increase']:.1f}% "
          f"(paper: about 2% lower average accuracy, a different measure)")

    record = {"model": "spikingbrain:tiny", "config": model.config.to_dict(), "training": training,
              "eval": {"batches": args.eval_batches, "batch_size": args.eval_batch_size, "seq_len": args.seq_len,
                       "windows": "zoo.random_batch on the validation split, seed 1234 (zoo.evaluate's)"},
              "dense": {"val_loss": dense_ce, "ppl": math.exp(dense_ce), "eager_val_loss": eager_ce},
              "rows": rows, "qat": qat_result, "paper": PAPER,
              "k3": {"sparsity_window3": k3["sparsity_window3"], "ppl_increase": k3["ppl_increase"],
                     "mean_spikes_per_channel_bitwise": k3["mean_spikes_per_channel"],
                     "silent_fraction": k3["silent_fraction"]},
              "report_samples": args.report_samples, "elapsed_s": time.perf_counter() - t_start,
              "environment": {"torch": torch.__version__, "python": sys.version.split()[0],
                              "platform": platform.platform(), "threads": torch.get_num_threads()},
              "plot": "skipped (matplotlib not installed)"}
    png = os.path.splitext(args.out)[0] + ".png"
    if plot(rows, png):
        record["plot"] = os.path.basename(png)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"wrote {args.out}; plot: {record['plot']}")
    return 0


def plot(rows, path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for coding in CODINGS:
        rs = [r for r in rows if r["coding"] == coding]
        ax.plot([r["sparsity_window3"] for r in rs], [r["ppl_window"] for r in rs], marker="o",
                label=f"{coding}, T={rs[0]['window_steps']}")
    rs = [r for r in rows if r["coding"] == "bitwise"]
    ax.plot([r["sparsity_window3"] for r in rs], [r["ppl"] for r in rs], marker="s", label="any coding, unbounded T")
    ax.set_xlabel("3-step-window sparsity")
    ax.set_ylabel("validation perplexity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


if __name__ == "__main__":
    raise SystemExit(main())
