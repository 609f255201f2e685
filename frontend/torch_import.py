"""PyTorch -> spikec IR, through torch.export (non-strict) and decompositions.

The FX graph of the ExportedProgram is walked node by node: parameters,
buffers and lifted constants become `constant` nodes that hold the module's
tensors by reference; aten calls map to registry ops by overload; nodes that
compute sizes become symbolic expressions; scan / while_loop / cond keep their
bodies as regions.
"""
from __future__ import annotations

import operator
import os
import sys
import traceback
import warnings
from typing import Any

import sympy
import torch
import torch.fx as fx
from torch.export.graph_signature import InputKind, OutputKind

from spikec.ir import FrontendError, Graph, ScalarType, TensorType, UnsupportedOpError, lookup_torch, sym
from spikec.ir.types import dtype_name, norm_dim

from .quiet import held_output
from .source_loc import loc_from_stack_trace, loc_of_callable, short_path

aten = torch.ops.aten

# Ops kept whole instead of decomposed: they carry the structure that the
# fusion passes look for (and they are what a reader expects to see).
KEEP_UNDECOMPOSED = [
    aten.linear.default, aten.matmul.default, aten.einsum.default, aten.softmax.int,
    aten.log_softmax.int, aten.silu.default, aten.gelu.default, aten.rms_norm.default,
    aten.layer_norm.default, aten.scaled_dot_product_attention.default, aten.embedding.default,
]

# Runtime checks torch.export inserts; values never depend on them.
_DROPPED_TARGETS = {
    aten._assert_scalar.default, aten.sym_constrain_range_for_size.default,
    aten.sym_constrain_range.default, aten._assert_tensor_metadata.default,
    aten._assert_async.msg,
}

_HOPS = {"scan": ("combine",), "while_loop": ("cond", "body"), "cond": ("true_branch", "false_branch")}


def decomposition_table():
    table = torch.export.default_decompositions()
    for op in KEEP_UNDECOMPOSED:
        table.pop(op, None)
    return table


def _dynamic_shapes(example_inputs, dynamic: dict | None):
    """`{"T": (lo, hi)}` marks axis 1 of every input of rank >= 2 (the sequence
    axis); `{"T": (lo, hi, {input_index: axis})}` names the axes explicitly;
    `(None, None, ...)` leaves the range to torch (Dim.AUTO)."""
    if not dynamic:
        return None, {}
    specs: list[dict] = [{} for _ in example_inputs]
    named: dict[tuple[int, int], str] = {}
    for name, spec in dynamic.items():
        if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
            raise FrontendError(f"dynamic[{name!r}] must be (lo, hi) or (lo, hi, {{input_index: axis}}), got {spec!r}")
        lo, hi = spec[0], spec[1]
        axes = spec[2] if len(spec) == 3 else {i: 1 for i, x in enumerate(example_inputs)
                                               if isinstance(x, torch.Tensor) and x.dim() >= 2}
        if not axes:
            raise FrontendError(f"dynamic dim {name!r}: no input has a sequence axis (axis 1 of a rank>=2 tensor)",
                                hint="give the axes explicitly: {name: (lo, hi, {input_index: axis})}")
        # (None, None): let torch choose (Dim.AUTO). Its solver rejects some true guards on
        # named dims (e.g. Min(a*P, b*P) == a*P from stride checks); AUTO keeps them symbolic.
        dim = torch.export.Dim.AUTO if lo is None and hi is None else torch.export.Dim(name, min=lo, max=hi)
        for i, axis in axes.items():
            if i >= len(example_inputs) or not isinstance(example_inputs[i], torch.Tensor):
                raise FrontendError(f"dynamic dim {name!r} names input {i}, which is not a tensor input")
            specs[i][axis % example_inputs[i].dim()] = dim
            named[(i, axis % example_inputs[i].dim())] = name
    return tuple(s or None for s in specs), named


def _library_dirs() -> tuple[str, ...]:
    import spikec
    import spikec.ir
    return tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                 for m in (torch, spikec, spikec.ir, sys.modules[__name__]))


