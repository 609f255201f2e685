"""spikec: a compiler for brain-inspired language models.

    import spikec
    g = spikec.frontend.from_torch(model, (ids,), dynamic={"T": (2, 4096)})
    print(g)                       # the IR text
    spikec.ir.interpret(g, ids)    # the reference interpreter
"""
from importlib.metadata import PackageNotFoundError, version as _version

from spikec import frontend, ir
from spikec.api import compile, load
from spikec.ir import SpikecError

try:
    __version__ = _version("spikec")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = ["compile", "load", "ir", "frontend", "SpikecError", "__version__"]
