"""compile: wall time of spikec.compile for spikingbrain `small`, per stage, cold and warm.

Cold is a fresh Python process (imports, torch.export, passes, codegen); warm is a
second compile in the same process.

    python bench/compile.py [--quick | --smoke] [--targets cpu,torch]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import parser, setup, table, write  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, spikec, spikec.models as zoo
imports = time.perf_counter() - t0
torch.set_num_threads(int(sys.argv[3]))
runs = []
for _ in range(2):
    model = zoo.create("spikingbrain", sys.argv[1]).eval()
    t0 = time.perf_counter()
    art = spikec.compile(model, target=sys.argv[2], pipeline="default,fuse-linear-attention,fuse-attention")
    runs.append({"total": time.perf_counter() - t0, **art.meta["compile_seconds"]})
print(json.dumps({"imports": imports, "cold": runs[0], "warm": runs[1]}))
"""


def main(argv=None) -> dict:
    p = parser(__doc__)
    p.add_argument("--targets", default="cpu,torch")
    args = p.parse_args(argv)
    setup(args)
    preset = "tiny" if args.smoke else "small"
    rows, raw = [], {}
    for target in [t for t in args.targets.split(",") if t]:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, preset, target, str(args.threads)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"target {target}: compile failed:\n{out.stderr[-2000:]}")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        raw[target] = res
        for kind in ("cold", "warm"):
            r = res[kind]
            rows.append({"target": target, "run": kind, "total_s": r["total"] + (res["imports"] if kind == "cold" else 0),
                         "imports_s": res["imports"] if kind == "cold" else 0.0, "capture_s": r["capture"],
                         "passes_s": sum(v for k, v in r.items() if k.startswith("passes:")),
                         "lower_s": sum(v for k, v in r.items() if k.startswith("lower:"))})
        print(table(rows[-2:], list(rows[-1])), flush=True)
    if rows:
        print(table(rows, list(rows[0])))

    def plot(ax):
        labels = [f"{r['target']} {r['run']}" for r in rows]
        bottom = [0.0] * len(rows)
        for part in ("imports_s", "capture_s", "passes_s", "lower_s"):
            vals = [r[part] for r in rows]
            ax.bar(labels, vals, bottom=bottom, label=part[:-2])
            bottom = [a + b for a, b in zip(bottom, vals)]
        ax.set_ylabel("seconds")
        ax.set_title(f"spikec.compile, spikingbrain {preset} (forward + prefill + decode entries)")
    write("compile", {"preset": preset, "rows": rows, "raw": raw}, args, plot)
    return {"rows": rows}


if __name__ == "__main__":
    main()
