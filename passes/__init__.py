"""spikec.passes: pass manager, pipeline strings, pattern rewriting, generic and model passes.

    g2 = spikec.passes.run(g, "default,fuse-linear-attention")

Write your own pass with `@spikec.passes.register("name")`, or ship it in a
package that declares an entry point in the `spikec.passes` group.
"""
from .errors import PassError, PipelineError
from .manager import PassManager, PassRecord, run, stat
from .pipeline import PassStep, parse_pipeline
from .registry import ENTRY_POINT_GROUP, Option, PassInfo, available, get_pass, pipelines, register, register_pipeline
from .replacement import replacement, trace_function
from .rewrite import Builder, Match, Pat, Rewrite, Var, apply_patterns, dead_code_elimination, match

__all__ = [
    "run", "PassManager", "PassRecord", "stat", "parse_pipeline", "PassStep",
    "register", "register_pipeline", "available", "pipelines", "get_pass", "PassInfo", "Option", "ENTRY_POINT_GROUP",
    "Pat", "Var", "Match", "Rewrite", "Builder", "apply_patterns", "match", "dead_code_elimination",
    "PassError", "PipelineError", "replacement", "trace_function",
]
