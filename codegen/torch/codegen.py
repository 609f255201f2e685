"""Graph -> Python source -> function: the torch target's code generator,
reusable by any target whose kernels are called from Python (pass its own
rule table)."""
from __future__ import annotations

import hashlib
import linecache
from dataclasses import dataclass
from typing import Callable

from spikec.ir import Graph, TensorType, torch_dtype

from ..errors import LoweringError
from .emitter import INDENT, FunctionWriter, ModuleWriter


@dataclass
class GeneratedCode:
    source: str             # the whole file
    function: Callable      # fn(module, *inputs) -> tuple of outputs
    constants: dict         # every constant the code reads: graph's and regions'


def collect_constants(graph: Graph) -> dict:
    """The graph's constant table plus those of its regions (which extend it)."""
    table = dict(graph.constants)
    for node in graph.walk():
        for region in node.regions:
            for name, t in region.constants.items():
                if name in table and table[name] is not t:
                    raise LoweringError(f"constant {name!r} of region @{region.name} differs from the one of the "
                                        "same name outside it", where=node.where(),
                                        hint="rename one of them (the torch target keeps one table)")
                table[name] = t
    return table


def _input_check(fw: FunctionWriter, v, name: str) -> str | None:
    if not isinstance(v.type, TensorType):
        return None
    shape = ", ".join(str(d) if isinstance(d, int) else "None" for d in v.type.shape)
    shape = f"({shape}{',' if v.type.rank == 1 else ''})"
    rt = fw.mw.import_module("spikec.codegen.torch.runtime", "rt")
    return f"{rt}.check_input({name}, {v.name!r}, {torch_dtype(v.type.dtype)}, {shape})"


def generate(graph: Graph, rules, target: str = "torch", options: dict | None = None) -> GeneratedCode:
    """Lower `graph` with `rules` (a TorchRuleTable or a copy of it) to Python source and compile it."""
    rules.check(graph)
    mw = ModuleWriter(rules, target, dict(options or {}))
    fw = FunctionWriter(mw, graph, mw.names.fresh(graph.name or "forward"))
    params = [fw.define(v) for v in graph.inputs]
    fw.emit_body()
    sig = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    outs = ", ".join(str(v.type) for v in graph.outputs)
    body = [f'"""graph @{graph.name}({sig}) -> ({outs})"""']
    body += [c for v, p in zip(graph.inputs, params) if (c := _input_check(fw, v, p))]
    if fw.needs_device:
        body.append("device = self.device")
    body += fw.lines
    lines = [f"def {fw.name}({', '.join(['self', *params])}):"] + [INDENT + ln if ln else ln for ln in body]
    source = mw.source(graph, lines)
    namespace: dict = {"__name__": f"spikec_generated_{target}", **mw.injected}
    filename = f"<spikec {target} @{graph.name} {hashlib.sha1(source.encode()).hexdigest()[:10]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)   # readable tracebacks
    exec(compile(source, filename, "exec"), namespace)
    return GeneratedCode(source, namespace[fw.name], collect_constants(graph))