_LIBRARY_DIRS: tuple[str, ...] = ()


def _user_frame(exc: BaseException) -> str | None:
    """The innermost frame of user code in the exception (or what it wraps)."""
    global _LIBRARY_DIRS
    _LIBRARY_DIRS = _LIBRARY_DIRS or _library_dirs()
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for fr in reversed(traceback.extract_tb(exc.__traceback__)):
            if fr.filename.startswith("<") or os.path.abspath(fr.filename).startswith(_LIBRARY_DIRS):
                continue
            return f"{short_path(fr.filename)}:{fr.lineno} ({(fr.line or '').strip()})"
        exc = exc.__cause__ or exc.__context__
    return None


def export(model: torch.nn.Module, example_inputs: tuple, dynamic: dict | None = None,
           strict: bool = False) -> torch.export.ExportedProgram:
    dyn, _ = _dynamic_shapes(example_inputs, dynamic)
    try:
        with held_output(), warnings.catch_warnings():
            # torch's own pytree deprecation notices; nothing a user can act on.
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torch|copyreg)")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            # torch's scan/cond tracing caches compiled bodies with guards from earlier
            # traces (e.g. `2*T != 16`); a stale cache entry fails a later export.
            torch._dynamo.reset()
            ep = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dyn, strict=strict)
            return ep.run_decompositions(decomposition_table())
    except Exception as e:
        where = _user_frame(e) or str(loc_of_callable(model) or type(model).__name__)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        hint = None
        if "specialized" in str(e) or "Constraints violated" in str(e):
            hint = ("the model fixes this length (a Python loop over time unrolls it); trace it with "
                    "dynamic=None, or write the loop with torch's scan")
        raise FrontendError(f"torch.export could not trace {type(model).__name__}: {type(e).__name__}: {first}",
                            where=where, hint=hint) from e


def _finite_int(bound, default):
    # torch's range bounds may be sympy.oo or its own int_oo, whose is_finite is not False.
    try:
        return int(bound) if bound.is_number and abs(float(bound)) < 2 ** 62 else default
    except (TypeError, ValueError, AttributeError):
        return default


