"""spikec as a torch.compile backend: `torch.compile(model, backend="spikec")`.

Registered in the `torch_dynamo_backends` entry-point group; see docs/torch-compile.md.
"""
from .backend import spikec_backend
from .compiled import SpikecSubgraph
from .options import DEFAULT_PIPELINE, BackendOptionError, BackendOptions, parse_options

__all__ = ["spikec_backend", "SpikecSubgraph", "BackendOptions", "BackendOptionError", "parse_options",
           "DEFAULT_PIPELINE"]
