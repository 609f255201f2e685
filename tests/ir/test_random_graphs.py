"""Hypothesis: random well-typed graphs print, parse back structurally equal,
verify, and interpret to the same values before and after the round trip."""
import math

import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from spikec import ir
from spikec.ir import InferContext, TensorType, sym

T = sym("T")
SHAPES = [(4,), (T, 4), (2, T, 4), (3, 4), (2, 3, 4)]


def _add(g, ctx, op, args, loc):
    types = ir.infer_types(ir.get_op(op), args, ctx)
    return g.add_node(op, args, types, loc=loc).outputs


KINDS = ["unary", "scalar", "reduce", "softmax", "cumsum", "permute", "unsqueeze", "cat", "cast", "where", "topk"]
UNARY = ["neg", "exp", "tanh", "sigmoid", "relu", "abs", "sin"]


@st.composite
def random_graph(draw):
    g = ir.Graph(draw(st.sampled_from(["main", "forward", "g0"])))
    g.symbols["T"] = (1, draw(st.sampled_from([None, 64, 4096])))
    ctx = InferContext(g.symbols)
    pool = [g.add_input(TensorType(draw(st.sampled_from(SHAPES)), "f32"), f"in{i}")
            for i in range(draw(st.integers(1, 3)))]
    floats = st.floats(-4, 4, allow_nan=False, width=32) | st.sampled_from([float("inf"), -0.5, 1e-6])
    for step in range(draw(st.integers(1, 10))):
        a = draw(st.sampled_from([v for v in pool if v.type.dtype == "f32"] or pool))
        rank = a.type.rank
        kind = draw(st.sampled_from(KINDS))
        loc = draw(st.none() | st.builds(ir.Loc, st.sampled_from(["m.py", "a/b.py"]), st.integers(1, 999)))
        dim = draw(st.integers(-rank, rank - 1)) if rank else 0
        if kind == "unary" or rank == 0:
            op, args = draw(st.sampled_from(UNARY)), {"self": a}
        elif kind == "scalar":
            op = draw(st.sampled_from(["add", "mul", "sub", "clamp_min"]))
            args = {"self": a, ("min" if op == "clamp_min" else "other"): draw(floats)}
        elif kind == "reduce":
            op = draw(st.sampled_from(["sum", "mean", "amax"]))
            args = {"self": a, "dim": [dim], "keepdim": draw(st.booleans())}
        elif kind in ("softmax", "cumsum"):
            op, args = kind, {"self": a, "dim": dim}
        elif kind == "permute":
            op, args = "permute", {"self": a, "dims": draw(st.permutations(list(range(rank))))}
        elif kind == "unsqueeze":
            op, args = "unsqueeze", {"self": a, "dim": draw(st.integers(-rank - 1, rank))}
        elif kind == "cat":
            op, args = "cat", {"tensors": [a, a], "dim": dim}
        elif kind == "cast":
            op, args = "_to_copy", {"self": a, "dtype": draw(st.sampled_from([torch.float64, torch.float32]))}
        elif kind == "where":
            cond = _add(g, ctx, "gt", {"self": a, "other": 0.0}, loc)[0]
            op, args = "where", {"condition": cond, "self": a, "other": draw(floats)}
        else:
            last = a.type.shape[-1]
            if not isinstance(last, int):
                continue
            op, args = "topk", {"self": a, "k": draw(st.integers(1, last)), "largest": draw(st.booleans())}
        pool.extend(_add(g, ctx, op, args, loc))
    outs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    g.set_outputs(outs)
    return g


def _same(a, b):
    return torch.equal(torch.nan_to_num(a, nan=7.0), torch.nan_to_num(b, nan=7.0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph(), st.integers(1, 5))
def test_random_graphs_round_trip_and_run(g, length):
    ir.verify(g)
    text = str(g)
    back = ir.parse(text, constants=g.constants)
    assert ir.structural_diff(g, back, names=True) is None, text
    assert str(back) == text
    ir.verify(back)
    gen = torch.Generator().manual_seed(length)
    inputs = [torch.randn([length if not isinstance(d, int) else d for d in v.type.shape], generator=gen)
              for v in g.inputs]
    want = ir.interpret(g, *inputs)
    got = ir.interpret(back, *inputs)
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    assert all(_same(x, y) for x, y in zip(want, got))
