"""torch frontend: every test module traces, verifies, round-trips and
interprets to the eager output (fp32, max abs error <= 1e-5)."""
import pytest
import torch
import torch.nn as nn

import modules as M
from spikec import ir
from spikec.frontend import from_torch
from spikec.ir import FrontendError, UnsupportedOpError

TOL = 1e-5


def trace(name):
    dynamic = {"T": (2, 4096)} if name in M.DYNAMIC_OK else None
    return from_torch(M.make(name), (M.example_input(),), dynamic=dynamic)


@pytest.mark.parametrize("name", sorted(M.MODULES))
def test_interpret_equals_eager(name):
    m, x = M.make(name), M.example_input()
    g = trace(name)
    ir.verify(g)
    assert (ir.interpret(g, x) - m(x)).abs().max().item() <= TOL
    assert ir.structural_diff(g, ir.parse(str(g), constants=g.constants)) is None


@pytest.mark.parametrize("name", sorted(M.DYNAMIC_OK))
def test_dynamic_sequence_stays_symbolic(name):
    m, g = M.make(name), trace(name)
    text = str(g)
    assert "T: [2, 4096]" in text and "%x: f32[2, T, 16]" in text
    for T in (5, 23):
        x = M.example_input(T=T)
        assert (ir.interpret(g, x) - m(x)).abs().max().item() <= TOL


def test_python_loop_is_unrolled_and_static():
    g = trace("gla_loop")
    assert g.symbols == {} and g.op_counts()["matmul"] == 8      # one q·S per step, T=8
    with pytest.raises(FrontendError) as e:
        from_torch(M.make("gla_loop"), (M.example_input(),), dynamic={"T": (2, 64)})
    assert "scan" in str(e.value.hint)


def test_scan_keeps_its_body_as_a_region():
    g = trace("gla_scan")
    scans = [n for n in g.nodes if n.op == "scan"]
    assert len(scans) == 1 and scans[0].regions[0].name == "combine"
    assert "einsum" in scans[0].regions[0].op_counts()


def test_cond_and_while_loop_keep_their_branches_and_body():
    g = trace("cond")
    node = next(n for n in g.nodes if n.op == "cond")
    assert [r.name for r in node.regions] == ["true_branch", "false_branch"]
    assert node.loc is not None and node.loc.file.endswith("modules.py")
    m = M.make("cond")
    x = M.example_input()
    for sign in (1, -1):
        xs = sign * x.abs()
        assert (ir.interpret(g, xs) - m(xs)).abs().max().item() <= TOL
    g = trace("while_loop")
    assert [r.name for r in next(n for n in g.nodes if n.op == "while_loop").regions] == ["cond", "body"]


def test_moe_nonzero_gets_data_dependent_symbols():
    g = trace("moe_nonzero")
    assert {"u0", "u1", "u2", "u3"} <= set(g.symbols)
    assert g.op_counts()["nonzero"] == 4


def test_custom_op_stays_one_opaque_node():
    g = trace("spiking")
    assert g.op_counts()["spikec_test::spike"] == 1
    assert "spikec_test::spike(" in str(g)


def test_weights_are_held_by_reference_not_copied():
    m = M.make("swiglu")
    g = from_torch(m, (M.example_input(),))
    assert g.constants["gate.weight"].data_ptr() == m.gate.weight.data_ptr()
    assert all(n.op != "constant" or n.args["name"] in g.constants for n in g.nodes)


def test_source_locations_point_at_the_model_code():
    g = trace("swiglu")
    linears = [n for n in g.nodes if n.op == "linear"]
    assert linears and all(n.loc and n.loc.file.endswith("modules.py") for n in linears)
    assert 'loc("tests/modules.py"' in str(g) or "modules.py" in str(g)


def test_meta_device_graph_is_built_without_weights():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(4096, 4096), nn.SiLU(), nn.Linear(4096, 4096))
    g = from_torch(m, (torch.empty(1, 8, 4096, device="meta"),))
    assert all(t.device.type == "meta" for t in g.constants.values())
    assert "f32[4096, 4096]" in str(g)
    ir.verify(g)


class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("bad input rank")


class UsesFFT(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).real


def test_forward_that_raises_is_a_clear_error():
    with pytest.raises(FrontendError) as e:
        from_torch(Raises(), (torch.randn(2, 3),))
    assert "Raises" in str(e.value) and "bad input rank" in str(e.value)
    assert "test_torch_import.py" in str(e.value)        # where: the raising line


def test_unsupported_op_names_op_and_source_line():
    with pytest.raises(UnsupportedOpError) as e:
        from_torch(UsesFFT(), (torch.randn(2, 8),))
    msg = str(e.value)
    assert "unsupported op aten." in msg and "fft" in msg
    assert "test_torch_import.py:" in msg


def test_bad_dynamic_spec_is_explained():
    with pytest.raises(FrontendError, match="must be \\(lo, hi\\)"):
        from_torch(M.make("rmsnorm"), (M.example_input(),), dynamic={"T": 5})


def test_second_trace_of_a_scan_model_is_not_poisoned_by_the_first():
    # torch caches traced scan bodies with guards; a static trace at T=8 once made a
    # later dynamic trace fail with `2*T != 16`.
    m = M.make("gla_scan")
    from_torch(m, (M.example_input(T=8),))
    g = from_torch(m, (M.example_input(T=6),), dynamic={"T": (2, 64)})
    x = M.example_input(T=11)
    assert (ir.interpret(g, x) - m(x)).abs().max().item() <= TOL
