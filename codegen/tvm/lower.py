"""spikec Graph -> TVM Relax IRModule.

One `Lowering` walks the graph in program order. Each node goes to the rule
the cpu target's RuleTable holds for its op; a rule builds Relax with the
BlockBuilder (Relax ops, TE computes or `call_tir` of a scheduled TensorIR
kernel) and returns one Relax expression per node output. The lowering then
makes each result agree with the IR type (dtype cast; a `match_cast` where
Relax cannot prove the shape), so a rule only has to get the values right.

Graph inputs become the function's first parameters; weights (the graph's
constant table) follow as further parameters, bound at run time, so the
TVMScript stays readable and a weight update needs no rebuild.
"""
from __future__ import annotations

from typing import Any

import torch
import tvm
from tvm import relax, tirx

from spikec.codegen.rules import RuleTable
from spikec.ir import Graph, Node, SpikecError, TensorType, Value
from spikec.ir.types import dtype_name

from .dims import DimMap
from .errors import TvmLoweringError

# IR dtype name -> TVM dtype string.
TVM_DTYPES = {
    "f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
    "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64", "bool": "bool",
}


def tvm_dtype(ir_dtype: str) -> str:
    try:
        return TVM_DTYPES[ir_dtype]
    except KeyError:
        raise TvmLoweringError(f"the cpu target has no TVM dtype for {ir_dtype!r}",
                               hint=f"supported: {', '.join(TVM_DTYPES)}") from None


