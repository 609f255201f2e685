"""torch.compile(model, backend="spikec"): the dynamo backend (spikec/dynamo/).

The oracle is the same model run eagerly. Tests that must prove spikec compiled
something wrap the backend (`_Recorder`) to see what it returned for every
subgraph dynamo captured: a SpikecSubgraph (compiled) or the FX graph's own
forward (eager fallback), and use fallback="error" so no failure hides.
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points

import pytest
import torch
from torch import nn

import spikec
import spikec.models as zoo
from spikec.codegen import RuleTable, Target, UnknownTargetError
from spikec.dynamo import BackendOptionError, SpikecSubgraph, parse_options, spikec_backend
from spikec.ir import UnsupportedOpError
from spikec.passes import PipelineError

RTOL, ATOL = 1e-4, 1e-5          # fp32; same ops in another order (fused kernels, chunked recurrences)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


class _Recorder:
    """A backend that calls spikec's and keeps what it returned per subgraph."""

    def __init__(self, **options):
        self.options = options
        self.made: list = []

    def __call__(self, gm, example_inputs):
        fn = spikec_backend(gm, example_inputs, options=self.options)
        self.made.append(fn)
        return fn

    def compiled(self) -> list[SpikecSubgraph]:
        return [f for f in self.made if isinstance(f, SpikecSubgraph)]


def _chain(exc: BaseException):
    """dynamo wraps a backend's error (BackendCompilerFailed); walk to the cause."""
    while exc is not None:
        yield exc
        exc = getattr(exc, "inner_exception", None) or exc.__cause__


def _fused_ops(sub: SpikecSubgraph) -> set[str]:
    return {n.op for v in sub.variants for n in v.module.graph.nodes}


# -- discovery -------------------------------------------------------------------------------

def test_backend_is_discoverable_by_name():
    assert "spikec" in torch._dynamo.list_backends()
    ep = entry_points(group="torch_dynamo_backends")["spikec"]
    assert ep.load() is spikec_backend
    assert torch._dynamo.lookup_backend("spikec") is spikec_backend


# -- the zoo ---------------------------------------------------------------------------------

# The fused op each model's pipeline must produce: proof the passes ran on dynamo's graph.
ZOO = {"spikingbrain": "linear_attention", "spikingbrain_moe": "linear_attention",
       "spikegpt": "linear_attention", "transformer": "attention"}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_equals_eager_torch_target(name):
    torch.manual_seed(0)
    model = zoo.create(name, "tiny").eval()
    ids = torch.randint(0, 256, (1, 3 if name == "spikegpt" else 4))   # spikegpt's time loop unrolls per token
    rec = _Recorder(fallback="error")
    fn = torch.compile(model, backend=rec)
    with torch.no_grad():
        want = model(ids)
        got = fn(ids)
        again = fn(ids)                         # the compiled path, no new compilation
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(again, want, rtol=RTOL, atol=ATOL)
    assert rec.made and rec.compiled() == rec.made      # every subgraph dynamo captured ran through spikec
    assert any(ZOO[name] in _fused_ops(s) for s in rec.compiled())


def test_spikingbrain_on_the_cpu_target_equals_eager():
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny").eval()
    ids = torch.randint(0, 256, (1, 4))
    with torch.no_grad():
        want = model(ids)
        got = torch.compile(model, backend="spikec", options={"target": "cpu", "fallback": "error"})(ids)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)


# -- graph breaks and fallback ---------------------------------------------------------------

