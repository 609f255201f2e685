"""The op registry: every declared op resolves, has a reference implementation
and inference; unknown ops are clear errors."""
import pytest
import torch

from spikec import ir
from spikec.ir import UnsupportedOpError
from spikec.ir.ops_aten import CORE_OPS


def test_every_core_op_maps_its_overloads():
    ops = ir.ops()
    for name, overloads in CORE_OPS.items():
        opdef = ops[name]
        assert len(opdef.torch_targets) == len(overloads)
        for target in opdef.torch_targets:
            assert ir.lookup_torch(target) is opdef
        assert opdef.signature().startswith(name + "(")


def test_structured_ops_declare_regions():
    assert ir.get_op("scan").regions == ("combine",)
    assert ir.get_op("while_loop").regions == ("cond", "body")
    assert ir.get_op("cond").regions == ("true_branch", "false_branch")


def test_unknown_op_suggests_close_names():
    with pytest.raises(UnsupportedOpError) as e:
        ir.get_op("softmaxx")
    assert "unknown op 'softmaxx'" in str(e.value) and "softmax" in str(e.value)


def test_torch_library_custom_op_registers_on_demand():
    import modules  # noqa: F401  (defines spikec_test::spike)
    opdef = ir.lookup_torch(torch.ops.spikec_test.spike.default)
    assert opdef.name == "spikec_test::spike" and opdef.category == "custom"
    assert ir.get_op("spikec_test::spike") is opdef
    assert [p.name for p in opdef.params] == ["x", "thresh"]


def test_view_has_value_semantics():
    # A view of a permuted tensor is computed as a reshape: strides are not part of IR values.
    x = torch.arange(6.0).reshape(2, 3).t()
    out = ir.get_op("view").call({"self": x, "size": [6]})
    torch.testing.assert_close(out, x.reshape(6))
