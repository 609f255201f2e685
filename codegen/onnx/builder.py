"""Small builders that collect ONNX nodes: one for the model graph (constants become
initializers) and one for function bodies and sub-graphs (constants become Constant nodes,
since a FunctionProto holds no initializers)."""
from __future__ import annotations

import itertools

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from .dtypes import NUMPY_TYPES, onnx_type


def tensor_proto(name: str, t) -> TensorProto:
    """A TensorProto from a torch tensor or numpy array (bf16 goes through its raw bits)."""
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            proto = helper.make_tensor(name, TensorProto.BFLOAT16, list(t.shape), vals=b"", raw=True)
            proto.raw_data = t.contiguous().view(torch.int16).numpy().tobytes()
            return proto
        t = t.contiguous().numpy()
    return numpy_helper.from_array(np.array(t, copy=True, order="C"), name)   # keeps 0-d arrays 0-d


class NodeSink:
    """Collects nodes; `op` returns the output name (or names when n_out > 1)."""

    def __init__(self, prefix: str):
        self.nodes = []
        self.prefix = prefix
        self._ids = itertools.count()
        self._consts: dict[tuple, str] = {}

    def fresh(self, hint: str = "t") -> str:
        return f"{self.prefix}{hint}_{next(self._ids)}"

    def op(self, op_type: str, inputs, n_out: int = 1, *, domain: str = "", outputs=None, hint=None, **attrs):
        outs = list(outputs) if outputs is not None else [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, domain=domain or None, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # -- constants ------------------------------------------------------------
    def const(self, array, dtype: str | None = None, hint: str = "c") -> str:
        arr = np.asarray(array, dtype=NUMPY_TYPES[dtype] if dtype else None)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self._make_const(arr, hint)
        return self._consts[key]

    def _make_const(self, arr: np.ndarray, hint: str) -> str:
        raise NotImplementedError

    def i64(self, values) -> str:
        """A 1-D int64 constant (shapes, axes, pads)."""
        return self.const(np.asarray(list(values), dtype=np.int64), hint="i64")

    def scalar(self, value, dtype: str) -> str:
        return self.const(np.asarray(value), dtype, hint="s")

    def cast(self, name: str, dtype: str) -> str:
        return self.op("Cast", [name], to=onnx_type(dtype))


class GraphSink(NodeSink):
    """The model graph: constants and weights are initializers."""

    def __init__(self, prefix: str = "_"):
        super().__init__(prefix)
        self.initializers: list[TensorProto] = []
        self._init_names: set[str] = set()

    def _make_const(self, arr, hint):
        name = self.fresh(hint)
        self.initializers.append(tensor_proto(name, arr))
        return name

    def add_initializer(self, name: str, tensor) -> str:
        if name not in self._init_names:
            self._init_names.add(name)
            self.initializers.append(tensor_proto(name, tensor))
        return name


class BodySink(NodeSink):
    """A function body or control-flow sub-graph: constants are Constant nodes."""

    def _make_const(self, arr, hint):
        return self.op("Constant", [], hint=hint, value=tensor_proto(self.fresh(hint + "v"), arr))