class Lowering:
    """The state rules see: the BlockBuilder, symbolic dims, the value map."""

    def __init__(self, graph: Graph, rules: RuleTable, options: dict | None = None):
        self.graph = graph
        self.rules = rules
        self.options = dict(options or {})
        self.bb = relax.BlockBuilder()
        self.dims = DimMap()
        self.env: dict[int, relax.Expr] = {}
        self.node: Node | None = None           # the node being lowered (for errors)
        self.kernels: dict[tuple, Any] = {}     # (name, key) -> GlobalVar of a hand-written kernel
        self._derived: dict[str, tuple] = {}    # key -> (param Var, tensor)
        self.weights: list = []                 # tensors bound to the weight parameters, in order

    # -- helpers for rules ----------------------------------------------------
    def where(self) -> str | None:
        return self.node.where() if self.node is not None else None

    def fail(self, msg: str, hint: str | None = None):
        raise TvmLoweringError(f"target {self.rules.target!r}: {msg}", where=self.where(), hint=hint)

    def expr(self, a: Value) -> relax.Expr:
        return self.env[id(a)]

    def dtype(self, a) -> str:
        """IR dtype of a Value, or of a python literal as torch would type it alone."""
        if isinstance(a, Value):
            return a.type.dtype
        if isinstance(a, bool):
            return "bool"
        if isinstance(a, int):
            return "i64"
        return "f32"

    def operand(self, a, dtype: str) -> relax.Expr:
        """A Value (cast to `dtype`) or a python number (a constant of `dtype`)."""
        if isinstance(a, Value):
            e = self.expr(a)
            return e if a.type.dtype == dtype else self.emit(relax.op.astype(e, tvm_dtype(dtype)))
        if isinstance(a, relax.Expr):
            return a
        return self.const(a, dtype)

    def const(self, x, dtype: str) -> relax.Expr:
        if dtype == "bool":
            x = bool(x)
        elif dtype.startswith(("i", "u")):
            x = int(x)
        else:
            x = float(x)
        return relax.const(x, tvm_dtype(dtype))

    def emit(self, e: relax.Expr) -> relax.Expr:
        return self.bb.emit(e)

    def shape(self, v: Value) -> list:
        return self.dims.shape(v.type.shape)

    def ty(self, v: Value) -> relax.TensorType:
        return relax.TensorType(self.shape(v), tvm_dtype(v.type.dtype))

    def kernel(self, name: str, make, key=()):
        """Add a TensorIR kernel once per (name, key); `make()` builds the PrimFunc.
        Kernels that differ only in `key` (e.g. a baked-in scale) get numbered names."""
        full = (name, key)
        if full not in self.kernels:
            n = sum(1 for (nm, _k) in self.kernels if nm == name)
            final = name if n == 0 else f"{name}_{n}"
            self.kernels[full] = self.bb.add_func(make().with_attr("global_symbol", final), final)
        return self.kernels[full]

    # -- the walk -------------------------------------------------------------
    def build(self) -> tvm.IRModule:
        g = self.graph
        self.rules.check(g)
        params = []
        for v in g.inputs:
            if not isinstance(v.type, TensorType):
                self.fail(f"graph input %{v.name} is a {v.type}, the cpu target takes tensor inputs only")
            p = relax.Var(_name(v.name), self.ty(v))
            self.env[id(v)] = p
            params.append(p)
        weights = _used_constants(g)
        for name in weights:
            t = g.constants[name]
            p = relax.Var(_name("w_" + name), relax.TensorType([int(s) for s in t.shape],
                                                              tvm_dtype(_ir_dtype(t))))
            params.append(p)
        self._weight_vars = dict(zip(weights, params[len(g.inputs):]))
        self.weights = [g.constants[n] for n in weights]
        with self.bb.function("main"):
            with self.bb.dataflow():
                for node in g.nodes:
                    self._lower_node(node)
                outs = [self._output(v) for v in g.outputs]
                out = self.bb.emit_output(relax.Tuple(outs))
            # derived weights (packed at lowering time) join the parameters at the end
            self.bb.emit_func_output(out, params=params + [v for v, _ in self._derived.values()])
        self.weights += [t for _, t in self._derived.values()]
        mod = self.bb.get()
        return relax.transform.DeadCodeElimination(["main"])(mod) if self.options.get("dce", True) else mod

    def weight(self, name: str) -> relax.Var:
        return self._weight_vars[name]

    def derived(self, key: str, make) -> relax.Var:
        """A parameter computed once at lowering time from the graph's constants
        (e.g. a weight packed into GEMM panels): `make()` returns the tensor."""
        if key not in self._derived:
            t = make().contiguous()
            v = relax.Var(_name("p_" + key), relax.TensorType([int(s) for s in t.shape], tvm_dtype(_ir_dtype(t))))
            self._derived[key] = (v, t)
        return self._derived[key][0]

    def constant_of(self, v: Value):
        """The tensor behind a Value that is a graph constant, else None."""
        p = v.producer
        if p is not None and p.op == "constant":
            return self.graph.constants.get(p.args["name"])
        return None

    def _output(self, v: Value) -> relax.Expr:
        return self.env[id(v)]

    def _lower_node(self, node: Node) -> None:
        self.node = node
        for v in node.outputs:
            if not isinstance(v.type, TensorType):
                self.fail(f"{node.op} produces a host scalar ({v.type}); the cpu target keeps values as tensors",
                          hint="run the `default` pipeline, which folds scalar reads into shapes")
        rule = self.rules.get(node)
        try:
            res = rule(self, node)
        except SpikecError:
            raise
        except Exception as e:      # noqa: BLE001 - TVM raises many kinds; say which node
            msg = (str(e).strip().splitlines() or [type(e).__name__])[-1][:400]
            raise TvmLoweringError(f"target {self.rules.target!r}: building {node.op} failed: {type(e).__name__}: {msg}",
                                   where=node.where()) from e
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        if len(res) != len(node.outputs):
            self.fail(f"rule for {node.op} returned {len(res)} results, the node has {len(node.outputs)}")
        for v, e in zip(node.outputs, res):
            self.env[id(v)] = self._conform(e, v)
        self.node = None

    def _conform(self, e: relax.Expr, v: Value) -> relax.Expr:
        """Bind `e` as IR value `v`: same dtype; a shape Relax agrees with."""
        if not isinstance(e, relax.Var):
            e = self.emit(e)
        ty = e.ty
        want = tvm_dtype(v.type.dtype)
        if not isinstance(ty, relax.TensorType):
            self.fail(f"rule for {self.node.op} built a {type(ty).__name__}, not a tensor")
        if str(ty.dtype) != want:
            e = self.emit(relax.op.astype(e, want))
            ty = e.ty
        shape = self.shape(v)
        if ty.shape is None or not _same_shape(ty.shape, shape):
            e = self.bb.match_cast(e, relax.TensorType(shape, want))
        return e


def _same_shape(have, want) -> bool:
    vals = list(have.values) if hasattr(have, "values") else None
    if vals is None or len(vals) != len(want):
        return False
    an = tvm.sym.Analyzer()
    for a, b in zip(vals, want):
        b = tirx.IntImm("int64", b) if isinstance(b, int) else b
        if not an.can_prove_equal(a, b):
            return False
    return True


def _ir_dtype(t: torch.Tensor) -> str:
    return dtype_name(t.dtype)


def _used_constants(g: Graph) -> list[str]:
    seen: dict[str, None] = {}
    for n in g.walk():
        if n.op == "constant":
            seen.setdefault(n.args["name"])
    return list(seen)


def _name(s: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in s)
    return out if out and not out[0].isdigit() else "v" + out
