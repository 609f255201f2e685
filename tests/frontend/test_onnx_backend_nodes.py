"""ONNX's own backend node tests, run through `from_onnx` + `interpret`.

Each case is one small model with inputs and expected outputs. They are read
from onnx/backend/test/data/node/<test>/ when the onnx install ships that
folder; the wheel installed here ships only the generators
(onnx.backend.test.case.node), so the cases are generated from them instead.

A case is selected when every op in its model has a rule in
`onnx_ops.RULES`, every attribute is one the rule handles and every input
and output dtype is one we run. Inputs that a rule needs known at import
(`Rule.static`: Reshape's shape, Slice's starts, ...) are bound with
`constant_inputs`, as a user with static sizes would. Known gaps are listed
in DENY with a reason and run as strict xfails, so a fix shows up.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from spikec import ir
from spikec.frontend import from_onnx
from spikec.frontend.onnx_ops import RULES
from spikec.frontend.onnx_values import ONNX_TO_IR

RTOL = ATOL = 1e-4
F16_TOL = 2e-3          # f16 keeps ~3 decimal digits; torch and numpy round intermediate results differently
# bf16/f8 have no numpy type in the data; u16/u32/u64 have few torch CPU kernels
DTYPES = {"f16", "f32", "f64", "i8", "i16", "i32", "i64", "u8", "bool"}

_TRAINING = "training-mode Dropout/BatchNormalization: spikec imports inference graphs"
_PAD = "Pad modes edge/reflect/wrap: constant_pad_nd covers only mode='constant'"
_SCATTER = "ScatterND reduction mul/max/min: index_put accumulates only by addition"
_TIES = "TopK ties: torch.topk does not order equal values by index as ONNX requires"
_EMPTY = "reduction over an empty axis: aten amax/amin reject it (ONNX gives -inf/inf)"
_LOOP_SCAN = "Loop with scan outputs (per-iteration results): while_loop carries state only"
DENY = {
    "test_training_dropout": _TRAINING, "test_training_dropout_default": _TRAINING,
    "test_training_dropout_default_mask": _TRAINING, "test_training_dropout_mask": _TRAINING,
    "test_training_dropout_zero_ratio": _TRAINING, "test_training_dropout_zero_ratio_mask": _TRAINING,
    "test_batchnorm_epsilon_training_mode": _TRAINING, "test_batchnorm_example_training_mode": _TRAINING,
    "test_edge_pad": _PAD, "test_reflect_pad": _PAD, "test_wrap_pad": _PAD,
    "test_scatternd_max": _SCATTER, "test_scatternd_min": _SCATTER, "test_scatternd_multiply": _SCATTER,
    "test_scatternd_max_with_element_indices": _SCATTER, "test_scatternd_min_with_element_indices": _SCATTER,
    "test_top_k_same_values": _TIES, "test_top_k_same_values_2d": _TIES, "test_top_k_same_values_largest": _TIES,
    "test_reduce_max_empty_set": _EMPTY, "test_reduce_min_empty_set": _EMPTY,
    "test_loop11": _LOOP_SCAN, "test_range_float_type_positive_delta_expanded": _LOOP_SCAN,
    "test_range_int32_type_negative_delta_expanded": _LOOP_SCAN,
    "test_range_float16_type_positive_delta_expanded": _LOOP_SCAN,
    "test_scan_sum": "Scan-8 (batched, with sequence_lens); Scan from opset 9 is supported",
    "test_gathernd_example_int32_batch_dim1": "GatherND with batch_dims != 0",
    **{f"test_affine_grid_{d}{a}_expanded": "the grid size reaches Expand inside an If branch: a run-time size"
       for d in ("2d", "3d") for a in ("", "_align_corners")},
}


def _load_cases() -> dict:
    data = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    cases = {}
    if data.is_dir():
        for d in sorted(data.iterdir()):
            if (d / "model.onnx").exists() and (d / "test_data_set_0").is_dir():
                cases[d.name] = d
        return cases
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for c in collect_testcases():
            cases[c.name] = c
    return cases


def _read_case(case):
    """(model, inputs, outputs) of a case dir or a generated TestCase."""
    if isinstance(case, Path):
        model = onnx.load(case / "model.onnx")
        ds = case / "test_data_set_0"

        def read(prefix):
            files = sorted(ds.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
            return [numpy_helper.to_array(onnx.TensorProto.FromString(f.read_bytes())) for f in files]
        return model, read("input"), read("output")
    inputs, outputs = case.data_sets[0]
    arr = [lambda x: numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else x][0]
    return case.model, [arr(x) for x in inputs], [arr(x) for x in outputs]


def _graphs(g: onnx.GraphProto):
    yield g
    for n in g.node:
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                yield from _graphs(sub)


def _why_not(model: onnx.ModelProto) -> str | None:
    """Why a case is outside what the importer claims to handle, or None."""
    if len(model.functions):
        return "model-local functions"
    for g in _graphs(model.graph):
        for n in g.node:
            rule = RULES.get(n.op_type) if n.domain in ("", "ai.onnx") else None
            if rule is None:
                return f"op {n.domain}::{n.op_type}"
            extra = [a.name for a in n.attribute if a.name not in rule.attrs]
            if extra:
                return f"{n.op_type} attribute {extra}"
    for vi in [*model.graph.input, *model.graph.output]:
        if vi.type.WhichOneof("value") != "tensor_type":
            return f"{vi.name} is a {vi.type.WhichOneof('value')}"
        if ONNX_TO_IR.get(vi.type.tensor_type.elem_type) not in DTYPES:
            return f"{vi.name} has element type {vi.type.tensor_type.elem_type}"
    return None


CASES = _load_cases()
SELECTED = {}
for _name in sorted(CASES):
    _model = _read_case(CASES[_name])[0] if isinstance(CASES[_name], Path) else CASES[_name].model
    if _why_not(_model) is None:
        SELECTED[_name] = _model


def _static_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs whose values reach a static operand (directly or through
    other ops, as in the *_expanded function bodies); Shape/Size read only the
    shape of their input, so the walk stops there."""
    producers = {o: n for n in model.graph.node for o in n.output}
    todo = [n.input[i] for n in model.graph.node for i in RULES[n.op_type].static if i < len(n.input)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if not name or name in seen:
            continue
        seen.add(name)
        p = producers.get(name)
        if p is not None and p.op_type not in ("Shape", "Size"):
            todo += list(p.input)
    return seen & {vi.name for vi in model.graph.input}


def _params():
    for name in SELECTED:
        marks = [pytest.mark.xfail(reason=DENY[name], strict=True)] if name in DENY else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_node(name):
    model, inputs, expected = _read_case(CASES[name])
    names = [vi.name for vi in model.graph.input if vi.name not in {t.name for t in model.graph.initializer}]
    static = _static_inputs(model)
    bound = {n: a for n, a in zip(names, inputs) if n in static}
    free = [torch.from_numpy(np.array(a)) for n, a in zip(names, inputs) if n not in static]
    g = from_onnx(model, constant_inputs=bound, source_name=name)
    got = ir.interpret(g, *free)
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(expected)
    for i, (a, e) in enumerate(zip(got, expected)):
        a = a.numpy()
        assert a.shape == e.shape, f"output {i}: shape {a.shape} != {e.shape}"
        assert a.dtype == e.dtype, f"output {i}: dtype {a.dtype} != {e.dtype}"
        if np.issubdtype(e.dtype, np.floating):
            tol = F16_TOL if e.dtype == np.float16 else RTOL
            np.testing.assert_allclose(a, e, rtol=tol, atol=tol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"output {i}")


def test_selection_is_substantial():
    # the rule table should cover a good share of ONNX's node tests
    assert len(SELECTED) >= 300, len(SELECTED)
