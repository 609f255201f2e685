"""Interpreter-mode setup: a process without a GPU that imported triton before
spikec (as torch._dynamo does) must still run the kernels on CPU tensors.
Runs in a fresh interpreter, since this one is already set up."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

SCRIPT = r"""
import os
os.environ.pop("TRITON_INTERPRET", None)
import triton.language as tl                       # decorated for compilation: TRITON_INTERPRET unset
from triton.runtime.jit import JITFunction
assert isinstance(tl.zeros, JITFunction)
import torch
import spikec.codegen.triton as T
assert os.environ["TRITON_INTERPRET"] == "1" and T.mode.interpreting() and T.mode.device() == "cpu"
assert not isinstance(tl.zeros, JITFunction)      # the library now runs in the interpreter too
from spikec.codegen.triton.kernels.spike.api import spike_encode
from spikec.ir.ops_spike import spike_encode_reference
x = torch.arange(-8, 8, dtype=torch.float32).reshape(2, 8) / 4
assert torch.equal(spike_encode(x)[0], spike_encode_reference(x)[0])
print("ok")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU setup; this machine has a GPU")
def test_kernels_run_in_the_interpreter_even_if_triton_was_imported_first():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
