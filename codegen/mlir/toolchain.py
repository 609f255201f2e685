"""torch-mlir plumbing: a private temp dir around its calls (a failing pipeline writes
UnnammedModule.mlir there), a parser context with the dialects registered, and its
compiler errors turned into spikec LoweringErrors."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from spikec.codegen.errors import LoweringError


@contextlib.contextmanager
def private_tmpdir():
    """TMPDIR (and tempfile's cached choice) point at a fresh directory, removed afterwards."""
    path = tempfile.mkdtemp(prefix="spikec-mlir-")
    old_env, old_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = path, path
    try:
        yield path
    finally:
        tempfile.tempdir = old_tempdir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        shutil.rmtree(path, ignore_errors=True)


def context():
    """An MLIR context in which torch-mlir's dialects (torch, and the upstream ones) parse."""
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_d
    ctx = ir.Context()
    torch_d.register_dialect(ctx)
    return ctx


def parse(text: str):
    """Parse MLIR text with torch-mlir's own parser; returns the Module."""
    from torch_mlir import ir
    from torch_mlir.passmanager import PassManager
    ctx = context()
    with ctx:
        if "stablehlo." in text or "chlo." in text:
            # the wheel registers stablehlo/chlo only as dependencies of its torch-to-stablehlo pass:
            # running that pass on an empty module loads them into this context
            PassManager.parse("builtin.module(func.func(convert-torch-to-stablehlo))").run(
                ir.Module.create(ir.Location.unknown()).operation)
        return ir.Module.parse(text)


BACKEND_PIPELINES = {
    "torch": "builtin.module(func.func(torch-match-quantized-custom-ops),"
             "torchdynamo-export-to-torch-backend-pipeline{ extra-library=})",
    "linalg-on-tensors": "builtin.module(torch-backend-to-linalg-on-tensors-backend-pipeline{allow-non-finites=true})",
    "tosa": "builtin.module(torch-backend-to-tosa-backend-pipeline)",
    "stablehlo": "builtin.module(torch-backend-to-stablehlo-backend-pipeline{allow-non-finites=true})",
}


def run_pipeline(module, pipeline: str, stage: str) -> None:
    """Run a pass pipeline in place; on failure raise a LoweringError carrying MLIR's diagnostics."""
    from torch_mlir.passmanager import PassManager
    diagnostics: list[str] = []

    def collect(d):
        diagnostics.append(f"{d.location}: {d.message}".replace("\n", " ")[:600])
        return True                                  # handled: keep it off stderr

    ctx = module.context
    handler = ctx.attach_diagnostic_handler(collect)
    try:
        with ctx:
            PassManager.parse(pipeline).run(module.operation)
    except Exception as e:
        errors = [d for d in diagnostics if "error" in d.lower()] or diagnostics or [str(e)]
        raise LoweringError(f"mlir: {stage} failed:\n    " + "\n    ".join(errors[:6]),
                            hint="the op named in the diagnostics has no lowering on this path") from None
    finally:
        handler.detach()
