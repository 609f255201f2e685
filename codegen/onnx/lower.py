"""IR graph -> ONNX ModelProto: walk the nodes in order, apply each op's rule."""
from __future__ import annotations

import re

import sympy
from onnx import ModelProto, helper

from spikec.ir import Graph, Node, TensorType, Value
from spikec.ir.types import dim_str

from ..errors import LoweringError
from .builder import GraphSink
from .dims import DimEmitter
from .dtypes import onnx_type

OPSET = 18                 # default-domain opset of the model and of its functions
IR_VERSION = 10
SPIKEC_DOMAIN = "spikec"


def _sanitize(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if s and not s[0].isdigit() else "v" + s


def value_info(name: str, t: TensorType):
    dims = [d if isinstance(d, int) else (d.name if isinstance(d, sympy.Symbol) else dim_str(d)) for d in t.shape]
    return helper.make_tensor_value_info(name, onnx_type(t.dtype), dims)


class LowerCtx:
    """What a rule needs: operand names, constants, run-time dims, functions, options."""

    def __init__(self, graph: Graph, options: dict):
        self.graph = graph
        self.options = options
        self.sink = GraphSink("_")
        self.names: dict[int, str] = {}
        self.named: set[str] = set()          # ONNX names already bound to an IR value
        self.functions: dict[str, object] = {}
        self.initializer_names: dict[str, str] = {}      # constant name -> ONNX name
        self.pending_constants: dict[str, object] = {}   # ONNX name -> tensor not yet used
        self._used: set[str] = set()
        self._dim_home: dict[str, tuple[Value, int]] = {}
        for v in graph.values():
            if isinstance(v.type, TensorType):
                for axis, d in enumerate(v.type.shape):
                    if isinstance(d, sympy.Symbol):
                        self._dim_home.setdefault(d.name, (v, axis))
        self.dims = DimEmitter(self.sink, self._locate)

    def _locate(self, sym: str):
        home = self._dim_home.get(sym)
        if home is None or id(home[0]) not in self.names:
            return None
        return self.names[id(home[0])], home[1]

    def unique(self, ir_name: str) -> str:
        base = _sanitize(ir_name)
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    # -- operands ------------------------------------------------------------
    def get(self, v: Value) -> str:
        name = self.names[id(v)]
        if name in self.pending_constants:          # a weight enters the model on its first use
            self.sink.add_initializer(name, self.pending_constants.pop(name))
        return name

    def operand(self, a, dtype: str) -> str:
        """Value or python number `a` as an ONNX tensor of `dtype` (cast where needed)."""
        if isinstance(a, Value):
            name = self.get(a)
            return name if a.type.dtype == dtype else self.sink.cast(name, dtype)
        if isinstance(a, sympy.Expr):
            d = self.dims.scalar(a)
            return d if dtype == "i64" else self.sink.cast(d, dtype)
        return self.sink.scalar(a, dtype)

    def function(self, proto) -> str:
        """Register a model-local FunctionProto once; returns its op_type."""
        self.functions.setdefault(proto.name, proto)
        return proto.name


def lower_graph(graph: Graph, options: dict) -> ModelProto:
    from .rules import RULES
    RULES.check(graph)
    ctx = LowerCtx(graph, options)
    inputs = []
    for v in graph.inputs:
        if not isinstance(v.type, TensorType):
            raise LoweringError(f"onnx: graph input %{v.name} is a host scalar ({v.type}); ONNX inputs are tensors")
        ctx.names[id(v)] = ctx.unique(v.name)
        ctx.named.add(ctx.names[id(v)])
        inputs.append(value_info(ctx.names[id(v)], v.type))
    for node in graph.nodes:
        _lower_node(ctx, node, RULES.get(node))
    outputs = []
    for v in graph.outputs:
        name = ctx.unique(f"out_{v.name}")
        ctx.sink.op("Identity", [ctx.get(v)], outputs=[name])
        outputs.append(value_info(name, v.type))
    g = helper.make_graph(ctx.sink.nodes, graph.name, inputs, outputs, ctx.sink.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if ctx.functions:
        opsets.append(helper.make_opsetid(SPIKEC_DOMAIN, 1))
    return helper.make_model(g, opset_imports=opsets, functions=list(ctx.functions.values()),
                             ir_version=IR_VERSION, producer_name="spikec")


def _lower_node(ctx: LowerCtx, node: Node, rule) -> None:
    start = len(ctx.sink.nodes)
    try:
        outs = rule(ctx, node)
    except LoweringError as e:
        if e.where is not None:
            raise
        raise LoweringError(e.message, where=node.where(), hint=e.hint) from e
    outs = [outs] if isinstance(outs, str) else list(outs)
    if len(outs) != len(node.outputs):
        raise LoweringError(f"onnx rule for {node.op!r} gave {len(outs)} outputs, the node has {len(node.outputs)}",
                            where=node.where())
    produced = {o: n for n in ctx.sink.nodes[start:] for o in n.output}
    for v, name in zip(node.outputs, outs):
        # Give the tensor the IR value's name where the rule made it fresh, so the text form reads like the IR.
        if name in produced and name.startswith("_") and name not in ctx.named:
            new = ctx.unique(v.name)
            out = produced[name].output
            out[list(out).index(name)] = new
            for n in ctx.sink.nodes[start:]:
                for i, x in enumerate(n.input):
                    if x == name:
                        n.input[i] = new
            name = new
        ctx.names[id(v)] = name
        ctx.named.add(name)
