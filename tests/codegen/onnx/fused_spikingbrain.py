"""The fused SpikingBrain tiny graph with a symbolic length, shared by the onnx and mlir
tests: traced from its naive loops at T=16 and 17 and unified to a symbolic T
(trace_symbolic); window 8 < 16, so the SWA layers fuse to sliding_window_attention and the
GLA layers to linear_attention. Traced once per process, and cached on disk across xdist
workers and runs the way tests/codegen/zoo_graphs.py caches the zoo recipes (same key:
a hash of every source file that can change the trace)."""
from __future__ import annotations

import functools
import hashlib
import os
import sys

import torch
from filelock import FileLock

import spikec.models as zoo
from spikec import ir
from spikec.passes.fuse_linear_attention import trace_symbolic

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import zoo_graphs  # noqa: E402

PIPELINE = "canonicalize,cse,dce,fuse-linear-attention,fuse-attention"
RECIPE = f"spikingbrain tiny naive sliding_window=8 lengths=(16, 17) {PIPELINE}"


def _model(attn_mode: str):
    return zoo.create("spikingbrain", "tiny", attn_mode=attn_mode, sliding_window=8).eval()


@functools.cache
def spikingbrain_fused():
    """(naive model, chunk-form model with the same weights, fused graph)."""
    torch.manual_seed(0)
    m = _model("naive")
    key = hashlib.sha256(f"{zoo_graphs._sources_hash()} {RECIPE}".encode()).hexdigest()[:16]
    path = os.path.join(zoo_graphs.CACHE_DIR, f"spikingbrain-fused-symbolic-{key}.pt")
    os.makedirs(zoo_graphs.CACHE_DIR, exist_ok=True)
    with FileLock(path + ".lock"):
        if os.path.exists(path):
            saved = torch.load(path, weights_only=True)
            m.load_state_dict(saved["model"])
            params = dict(m.named_parameters())
            g = ir.parse(saved["graph"], constants={n: params.get(n, t) for n, t in saved["constants"].items()})
        else:
            g = trace_symbolic(m, lambda T: (torch.randint(0, 256, (1, T)),), lengths=(16, 17), pipeline=PIPELINE)
            tmp = f"{path}.{os.getpid()}.tmp"
            torch.save({"model": m.state_dict(), "graph": str(g), "constants": dict(g.constants)}, tmp)
            os.replace(tmp, path)
    chunk = _model("chunk")
    chunk.load_state_dict(m.state_dict())
    return m, chunk, g


def ids(T: int) -> torch.Tensor:
    return torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(T))
