"""The bad-input corpus: every case is an input spikec must refuse with a SpikecError
that names the problem and where it is, through the API and/or the command line
(exit code 2, one `error:` line on stderr, no traceback). See corpus_case.Case for
what a case holds; the cases themselves are in corpus_*.py, one module per area.

Static inputs live in cases/ (IR text, factory files, config.json variants); binary
inputs (ONNX, safetensors, checkpoints, artifacts) are made at test time by bad_makers.
"""
import corpus_artifacts  # noqa: F401  (each module registers its cases on import)
import corpus_cli  # noqa: F401
import corpus_frontend  # noqa: F401
import corpus_models  # noqa: F401
import corpus_runtime  # noqa: F401
import corpus_training  # noqa: F401
from corpus_case import CASES, fill  # noqa: F401

_ids = [c.id for c in CASES]
assert len(_ids) == len(set(_ids)), "case ids must be unique"
