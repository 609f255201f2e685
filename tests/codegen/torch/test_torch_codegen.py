"""The torch target's code generator and module: readable source, symbols, regions,
Parameters vs buffers, the rule-table API a derived target uses, errors.
Numerical equality is against spikec.ir.interpret (or eager PyTorch) exactly:
the generated code calls the same aten kernels, so max |diff| must be 0 unless stated."""
import functools
import os
import sys

import pytest
import sympy
import torch
from torch import nn

import spikec
from spikec import ir
from spikec.codegen import LoweringError, get_target
from spikec.codegen.torch import TORCH_RULES, RULE_MODULES, TorchTarget, generate, load_rules
from spikec.codegen.torch.pysource import sym_expr
from spikec.codegen.torch.runtime import InputMismatchError
from spikec.frontend import from_torch
from spikec.ir import Loc, TensorType, sym

from modules import DYNAMIC_OK, MODULES, example_input, make

T = sym("T")


def lower(graph, **kw):
    return get_target("torch").lower(graph, **kw)


def same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return all(torch.equal(x, y) for x, y in zip(a, b))


# -- every test module, eager vs compiled --------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODULES))
def test_test_modules_equal_interpreter(name):
    m = make(name)
    x = example_input()
    g = from_torch(m, (x,), dynamic={"T": (2, 64)} if name in DYNAMIC_OK else None)
    mod = lower(g)
    for T_ in ((8, 11) if name in DYNAMIC_OK else (8,)):
        x = example_input(T=T_, seed=T_)
        assert same(mod(x), ir.interpret(g, x))


def test_gradients_flow_through_scan_regions():
    m = make("gla_scan")
    x = example_input(T=6)
    mod = lower(from_torch(m, (x,), dynamic={"T": (2, 64)}))
    mod(x).square().sum().backward()
    m(x).square().sum().backward()
    eager = dict(m.named_parameters())
    for n, p in mod.named_parameters():
        assert torch.allclose(p.grad, eager[n].grad, rtol=1e-5, atol=1e-7), n


# -- the source ---------------------------------------------------------------------------
@functools.cache
def _scan_graph():
    # traced once for the tests below (they only read it)
    m = make("gla_scan")
    return from_torch(m, (example_input(),), dynamic={"T": (2, 64)})


def test_source_is_readable_python():
    mod = lower(_scan_graph())
    (name, src), = mod.sources().items()
    assert name == "model.py"
    compile(src, name, "exec")
    lines = src.splitlines()
    assert "def forward(self, x):" in lines
    assert any(ln.strip().startswith("def scan_combine_") for ln in lines)      # the region, nested
    assert "q_weight = self.const('q.weight')" in src                             # locals named after IR values
    body = [ln for ln in lines if " = aten." in ln]
    assert body and all("# tests/modules.py:" in ln for ln in body)             # one source line per node


def test_symbols_are_bound_from_input_shapes_and_evaluated():
    g = ir.Graph("main")
    g.symbols["T"] = (1, 100)
    x = g.add_input(TensorType((2, T, 4), "f32"), "x")
    y = g.add_node("view", {"self": x, "size": [2, 4 * T]}, [TensorType((2, 4 * T), "f32")]).output
    n = sympy.floor((T + 15) / 16)
    z = g.add_node("constant_pad_nd", {"self": y, "pad": [0, 16 * n + 16 - 4 * T]},
                   [TensorType((2, 16 * n + 16), "f32")]).output
    g.set_outputs([z])
    mod = lower(g)
    assert "T = x.shape[1]" in mod.sources()["model.py"]
    for length in (1, 5, 16, 33):
        x = torch.randn(2, length, 4)
        assert same(mod(x), ir.interpret(g, x))


@pytest.mark.parametrize("expr", ["FloorDiv(T + 15, 16)", "Mod(3*T, 7)", "Max(T, 5) - Min(T, 2)", "CeilDiv(T, 4)",
                                  "16*FloorDiv(T + 15, 16) - T + 16", "T**2"])
