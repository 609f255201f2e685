"""Traced zoo models (tiny presets) shared by the codegen tests.

Tracing is the slow part (seconds per model), so each recipe is traced once and
its unfused and fused graphs are reused by every target and test: in memory
within a process, and on disk across the pytest-xdist workers and runs. The
disk entry is keyed by a hash of every source file that can change a traced
graph (ir/, frontend/, passes/, models/), the torch version and the recipe; a
lock makes one worker trace while the others wait and then read it.
Small windows and lengths keep the unrolled loops short; sliding_window=4 below
the traced length makes the SWA layers fuse to sliding_window_attention.
"""
from __future__ import annotations

import functools
import getpass
import glob
import hashlib
import os
import tempfile
from dataclasses import dataclass

import torch
from filelock import FileLock

import spikec.models as zoo
from spikec import ir, passes
from spikec.frontend import from_torch

FUSE = "default,fuse-linear-attention,fuse-attention"
SPIKE = "insert-spike-coding{coding=ternary,k=3}"        # on the fused graph
FORMS = ("unfused", "fused", "spiked")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE_DIR = os.environ.get("SPIKEC_TEST_GRAPH_CACHE",
                           os.path.join(tempfile.gettempdir(), f"spikec-test-graphs-{getpass.getuser()}"))


@dataclass(frozen=True)
class Recipe:
    model: str
    overrides: tuple            # (key, value) pairs for zoo.create
    batch: int
    length: int                 # traced length
    dynamic: bool               # T symbolic in the graph
    run_lengths: tuple          # lengths to run the graph at


RECIPES = {
    "spikingbrain-chunk": Recipe("spikingbrain", (("attn_mode", "chunk"), ("sliding_window", 4)), 2, 7, True, (7, 21)),
    "spikingbrain-naive": Recipe("spikingbrain", (("attn_mode", "naive"), ("sliding_window", 4)), 2, 12, False, (12,)),
    "spikingbrain_moe": Recipe("spikingbrain_moe", (("attn_mode", "naive"), ("sliding_window", 4)), 1, 6, False, (6,)),
    "spikegpt": Recipe("spikegpt", (), 1, 5, False, (5,)),
    "transformer": Recipe("transformer", (), 1, 6, True, (6, 11)),
}


@dataclass
class Traced:
    recipe: Recipe
    model: torch.nn.Module       # eval mode; its parameters are the graphs' constants
    graphs: dict                 # "unfused" / "fused" -> Graph

    def inputs(self, length: int, seed: int = 0) -> tuple:
        gen = torch.Generator().manual_seed(seed + length)
        vocab = self.model.config.vocab_size
        return (torch.randint(0, vocab - 4, (self.recipe.batch, length), generator=gen),)


@functools.cache
def _sources_hash() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    for d in ("ir", "frontend", "passes", "models"):
        for path in sorted(glob.glob(os.path.join(ROOT, d, "**", "*.py"), recursive=True)):
            h.update(path[len(ROOT):].encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def _trace(r: Recipe, model) -> dict:
    example = (torch.randint(0, 200, (r.batch, r.length), generator=torch.Generator().manual_seed(1)),)
    g = from_torch(model, example, dynamic={"T": (2, 4096)} if r.dynamic else None)
    fused = passes.run(g, FUSE)
    return {"unfused": g, "fused": fused, "spiked": passes.run(fused, SPIKE)}


@functools.cache
def traced(name: str) -> Traced:
    r = RECIPES[name]
    torch.manual_seed(0)
    model = zoo.create(r.model, "tiny", **dict(r.overrides)).eval()
    key = hashlib.sha256(f"{_sources_hash()} {r} {FORMS} {SPIKE}".encode()).hexdigest()[:16]
    path = os.path.join(CACHE_DIR, f"{name}-{key}.pt")
    os.makedirs(CACHE_DIR, exist_ok=True)
    with FileLock(path + ".lock"):
        if os.path.exists(path):
            saved = torch.load(path, weights_only=True)
            model.load_state_dict(saved["model"])
            params = dict(model.named_parameters())
            # the graphs' weights are the model's Parameters, as after a fresh trace
            graphs = {}
            for form, text in saved["graphs"].items():
                consts = {n: params.get(n, t) for n, t in saved["constants"][form].items()}
                graphs[form] = ir.parse(text, constants=consts)
            return Traced(r, model, graphs)
        graphs = _trace(r, model)
        tmp = f"{path}.{os.getpid()}.tmp"
        torch.save({"model": model.state_dict(), "graphs": {f: str(g) for f, g in graphs.items()},
                    "constants": {f: dict(g.constants) for f, g in graphs.items()}}, tmp)
        os.replace(tmp, path)
    return Traced(r, model, graphs)


def graph(name: str, form: str):
    return traced(name).graphs[form]
