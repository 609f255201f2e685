"""`torch.compile(model, backend="spikec", options={...})`: the dynamo backend.

Dynamo splits the model at graph breaks and calls the backend once per captured
FX subgraph; each becomes a spikec graph (frontend), is optimised (`pipeline`)
and lowered (`target`). A subgraph spikec cannot compile runs eagerly with one
log line on the `spikec.dynamo` logger; the rest of the model stays compiled.
"""
from __future__ import annotations

import torch

from .compiled import SpikecSubgraph, log_eager
from .options import BackendOptionError, parse_options


def spikec_backend(gm: torch.fx.GraphModule, example_inputs, *, options: dict | None = None,
                   mode: str | None = None):
    """The torch.compile backend. `options`: target ("torch"), pipeline
    ("default,fuse-linear-attention,fuse-attention"), fallback ("eager" | "error"),
    target_options (keywords of the target's lower), max_specializations (8)."""
    if mode is not None:
        raise BackendOptionError(f"torch.compile(mode={mode!r}) is an inductor setting; the spikec backend "
                                 "has no modes", hint="pass options={'target': ..., 'pipeline': ...} instead")
    opts = parse_options(options)
    name = f"subgraph {gm.meta.get('dynamo_compile_id', '?')}"
    sub = SpikecSubgraph(gm, opts, name)
    try:
        sub.add_variant(list(example_inputs), dynamic=True)
    except Exception as e:
        if opts.fallback == "error":
            raise
        log_eager(name, e)
        return gm.forward
    return sub
