"""`spikec.compile` and `spikec.load`: model (or graph) -> passes -> target -> Artifact."""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

from spikec import passes
from spikec.codegen import get_target
from spikec.frontend import from_torch
from spikec.ir import Graph, SpikecError
from spikec.lm_capture import LMGraphs, capture_lm, drop_state, is_causal_lm
from spikec.runtime import Artifact, Entry, Session
from spikec.runtime import load as _load

LM_ENTRIES = ("forward", "prefill", "decode")


def _capture(model, example_inputs, dynamic, max_len, progress) -> LMGraphs:
    if isinstance(model, Graph):
        return LMGraphs({"forward": model})
    if isinstance(model, LMGraphs):           # captured earlier (capture_lm): lower again for another target
        return model
    if not isinstance(model, torch.nn.Module):
        raise SpikecError(f"spikec.compile takes an nn.Module or a spikec Graph, got {type(model).__name__}")
    if example_inputs is None:
        if not is_causal_lm(model):
            raise SpikecError(f"spikec.compile needs example_inputs to trace {type(model).__name__}",
                              hint="pass e.g. (torch.zeros(1, 16, dtype=torch.long),); zoo language models "
                                   "(with prefill/step/init_cache) are traced without them")
        vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 0)
        if not vocab:
            raise SpikecError(f"{type(model).__name__} has no config.vocab_size to make example prompts from")
        progress("capture forward / prefill / decode (torch.export)")
        return capture_lm(model, vocab, max_len=max_len)
    progress("capture forward (torch.export)")
    return LMGraphs({"forward": from_torch(model, example_inputs, dynamic=dynamic)})


def compile(model_or_graph: torch.nn.Module | Graph | LMGraphs, example_inputs: Any = None, *, target: str = "torch",
            pipeline: str = "default", dynamic: dict | None = None, dump_dir: str | None = None,
            max_len: int = 65536, progress: Callable[[str], None] | None = None, **options) -> Artifact:
    """Trace (if given a module), optimise with `pipeline`, lower for `target`.

    A zoo-style language model (one with prefill/step/init_cache) given without
    example_inputs is captured as three entries — forward, prefill, decode — with a
    symbolic batch and length, ready for `Artifact.session().generate(...)`. Any other
    module is traced once on `example_inputs` (`dynamic={"T": (lo, hi)}` keeps the
    sequence axis symbolic). Extra keyword options go to the target's `lower`.
    """
    say = progress or (lambda msg: None)
    timings: dict[str, float] = {}
    tgt = get_target(target)
    t0 = time.perf_counter()
    lm = _capture(model_or_graph, example_inputs, dynamic, max_len, say)
    timings["capture"] = time.perf_counter() - t0
    entries, reports, optimised = {}, [], {}
    # entries cut from another (forward <- prefill) are cut again after the passes
    order = sorted(lm.entries, key=lambda n: n in lm.derived)
    for name in order:
        g = lm.entries[name]
        t0 = time.perf_counter()
        if name in lm.derived and lm.derived[name] in optimised:
            g = drop_state(optimised[lm.derived[name]])
        elif pipeline:
            say(f"{name}: passes {pipeline}")
            pm = passes.PassManager(pipeline, dump_dir=f"{dump_dir}/{name}/passes" if dump_dir else None)
            g = pm.run(g)
            reports.append(f"[{name}]\n{pm.report()}")
        optimised[name] = g
        timings[f"passes:{name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        say(f"{name}: lower for {tgt.name}")
        entries[name] = Entry(g, tgt.lower(g, **options))
        timings[f"lower:{name}"] = time.perf_counter() - t0
    meta = dict(lm.meta)
    meta["compile_seconds"] = {k: round(v, 4) for k, v in timings.items()}
    entries = {n: entries[n] for n in lm.entries}        # the capture's order
    art = Artifact(entries, tgt.name, pipeline, list(lm.state), meta, "\n".join(reports),
                   lm.entries.get("forward") if isinstance(model_or_graph, Graph) else None)
    if dump_dir:
        art.dump(dump_dir)
    return art


def load(path: str, target: str | None = None) -> Session:
    """Load a saved artifact as a Session; versions and file hashes are checked."""
    return _load(path, target)