class _Breaky(nn.Module):
    """A Python branch on a tensor's value (.item()) and a print: dynamo breaks the graph."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        if h.sum().item() > 0:
            h = h * 2.0
        else:
            h = h.softmax(-1)
        print("spikec-test: between the graphs")
        return self.out(h)


def test_graph_breaks_compile_each_subgraph(capsys):
    torch.manual_seed(0)
    model = _Breaky().eval()
    rec = _Recorder(fallback="error")
    fn = torch.compile(model, backend=rec)
    with torch.no_grad():
        for sign in (1.0, -1.0):                   # both sides of the branch
            x = sign * torch.ones(3, 8) + 0.1 * torch.randn(3, 8)
            torch.testing.assert_close(fn(x), model(x), rtol=RTOL, atol=ATOL)
    assert "between the graphs" in capsys.readouterr().out
    assert len(rec.compiled()) >= 2 and rec.compiled() == rec.made


def _wobble(x):
    """An aten op the spikec frontend does not import (checked below)."""
    return torch.special.bessel_j0(x)


class _Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x):
        h = torch.relu(self.a(x))
        torch._dynamo.graph_break()
        return self.b(_wobble(h))


def _eager_records(caplog):
    return [r for r in caplog.records if r.name == "spikec.dynamo" and "runs eagerly" in r.getMessage()]


class _Wobble(nn.Module):
    def forward(self, x):
        return _wobble(x)


def test_the_op_the_fallback_tests_use_is_unsupported():
    # if spikec learns bessel_j0, pick another op it lacks for the tests below
    with pytest.raises(UnsupportedOpError, match="bessel_j0"):
        spikec.frontend.from_torch(_Wobble(), (torch.randn(2),))


def test_unsupported_op_subgraph_runs_eagerly_with_one_log_line(caplog):
    torch.manual_seed(0)
    model = _Unsupported().eval()
    rec = _Recorder()
    fn = torch.compile(model, backend=rec)
    caplog.set_level(logging.INFO, logger="spikec.dynamo")
    x = torch.randn(2, 8)
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(fn(x), model(x), rtol=RTOL, atol=ATOL)
    assert len(rec.made) == 2 and len(rec.compiled()) == 1          # the first half still compiled
    (line,) = _eager_records(caplog)
    assert line.levelno == logging.INFO and "bessel_j0" in line.getMessage()


def test_unsupported_op_raises_with_fallback_error():
    fn = torch.compile(_Unsupported().eval(), backend="spikec", options={"fallback": "error"})
    with pytest.raises(Exception) as info, torch.no_grad():
        fn(torch.randn(2, 8))
    assert any(isinstance(e, UnsupportedOpError) and "bessel_j0" in str(e) for e in _chain(info.value))


class _NothingLowers(Target):
    """A target with an empty rule table: every graph is a LoweringError."""
    name = "nothing"
    rules = RuleTable("nothing")

    def lower(self, graph, *, level: int = 0):
        self.rules.check(graph)


def test_lowering_error_falls_back_to_eager(caplog):
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU()).eval()
    caplog.set_level(logging.INFO, logger="spikec.dynamo")
    x = torch.randn(3, 4)
    with torch.no_grad():
        got = torch.compile(model, backend="spikec", options={"target": _NothingLowers()})(x)
    torch.testing.assert_close(got, model(x))
    (line,) = _eager_records(caplog)
    assert "LoweringError" in line.getMessage() and "nothing" in line.getMessage()


# -- options ---------------------------------------------------------------------------------

def test_unknown_target_is_an_error_naming_the_valid_ones():
    fn = torch.compile(nn.Linear(2, 2), backend="spikec", options={"target": "tpu"})
    with pytest.raises(Exception) as info:
        fn(torch.randn(1, 2))
    (err,) = [e for e in _chain(info.value) if isinstance(e, UnknownTargetError)]
    assert "'tpu'" in str(err) and "torch" in str(err) and "cpu" in str(err)


def test_options_are_checked():
    with pytest.raises(BackendOptionError, match="valid options: target, pipeline"):
        parse_options({"targte": "torch"})
    with pytest.raises(PipelineError):
        parse_options({"pipeline": "default,no-such-pass"})
    with pytest.raises(BackendOptionError, match="fallback"):
        parse_options({"fallback": "maybe"})
    with pytest.raises(BackendOptionError, match="(?s)no option .bogus.*its options: level"):
        parse_options({"target": _NothingLowers(), "target_options": {"bogus": 1}})
    with pytest.raises(BackendOptionError, match="inductor"):
        spikec_backend(None, [], mode="max-autotune")
    assert parse_options(None).target == "torch"


# -- shapes, weights, gradients --------------------------------------------------------------

class _CausalAttn(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        T = x.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        s = (q @ k.transpose(-1, -2)) / 4.0
        return s.masked_fill(~mask, float("-inf")).softmax(-1) @ v


def test_new_lengths_reuse_one_symbolic_compilation():
    torch.manual_seed(0)
    model = _CausalAttn().eval()
    rec = _Recorder(fallback="error")
    fn = torch.compile(model, backend=rec)
    with torch.no_grad():
        for T in (5, 7, 9, 11):
            x = torch.randn(2, T, 16)
            torch.testing.assert_close(fn(x), model(x), rtol=RTOL, atol=ATOL)
    # dynamo: one static graph, then one with a symbolic length; spikec keeps it symbolic
    assert len(rec.made) == 2
    dyn = rec.compiled()[1]
    assert len(dyn.variants) == 1
    symbolic = {d for v in dyn.variants[0].module.graph.inputs for d in v.type.shape if not isinstance(d, int)}
    assert len(symbolic) == 1                                    # the length; batch and width stay static
    assert "attention" in _fused_ops(dyn)


def test_weights_changed_after_compiling_are_used():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.SiLU(), nn.Linear(6, 3)).eval()
    fn = torch.compile(model, backend="spikec", options={"fallback": "error"})
    x = torch.randn(4, 6)
    with torch.no_grad():
        fn(x)
        model[0].weight.mul_(-2.0)                                  # in place
        torch.testing.assert_close(fn(x), model(x), rtol=RTOL, atol=ATOL)
        model[2].weight = nn.Parameter(torch.randn(3, 6))          # a new Parameter object
        torch.testing.assert_close(fn(x), model(x), rtol=RTOL, atol=ATOL)


def test_gradients_through_the_torch_target_match_eager():
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny", num_hidden_layers=2, attn_layers=[1])   # one GLA + one SWA layer
    ids = torch.randint(0, 256, (1, 4))
    rec = _Recorder(fallback="error")
    torch.compile(model, backend=rec)(ids).square().mean().backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model(ids).square().mean().backward()
    assert rec.compiled() == rec.made and any("linear_attention" in _fused_ops(s) for s in rec.compiled())
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=RTOL, atol=ATOL, msg=n)


def test_inference_only_target_runs_training_eagerly(caplog):
    model = nn.Linear(4, 2)
    caplog.set_level(logging.INFO, logger="spikec.dynamo")
    x = torch.randn(3, 4)
    out = torch.compile(model, backend="spikec", options={"target": "cpu"})(x)
    out.sum().backward()
    assert model.weight.grad is not None
    (line,) = _eager_records(caplog)
    assert "needs gradients" in line.getMessage()