def test_symbolic_sizes_as_python(expr):
    from spikec.ir.parser import _SYMPY_FUNCS
    e = sympy.sympify(expr, locals={**_SYMPY_FUNCS, "T": T})
    code = sym_expr(e, lambda s: s.name)
    for t in (1, 7, 16, 100):
        assert eval(code, {"T": t, "max": max, "min": min, "math": __import__("math")}) == int(e.subs(T, t)), code


def test_input_signature_is_checked():
    mod = lower(_scan_graph())
    with pytest.raises(InputMismatchError, match="x"):
        mod(torch.randn(3, 5, 16))                      # batch is static 2
    with pytest.raises(InputMismatchError, match="float32"):
        mod(torch.randn(2, 5, 16, dtype=torch.float64))


def test_unknown_option_is_an_error():
    with pytest.raises(spikec.ir.SpikecError, match="chunk"):
        lower(_scan_graph(), chunk=3)


# -- parameters and buffers -----------------------------------------------------------------
def test_parameters_are_the_model_weights_and_buffers_stay_buffers():
    m = make("block_swa")                                # weights, and RoPE's inv_freq buffer
    x = example_input()
    mod = lower(from_torch(m, (x,)))
    assert {n for n, _ in mod.named_parameters()} == {n for n, _ in m.named_parameters()}
    assert "mixer.rope.inv_freq" in dict(mod.named_buffers())
    assert set(mod.state_dict()) == set(m.state_dict())
    mod.load_state_dict(m.state_dict())


def test_parameter_policy_options():
    g = ir.parse("""graph @main(%x: f32[2, 3]) -> (f32[2, 4]) {
      %w: f32[4, 3] = constant(name="l.weight")
      %b: f32[4] = constant(name="folded.bias")
      %i: i64[4] = constant(name="idx")
      %0: f32[2, 4] = linear(%x, %w, %b)
      return %0
    }""", constants={"l.weight": torch.randn(4, 3), "folded.bias": torch.randn(4), "idx": torch.arange(4)})
    names = lambda mod: {n for n, _ in mod.named_parameters()}  # noqa: E731
    assert names(lower(g)) == {"l.weight"}              # unmarked table: weights yes, folded values no
    assert names(lower(g, parameters="all")) == {"l.weight", "folded.bias"}
    assert names(lower(g, parameters="none")) == set()
    assert names(lower(g, parameters=["folded.bias"])) == {"folded.bias"}
    with pytest.raises(LoweringError, match="nope"):
        lower(g, parameters=["nope"])
    mod = lower(g)
    assert mod.const("idx").dtype == torch.int64 and "idx" in dict(mod.named_buffers())


def test_parameters_share_storage_and_train_in_place():
    g = ir.Graph("main")
    x = g.add_input(TensorType((2, 3), "f32"), "x")
    w = nn.Parameter(torch.randn(4, 3))
    wv = g.add_constant("w", w)
    g.set_outputs([g.add_node("linear", {"input": x, "weight": wv}, [TensorType((2, 4), "f32")]).output])
    mod = lower(g)
    (p,) = mod.parameters()
    assert p.data_ptr() == w.data_ptr()
    out = mod(torch.randn(2, 3))
    assert out.requires_grad and out.grad_fn is not None


def test_tied_and_clashing_constant_names():
    g = ir.Graph("main")
    x = g.add_input(TensorType((3, 3), "f32"), "x")
    shared = torch.randn(3, 3)
    consts = {"emb.weight": shared, "head.weight": shared, "forward": torch.randn(3, 3), "a": torch.randn(3, 3),
              "a.b": torch.randn(3, 3)}
    acc = x
    for name, t in consts.items():
        c = g.add_constant(name, t)
        acc = g.add_node("add", {"self": acc, "other": c}, [x.type]).output
    g.set_outputs([acc])
    mod = lower(g, parameters="all")
    assert len(list(mod.parameters())) == 4              # tied weights are one Parameter
    x0 = torch.randn(3, 3)
    assert same(mod(x0), ir.interpret(g, x0))
    assert mod.const("emb.weight") is mod.const("head.weight")


# -- rule tables ---------------------------------------------------------------------------
def test_every_registered_op_has_a_rule():
    load_rules()
    missing = [name for name in ir.ops() if name not in TORCH_RULES]
    assert not missing, f"the torch target has no rule for {missing}; add them to a module in RULE_MODULES"


