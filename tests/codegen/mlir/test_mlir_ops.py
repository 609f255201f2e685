"""The mlir target op by op: every case of the onnx op table (tests/codegen/onnx/
test_onnx_ops.py: advanced indexing, scatters, layout, reductions, integer and float
arithmetic, unary math, creation, nn, sdpa) traced as ONE program, compiled once (JIT is
slow) and compared with spikec.ir.interpret, plus an empty accumulating index_put (an MoE
expert no token chose).
Tolerance: float |got - want| <= 1e-5 + 1e-5·|want|; integer and bool outputs equal."""
from __future__ import annotations

import os
import sys

import torch
from torch import nn

from spikec import ir
from spikec.codegen import get_target
from spikec.frontend import from_torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "onnx"))
from test_onnx_ops import CASES, close  # noqa: E402


class AllCases(nn.Module):
    def __init__(self):
        super().__init__()
        self.names = sorted(CASES)
        self.arity = [len(CASES[n][1]) for n in self.names]

    def forward(self, *xs):
        outs, i = [], 0
        for name, n in zip(self.names, self.arity):
            out = CASES[name][0](*xs[i:i + n])
            outs.extend(out if isinstance(out, tuple) else [out])
            i += n
        return tuple(outs)


def test_op_table_in_one_program():
    inputs = tuple(x for name in sorted(CASES) for x in CASES[name][1])
    g = from_torch(AllCases().eval(), inputs)
    close(get_target("mlir").lower(g).run(*inputs), ir.interpret(g, *inputs))


def test_empty_accumulating_index_put():
    def fn(x, mask):
        rows = mask.nonzero()[:, 0]                       # may be empty
        y = torch.zeros_like(x)
        y.index_put_((rows,), x[rows] * 2, accumulate=True)
        return y
    g = from_torch(Fn2(fn).eval(), (torch.randn(5, 3), torch.ones(5, dtype=torch.bool)))
    mod = get_target("mlir").lower(g)
    for mask in (torch.zeros(5, dtype=torch.bool), torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool)):
        x = torch.randn(5, 3)
        close(mod.run(x, mask), ir.interpret(g, x, mask))


class Fn2(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, mask):
        return self.fn(x, mask)
