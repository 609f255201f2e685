"""The pass manager: runs a pipeline with verification, printing, dumps,
timing and statistics, and writes a reproducer when a pass fails."""
from __future__ import annotations

import contextvars
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, TextIO

from spikec.ir import Graph, VerifyError, verify

from .errors import PassError
from .pipeline import PassStep, parse_pipeline
from .registry import get_pass

_current: contextvars.ContextVar["PassRecord | None"] = contextvars.ContextVar("spikec_pass", default=None)


def stat(name: str, n: int = 1) -> None:
    """Count an event (nodes matched, rewritten, ...) for the pass now running."""
    rec = _current.get()
    if rec is not None:
        rec.stats[name] = rec.stats.get(name, 0) + n


@dataclass
class PassRecord:
    step: str
    seconds: float = 0.0
    nodes_before: int = 0
    nodes_after: int = 0
    changed: bool = False
    stats: dict[str, int] = field(default_factory=dict)


def _node_count(g: Graph) -> int:
    return sum(1 for _ in g.walk())


def _default_verify() -> bool:
    return os.environ.get("SPIKEC_VERIFY_EACH", "") not in ("", "0", "false")


class PassManager:
    """Runs `pipeline` on graphs.

    verify_each   verify before the first pass and after every pass (default:
                  the SPIKEC_VERIFY_EACH environment variable; on in tests)
    print_after   pass names (or "all") whose result is printed to `out`
    print_after_change  print only when a pass changed the graph
    dump_dir      write every stage as NN-pass.ir into this directory
    repro_dir     where a failing pass leaves its reproducer (default: cwd)
    """

    def __init__(self, pipeline: str, *, verify_each: bool | None = None, verify_input: bool = True, print_after=(),
                 print_after_change: bool = False, dump_dir: str | None = None, repro_dir: str | None = None,
                 out: TextIO | None = None, on_stage: Callable[[PassStep, Graph], None] | None = None):
        self.pipeline = pipeline
        self.steps = parse_pipeline(pipeline)
        self.verify_each = _default_verify() if verify_each is None else verify_each
        self.verify_input = verify_input
        self.print_after = {print_after} if isinstance(print_after, str) else set(print_after or ())
        self.print_after_change = print_after_change
        self.dump_dir = dump_dir
        self.repro_dir = repro_dir
        self.out = out or sys.stdout
        self.on_stage = on_stage
        self.records: list[PassRecord] = []

    def run(self, graph: Graph) -> Graph:
        g = graph.copy()                  # the caller's graph stays as it was
        self.records = []
        if self.verify_each and self.verify_input:
            self._verify(g, "input")
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
            self._dump(g, 0, "input")
        for i, step in enumerate(self.steps, 1):
            g = self._run_step(g, step, i)
        return g

    def _run_step(self, g: Graph, step: PassStep, index: int) -> Graph:
        info = get_pass(step.name)
        rec = PassRecord(str(step), nodes_before=_node_count(g))
        track_change = self.print_after_change or self.dump_dir is not None
        before_text = str(g) if track_change else None
        before_for_repro = g.copy()
        token = _current.set(rec)
        t0 = time.perf_counter()
        try:
            try:
                result = info.fn(g, **step.options)
                g = result if isinstance(result, Graph) else g
            finally:
                rec.seconds = time.perf_counter() - t0     # the pass alone, not the verifier
            if self.verify_each:
                self._verify(g, f"after {step}")
        except Exception as e:
            path = self._write_reproducer(before_for_repro, step, e)
            raise PassError(f"pass {step} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                            where=f"reproducer written to {path}",
                            hint=f"rerun with: spikec opt {path}") from e
        finally:
            _current.reset(token)
        rec.nodes_after = _node_count(g)
        rec.changed = (str(g) != before_text) if track_change else (rec.nodes_before != rec.nodes_after or bool(rec.stats))
        self.records.append(rec)
        if self._should_print(step, rec):
            self.out.write(f"// ----- IR after {step} -----\n{g}")
        if self.dump_dir:
            self._dump(g, index, step.name)
        if self.on_stage:
            self.on_stage(step, g)
        return g

    def _should_print(self, step: PassStep, rec: PassRecord) -> bool:
        named = "all" in self.print_after or step.name in self.print_after
        if self.print_after_change:
            return rec.changed and (named or not self.print_after)
        return named

    def _verify(self, g: Graph, when: str) -> None:
        try:
            verify(g)
        except VerifyError as e:
            raise VerifyError(f"{when}: {e.message}", where=e.where, hint=e.hint) from e

    def _dump(self, g: Graph, index: int, name: str) -> None:
        with open(os.path.join(self.dump_dir, f"{index:02d}-{name}.ir"), "w") as f:
            f.write(f"// stage {index}: {name}\n{g}")

    def _write_reproducer(self, g: Graph, step: PassStep, exc: BaseException) -> str:
        directory = self.repro_dir or os.getcwd()
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"spikec-repro-{step.name}-{int(time.time() * 1000)}.ir")
        tb = "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", "\n// ")
        with open(path, "w") as f:
            f.write(f"// PIPELINE: {step}\n// spikec reproducer: pass {step} failed on this graph with\n// {tb}\n{g}")
        return path

    def report(self) -> str:
        """Per-pass wall time, node counts and statistics."""
        lines = [f"{'pass':<40} {'ms':>9} {'nodes':>13}  stats"]
        for r in self.records:
            stats = ", ".join(f"{k}={v}" for k, v in sorted(r.stats.items()))
            lines.append(f"{r.step:<40} {r.seconds * 1e3:9.2f} {r.nodes_before:>6}->{r.nodes_after:<6}  {stats}")
        total = sum(r.seconds for r in self.records)
        lines.append(f"{'total':<40} {total * 1e3:9.2f}")
        return "\n".join(lines)


def run(graph: Graph, pipeline: str, **kw) -> Graph:
    """Run a pipeline string on a copy of `graph` and return the result."""
    return PassManager(pipeline, **kw).run(graph)