def test_rule_modules_are_listed_once():
    assert len(RULE_MODULES) == len(set(RULE_MODULES))
    assert all(os.path.exists(os.path.join(os.path.dirname(sys.modules["spikec.codegen.torch"].__file__),
                                           f"{m}.py")) for m in RULE_MODULES)


def _la_graph():
    g = ir.Graph("main")
    g.symbols["T"] = (1, 64)
    q = g.add_input(TensorType((1, 2, T, 4), "f32"), "q")
    k = g.add_input(TensorType((1, 2, T, 4), "f32"), "k")
    v = g.add_input(TensorType((1, 2, T, 4), "f32"), "v")
    o = g.add_node("linear_attention", {"q": q, "k": k, "v": v, "scale": 0.5},
                   [TensorType((1, 2, T, 4), "f32")], loc=Loc("la.py", 3)).output
    g.set_outputs([o])
    return g


def record_calls(q, k, v, gate=None, initial_state=None, **kw):
    record_calls.seen.append(kw)
    return torch.zeros_like(q)


record_calls.seen = []


def test_derived_target_overrides_a_rule_without_touching_torch():
    rules = load_rules().copy("derived")

    @rules.override("linear_attention")
    def _la(node, e):
        return e.call(e.use(record_calls), e.arg("q"), e.arg("k"), e.arg("v"), scale=e.arg("scale"))

    class Derived(TorchTarget):
        name = "derived"

    g = _la_graph()
    mod = Derived(rules).lower(g)
    assert "record_calls(q, k, v, scale=0.5)" in mod.sources()["model.py"]
    x = torch.randn(1, 2, 5, 4)
    assert torch.equal(mod(x, x, x), torch.zeros_like(x)) and record_calls.seen == [{"scale": 0.5}]
    assert "record_calls" not in lower(g).sources()["model.py"]      # the torch table is unchanged
    with pytest.raises(ValueError, match="no rule to override"):
        rules.override("not_an_op")(_la)


def test_injected_objects_that_cannot_be_imported():
    rules = load_rules().copy("closure")
    scale = 3.0

    @rules.override("linear_attention")
    def _la(node, e):
        return e.call(e.use(lambda q, k, v: q * scale, "times_three"), e.arg("q"), e.arg("k"), e.arg("v"))

    mod = generate(_la_graph(), rules, "closure")
    assert "provided by the target at load time: times_three" in mod.source
    x = torch.randn(1, 2, 3, 4)
    assert torch.equal(mod.function(None, x, x, x)[0], x * 3)


def test_lowering_error_names_op_target_and_line():
    rules = load_rules().copy("partial")
    del rules._rules["linear_attention"]
    with pytest.raises(LoweringError) as err:
        TorchTarget(rules).lower(_la_graph())
    msg = str(err.value)
    assert "'linear_attention'" in msg and "'partial'" in msg and "la.py:3" in msg


def test_symbol_with_no_source_is_a_lowering_error():
    g = ir.Graph("main")
    g.symbols["T"] = (1, 10)
    x = g.add_input(TensorType((2,), "f32"), "x")
    g.set_outputs([g.add_node("full", {"size": [T], "fill_value": 1.0}, [TensorType((T,), "f32")],
                              loc=Loc("sym.py", 5)).output])
    with pytest.raises(LoweringError, match="symbol T") as err:
        lower(g)
    assert "sym.py:5" in str(err.value) and x is not None


@pytest.mark.parametrize("form", ["unfused", "fused"])
def test_factories_follow_the_module_device(form):
    # On the meta device a factory op created on the CPU would fail to mix with the
    # inputs: every tensor the generated code makes must follow the module (cuda alike).
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import zoo_graphs
    traced = zoo_graphs.traced("spikingbrain-chunk")
    mod = lower(traced.graphs[form], device="meta")
    assert mod.device.type == "meta" and all(p.is_meta for p in mod.parameters())
    out = mod(traced.inputs(21)[0].to("meta"))
    assert out.is_meta and tuple(out.shape) == (2, 21, traced.model.config.vocab_size)
