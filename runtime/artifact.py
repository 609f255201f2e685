"""The artifact `spikec.compile` returns: named entry graphs (forward, and for a
language model prefill and decode), each lowered for one target, plus the
pipeline that made them and the decode-state layout.

`save(path)` writes the on-disk form (runtime/artifact_io.py); `spikec.load`
reads it back as a Session."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spikec.codegen import CompiledModule
from spikec.ir import Graph, InterpretError, SpikecError

from .state import StateSlot


@dataclass
class Entry:
    graph: Graph
    module: CompiledModule


@dataclass
class Artifact:
    entries: dict[str, Entry]
    target: str
    pipeline: str
    state: list[StateSlot] = field(default_factory=list)
    meta: dict = field(default_factory=dict)      # model name, vocab size, tokenizer, ...
    pass_report: str = ""
    source_graph: Graph | None = None
    extra_files: dict = field(default_factory=dict)   # saved under extra/ (e.g. tokenizer.json)

    @property
    def graph(self) -> Graph:
        return self.entry("forward").graph

    @property
    def module(self) -> CompiledModule:
        return self.entry("forward").module

    def entry(self, name: str) -> Entry:
        if name not in self.entries:
            why = self.meta.get("skipped", {}).get(name)
            raise SpikecError(f"this artifact has no {name!r} entry (it has: {', '.join(self.entries)})",
                              hint=why)
        return self.entries[name]

    def run(self, name: str, *inputs: Any) -> list:
        e = self.entry(name)
        want = e.graph.inputs
        if len(inputs) != len(want):
            sig = ", ".join(f"%{v.name}: {v.type}" for v in want)
            raise InterpretError(f"entry {name!r} takes {len(want)} input(s) ({sig}), got {len(inputs)}")
        return e.module.run(*inputs)

    def forward(self, *inputs: Any):
        """Run the compiled forward; one output comes back bare, several as a tuple."""
        outs = self.run("forward", *inputs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    __call__ = forward

    def sources(self) -> dict[str, str]:
        return {f"{name}/{f}": text for name, e in self.entries.items() for f, text in e.module.sources().items()}

    def dump(self, directory: str) -> list[str]:
        """Write the IR text and the generated sources of every entry under `directory`."""
        import os
        written = []
        for name, e in self.entries.items():
            sub = os.path.join(directory, name)
            os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "graph.ir"), "w") as f:
                f.write(str(e.graph))
            written += [os.path.join(sub, "graph.ir")] + e.module.dump(sub)
        return written

    def save(self, path: str) -> str:
        from .artifact_io import save_artifact
        return save_artifact(self, path, self.extra_files)

    def session(self):
        from .session import Session
        return Session(self)

    def __repr__(self) -> str:
        sig = ", ".join(str(v.type) for v in self.graph.inputs) if "forward" in self.entries else ""
        return (f"<spikec.Artifact target={self.target} entries={list(self.entries)} "
                f"pipeline={self.pipeline!r} ({sig})>")
