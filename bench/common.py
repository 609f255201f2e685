"""Shared pieces of the benchmark scripts: timing medians, machine facts, result files.

Every script takes --quick (the sizes `make bench` uses), --smoke (tiny sizes, for the
test that keeps the scripts from rotting) and --threads, prints a table, and writes
bench/results/<name>.json and <name>.png (or $SPIKEC_BENCH_RESULTS/...).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Callable

# Idle TVM workers sleep instead of spinning (read when TVM's pool starts, so this works even
# though the scripts import torch first); `spikec bench` also sets OMP_WAIT_POLICY=PASSIVE
# for torch's OpenMP, which must be set before torch loads.
os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def results_dir() -> str:
    d = os.environ.get("SPIKEC_BENCH_RESULTS") or os.path.join(HERE, "results")
    os.makedirs(d, exist_ok=True)
    return d


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the sizes `make bench` uses (minutes)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs (seconds)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per point (median reported)")
    return p


def setup(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(threads: int) -> dict:
    libs = {}
    for pkg in ("spikec", "torch", "apache-tvm", "onnxruntime", "onnx", "torch-mlir", "triton", "numpy"):
        try:
            libs[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "torch_threads": threads,
            "python": platform.python_version(), "platform": platform.platform(), "libraries": libs,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() over `repeats` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)
    widths = [max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def write(name: str, payload: dict, args, plot: Callable | None = None) -> tuple[str, str | None]:
    """JSON (with machine facts and the command's mode) and, given `plot(ax)`, a PNG."""
    d = results_dir()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    payload = {"benchmark": name, "mode": mode, "machine": machine_facts(args.threads), **payload}
    jpath = os.path.join(d, f"{name}.json" if mode != "smoke" else f"{name}.smoke.json")
    with open(jpath, "w") as f:
        json.dump(payload, f, indent=1)
    ppath = None
    if plot is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        plot(ax)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        ppath = jpath[:-5] + ".png"
        fig.savefig(ppath)
        plt.close(fig)
    print(f"wrote {jpath}" + (f" and {ppath}" if ppath else ""))
    return jpath, ppath
