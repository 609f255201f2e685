"""What a target's `lower` returns: a runnable compiled module."""
from __future__ import annotations

import os
from typing import Any

from spikec.ir import Graph


class CompiledModule:
    """A graph lowered for one target.

    `run(*inputs)` returns the list of outputs. `sources()` maps file names to
    the generated code (Python, TVMScript, Triton, ONNX text, MLIR) so a user
    can read what was built; `dump(dir)` writes them.
    """
    target: str = "?"

    def __init__(self, graph: Graph):
        self.graph = graph

    def run(self, *inputs: Any) -> list:
        raise NotImplementedError

    def sources(self) -> dict[str, str]:
        return {}

    def dump(self, directory: str) -> list[str]:
        os.makedirs(directory, exist_ok=True)
        written = []
        for name, text in self.sources().items():
            path = os.path.join(directory, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mode = "wb" if isinstance(text, bytes) else "w"
            with open(path, mode) as f:
                f.write(text)
            written.append(path)
        return written