class _Importer:
    def __init__(self, ep: torch.export.ExportedProgram, named: dict[tuple[int, int], str]):
        self.ep = ep
        self.rename: dict[sympy.Symbol, sympy.Symbol] = {}
        self.symbols: dict[str, tuple] = {}
        self._name_symbols(named)

    # -- symbols -------------------------------------------------------------
    def _name_symbols(self, named):
        user = [s for s in self.ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
        placeholders = {n.name: n for n in self.ep.graph.nodes if n.op == "placeholder"}
        tensor_index = 0
        for spec in user:
            val = placeholders[spec.arg.name].meta.get("val")
            if not isinstance(val, torch.Tensor):
                continue
            for axis, d in enumerate(val.shape):
                if isinstance(d, torch.SymInt) and isinstance(d.node.expr, sympy.Symbol):
                    name = named.get((tensor_index, axis))
                    if name and d.node.expr not in self.rename:
                        self.rename[d.node.expr] = sym(name)
            tensor_index += 1
        for s, vr in self.ep.range_constraints.items():
            if isinstance(s, sympy.Symbol):
                self._declare(s, vr)

    def _declare(self, s: sympy.Symbol, vr=None):
        ours = self.rename.setdefault(s, sym(str(s)))
        if ours.name not in self.symbols:
            lo, hi = 0, None
            if vr is not None:
                lo = _finite_int(vr.lower, 0)
                hi = _finite_int(vr.upper, None)
            self.symbols[ours.name] = (lo, hi)
        return ours

    def dim(self, d):
        if isinstance(d, int):
            return d
        expr = d.node.expr if isinstance(d, torch.SymInt) else d
        for s in expr.free_symbols:
            if s not in self.rename:
                self._declare(s, self.ep.range_constraints.get(s))
        return norm_dim(expr.xreplace(self.rename))

    def type_of(self, val, node: fx.Node):
        if isinstance(val, torch.Tensor):
            return TensorType(tuple(self.dim(d) for d in val.shape), dtype_name(val.dtype))
        if isinstance(val, (torch.SymInt, int)) and not isinstance(val, bool):
            return ScalarType("i64")
        raise UnsupportedOpError(f"result of {node.target} has unsupported kind {type(val).__name__}",
                                 where=self._where(node))

    @staticmethod
    def _where(node: fx.Node) -> str:
        loc = loc_from_stack_trace(node.meta.get("stack_trace"))
        return f"{loc}" if loc else f"FX node {node.name}"

    # -- graph ---------------------------------------------------------------
    def run(self) -> Graph:
        ep = self.ep
        g = Graph("forward")
        env: dict[fx.Node, Any] = {}
        specs = {s.arg.name: s for s in ep.graph_signature.input_specs}
        state = ep.state_dict
        for node in ep.graph.nodes:
            if node.op != "placeholder":
                continue
            spec = specs[node.name]
            if spec.kind == InputKind.USER_INPUT:
                val = node.meta.get("val")
                if not isinstance(val, torch.Tensor):
                    raise FrontendError(f"input {node.name} is a {type(val).__name__}; only tensor inputs are supported",
                                        hint="bake non-tensor arguments into the module")
                env[node] = g.add_input(self.type_of(val, node), node.name)
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
                tensor = state[spec.target] if spec.target in state else ep.constants[spec.target]
                env[node] = g.add_constant(spec.target, tensor)
            else:
                raise UnsupportedOpError(f"input kind {spec.kind.name} ({node.name}) is not supported")
        self._body(ep.graph, g, env, ep.graph_module)
        out_node = next(n for n in ep.graph.nodes if n.op == "output")
        outs = out_node.args[0]
        for spec in ep.graph_signature.output_specs:
            if spec.kind != OutputKind.USER_OUTPUT:
                raise UnsupportedOpError(f"the model mutates {spec.target} in forward ({spec.kind.name}); "
                                         "spikec graphs are functional",
                                         hint="return the new state instead of writing a buffer")
        results = []
        for o in outs:
            v = env.get(o) if isinstance(o, fx.Node) else None
            if v is None or not hasattr(v, "type"):
                raise FrontendError(f"model output {o!r} is not a tensor; only tensor outputs are supported")
            results.append(v)
        g.set_outputs(results)
        g.symbols = dict(self.symbols)
        return g

    def _subgraph(self, gm: fx.GraphModule, name: str) -> Graph:
        sub = Graph(name)
        env: dict[fx.Node, Any] = {}
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = sub.add_input(self.type_of(node.meta["val"], node), node.name)
        self._body(gm.graph, sub, env, gm)
        out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
        sub.set_outputs([env[o] for o in (out if isinstance(out, (tuple, list)) else [out])])
        return sub

    def _arg(self, a, node: fx.Node, env):
        if isinstance(a, fx.Node):
            if a not in env:
                raise FrontendError(f"{node.target} uses {a.name}, which has no IR value", where=self._where(node))
            return env[a]
        if isinstance(a, (list, tuple)):
            return [self._arg(x, node, env) for x in a]
        if isinstance(a, (torch.SymInt,)):
            return self.dim(a)
        if a is None or isinstance(a, (bool, int, float, str, torch.dtype)):
            return a
        if isinstance(a, (torch.device, torch.layout, torch.memory_format)):
            return None
        raise UnsupportedOpError(f"argument {a!r} of {node.target} has unsupported kind {type(a).__name__}",
                                 where=self._where(node))

    def _body(self, graph: fx.Graph, g: Graph, env: dict, gm: fx.GraphModule):
        for node in graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            if node.op == "get_attr":
                env[node] = getattr(gm, node.target)
                continue
            if node.op != "call_function":
                raise UnsupportedOpError(f"FX node kind {node.op} ({node.target}) is not supported",
                                         where=self._where(node))
            target = node.target
            val = node.meta.get("val")
            loc = loc_from_stack_trace(node.meta.get("stack_trace"))
            if target in _DROPPED_TARGETS:
                continue
            if target is operator.getitem:
                src = env[node.args[0]]
                env[node] = src[node.args[1]]
                continue
            if isinstance(val, (torch.SymBool, torch.SymFloat)):
                env[node] = val.node.expr        # feeds only the runtime asserts dropped above
                continue
            if isinstance(val, torch.SymInt) or (isinstance(val, int) and not isinstance(val, bool)
                                                 and not isinstance(target, torch._ops.OpOverload)):
                if target is aten._local_scalar_dense.default or target is aten.item.default:
                    raise UnsupportedOpError("a data-dependent scalar (.item()) is not supported",
                                             where=self._where(node),
                                             hint="keep the value a tensor (e.g. use torch.where instead of a Python branch)")
                env[node] = self.dim(val)       # size arithmetic: a symbolic expression, no node
                continue
            hop = getattr(target, "__name__", None) if isinstance(target, torch._ops.HigherOrderOperator) else None
            if hop in _HOPS:
                self._hop(hop, node, g, env, loc)
                continue
            opdef = lookup_torch(target) if isinstance(target, torch._ops.OpOverload) else None
            if opdef is None:
                raise UnsupportedOpError(f"unsupported op {target}", where=self._where(node),
                                         hint="register it in spikec.ir (ops_aten.CORE_OPS) or as a torch.library custom op")
            schema = target._schema.arguments
            args = {}
            for i, a in enumerate(node.args):
                args[schema[i].name] = a
            args.update(node.kwargs)
            args = {k: self._arg(a, node, env) for k, a in args.items()
                    if k not in ("device", "layout", "pin_memory", "memory_format", "generator")}
            vals = list(val) if isinstance(val, (tuple, list)) else [val]
            types = [self.type_of(v, node) for v in vals]
            n = g.add_node(opdef.name, args, types, loc=loc, names=[None] * len(types))
            env[node] = n.outputs if isinstance(val, (tuple, list)) else n.outputs[0]

    def _hop(self, hop: str, node: fx.Node, g: Graph, env, loc):
        a = node.args
        if hop == "scan":
            regions = [self._subgraph(env[a[0]], "combine")]
            args = {"init": self._arg(list(a[1]), node, env), "xs": self._arg(list(a[2]), node, env),
                    "additional_inputs": self._arg(list(a[3]), node, env)}
        elif hop == "while_loop":
            regions = [self._subgraph(env[a[0]], "cond"), self._subgraph(env[a[1]], "body")]
            args = {"carried_inputs": self._arg(list(a[2]), node, env),
                    "additional_inputs": self._arg(list(a[3]), node, env)}
        else:
            regions = [self._subgraph(env[a[1]], "true_branch"), self._subgraph(env[a[2]], "false_branch")]
            args = {"pred": self._arg(a[0], node, env), "operands": self._arg(list(a[3]), node, env)}
        vals = list(node.meta["val"])
        n = g.add_node(hop, args, [self.type_of(v, node) for v in vals], loc=loc, regions=regions)
        env[node] = n.outputs


def from_torch(model: torch.nn.Module, example_inputs, dynamic: dict | None = None, *,
               strict: bool = False) -> Graph:
    """Trace `model` on `example_inputs` into a spikec Graph.

    `dynamic={"T": (lo, hi)}` keeps the sequence axis (axis 1 of each rank>=2
    input) symbolic as `T`; give `(lo, hi, {input_index: axis})` for other axes.
    Python loops over time are unrolled by export (a later pass fuses them).
    """
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    _, named = _dynamic_shapes(example_inputs, dynamic)
    ep = export(model, example_inputs, dynamic, strict)
    g = _Importer(ep, named).run()
    from spikec.ir import verify
    verify(g, infer_types=False)
    return g
