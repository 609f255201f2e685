"""ONNX -> spikec IR.

The model's nodes are walked in order and each is handed to its rule in
`onnx_ops.RULES`, which emits IR ops (aten-named). Initializers become
`constant` nodes holding torch tensors by reference, made on first use.
Small integer tensors that are known at import (shape arithmetic of the
dynamo exporter, constant axes and sizes) are evaluated here instead of
being emitted, so sizes reach the IR as literal, possibly symbolic, dims.
Output types come from the IR's own inference, not from ONNX value_info.
"""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import onnx
import onnx.inliner
import onnx.shape_inference
import sympy
from onnx import helper, numpy_helper

from spikec.ir import (FrontendError, Graph, InferContext, Loc, SpikecError, TensorType, UnsupportedOpError,
                       get_op, infer_types, sym, torch_dtype, verify)
from spikec.ir.infer import WILDCARD_PREFIX

from .onnx_values import (FLOAT_FOLD_LIMIT, FOLD_LIMIT, INT_DTYPES, NUMPY_DTYPES, ONNX_TO_IR, NoFold, Val,
                          is_symbolic, simplify, to_torch)

_ONNX_DOMAINS = ("", "ai.onnx")


def ir_dtype(elem_type: int, what: str) -> str:
    try:
        return ONNX_TO_IR[elem_type]
    except KeyError:
        known = elem_type in onnx.TensorProto.DataType.values()
        name = onnx.TensorProto.DataType.Name(elem_type) if known else elem_type
        raise UnsupportedOpError(f"{what} has ONNX element type {name}, which spikec does not support") from None


# -- loading ------------------------------------------------------------------
def _load(src) -> tuple[onnx.ModelProto, str]:
    if isinstance(src, onnx.ModelProto):
        _check_versions(src, "<onnx>")
        return src, "<onnx>"
    if isinstance(src, (bytes, bytearray)):
        label = "<onnx bytes>"
        try:
            model = onnx.load_model_from_string(bytes(src))
        except Exception as e:
            raise FrontendError(f"{label} is not a valid ONNX model: {_first_line(e)}") from e
    elif isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        label = os.path.basename(path)
        if not os.path.isfile(path):
            raise FrontendError(f"ONNX file {path} does not exist")
        try:
            model = onnx.load(path)
        except Exception as e:
            raise FrontendError(f"{path} is not a valid ONNX model: {_first_line(e)}",
                                hint="pass a .onnx file written by torch.onnx.export or onnx.save") from e
    else:
        raise FrontendError(f"from_onnx takes a path, bytes or an onnx.ModelProto, not {type(src).__name__}")
    where = os.fspath(src) if isinstance(src, (str, os.PathLike)) else label
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise FrontendError(f"{where} is not a valid ONNX model: it has no ir_version or no graph outputs",
                            hint="pass a .onnx file written by torch.onnx.export or onnx.save")
    _check_versions(model, where)
    return model, label


def _check_versions(model: onnx.ModelProto, where: str) -> None:
    """A model from a newer ONNX may use op semantics the installed onnx does not know."""
    if model.ir_version > onnx.IR_VERSION:
        raise FrontendError(f"{where} has ONNX IR version {model.ir_version}; the installed onnx "
                            f"{onnx.__version__} reads up to {onnx.IR_VERSION}",
                            hint="export with an older ONNX version, or upgrade onnx")
    newest = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in _ONNX_DOMAINS and o.version > newest:
            raise FrontendError(f"{where} uses ONNX opset {o.version}; the installed onnx {onnx.__version__} "
                                f"knows opsets up to {newest}",
                                hint=f"export with opset_version <= {newest}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """ONNX's own element type of every value it can infer (used to keep dtypes
    exact where aten promotes, e.g. sum of int32 -> int64)."""
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:
        pass
    out: dict[str, int] = {}

    def walk(gp):
        for vi in [*gp.input, *gp.output, *gp.value_info]:
            if vi.type.WhichOneof("value") == "tensor_type" and vi.type.tensor_type.elem_type:
                out.setdefault(vi.name, vi.type.tensor_type.elem_type)
        for n in gp.node:
            for a in n.attribute:
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    walk(sub)
    walk(model.graph)
    return out


def free_names(gp: onnx.GraphProto) -> list[str]:
    """Names a (sub)graph reads from enclosing scopes, in order of first use."""
    defined = {v.name for v in gp.input} | {t.name for t in gp.initializer}
    out: list[str] = []
    for n in gp.node:
        used = list(n.input)
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                used += free_names(sub)
        for name in used:
            if name and name not in defined and name not in out:
                out.append(name)
        defined.update(n.output)
    return out


# -- per-node context handed to the rules --------------------------------------
class Cx:
    """What a rule sees of one ONNX node: its inputs (as IR values, known arrays
    or python scalars), attributes, and a way to emit IR nodes."""

    def __init__(self, imp: "_Importer", node: onnx.NodeProto, g: Graph, env: dict, loc: Loc, where: str):
        self.imp, self.node, self.g, self.env, self.loc, self.where = imp, node, g, env, loc, where
        self._attrs = {a.name: a for a in node.attribute}

    # inputs
    @property
    def opset(self) -> int:
        return self.imp.opset

    @property
    def n_inputs(self) -> int:
        return len(self.node.input)

    @property
    def n_outputs(self) -> int:
        return len(self.node.output)

    def has(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def val(self, i: int) -> Val:
        return self.env[self.node.input[i]]

    def t(self, i: int):
        """Input i as an IR Value (known values are materialised as constants)."""
        return self.imp.materialize(self.val(i), self.g, self.node.input[i], self.loc)

    def tensor(self, v: Val, hint: str | None = None):
        return self.imp.materialize(v, self.g, hint or v.name or "c", self.loc)

    def operand(self, i: int):
        """Input i as a python number when it is a known 0-d scalar, else an IR Value."""
        v = self.val(i)
        plain = v.dtype != "bool" and not v.dtype.startswith(("c", "bf", "f8"))
        if v.known is not None and v.known.ndim == 0 and plain:
            return simplify(v.known.item() if v.known.dtype != object else v.known[()])
        return self.t(i)

    def known(self, i: int) -> np.ndarray | None:
        return self.val(i).known if self.has(i) else None

    def static(self, i: int, what: str) -> np.ndarray:
        """Input i's value, which must be known at import (a size, axes, a count)."""
        k = self.known(i)
        if k is None:
            self.fail(f"{self.node.op_type}: {what} (input {i}, {self.node.input[i]!r}) is computed from data at "
                      "run time; spikec needs it known at import", error=FrontendError,
                      hint="export with static values for this operand, or bind the input with "
                           "from_onnx(..., constant_inputs={name: array})")
        return k

    def static_list(self, i: int, what: str) -> list:
        return [simplify(x) for x in np.asarray(self.static(i, what)).reshape(-1)]

    def static_scalar(self, i: int, what: str):
        k = self.static(i, what)
        if k.size != 1:
            self.fail(f"{self.node.op_type}: {what} must be a single value, got shape {list(k.shape)}")
        return simplify(k.reshape(-1)[0])

    def dtype(self, i: int) -> str:
        return self.val(i).dtype

    def shape(self, i: int) -> tuple:
        return self.val(i).shape

    def rank(self, i: int) -> int:
        return self.val(i).rank

    def attr(self, name: str, default: Any = None) -> Any:
        a = self._attrs.get(name)
        if a is None:
            return default
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, onnx.TensorProto):
            return numpy_helper.to_array(v)
        return v

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def attr_dtype(self, name: str) -> str | None:
        """The IR dtype of a tensor-valued attribute (Constant's value, ConstantOfShape's value)."""
        a = self._attrs.get(name)
        return None if a is None else ONNX_TO_IR.get(a.t.data_type)

    def axis(self, a: int, rank: int) -> int:
        if not -rank <= a < max(rank, 1):
            self.fail(f"{self.node.op_type}: axis {a} is out of range for rank {rank}", error=FrontendError)
        return a % rank if rank else 0

    # output
    def emit(self, op: str, /, n: int | None = None, regions=(), **args):
        """Emit one IR node; returns its Value (or the list of Values when `n` is given).
        `self` and `op` are positional-only so that an op's `self=` argument can pass through."""
        outs = self.imp.emit(self.g, op, args, self.loc, regions=regions, where=self.where)
        return outs if n is not None else outs[0]

    def cast(self, v, dtype: str):
        return v if v.type.dtype == dtype else self.emit("_to_copy", self=v, dtype=torch_dtype(dtype))

    def const(self, array: np.ndarray, dtype: str, hint: str = "c"):
        return self.tensor(Val(known=np.asarray(array), dtype=dtype, name=hint))

    def region(self, gp: onnx.GraphProto, name: str, in_types: list, captures: list[str] | None = None):
        return self.imp.import_region(gp, name, in_types, self.env, captures, self.loc)

    def inline(self, gp: onnx.GraphProto) -> list[Val]:
        return self.imp.inline_graph(gp, self.g, self.env, self.loc)

    def fail(self, message: str, hint: str | None = None, error=UnsupportedOpError):
        raise error(message, where=self.where, hint=hint)


# -- the importer ---------------------------------------------------------------
class _Importer:
    def __init__(self, model: onnx.ModelProto, label: str, symbols: dict, constant_inputs: dict):
        from .onnx_ops import RULES
        self.rules = RULES
        self.model, self.label = model, label
        self.opset = next((o.version for o in model.opset_import if o.domain in _ONNX_DOMAINS), 1)
        self.symbol_ranges = dict(symbols)
        self.constant_inputs = dict(constant_inputs)
        self.elem_types = _elem_types(model)
        self.g = Graph("main")
        self.ctx: InferContext | None = None
        self._dim_syms: dict[str, sympy.Symbol] = {}
        self._counter = 0
        self._emitted: set[int] = set()    # nodes made for the ONNX node being imported

    # symbols
    def _declare(self, name: str, rng: tuple) -> sympy.Symbol:
        self.g.symbols[name] = tuple(rng)
        if self.ctx is not None:
            self.ctx.symbols[name] = tuple(rng)
        return sym(name)

    def input_dim(self, d, input_name: str, axis: int):
        kind = d.WhichOneof("value")
        if kind == "dim_value" and d.dim_value < 0:
            raise FrontendError(f"graph input {input_name!r} has the negative size {d.dim_value} at axis {axis}",
                                hint="a dim is a size >= 0, or a dim_param name for a symbolic size")
        if kind == "dim_value":
            return int(d.dim_value)
        raw = d.dim_param if kind == "dim_param" and d.dim_param else f"{input_name}_{axis}"
        if raw in self._dim_syms:
            return self._dim_syms[raw]
        base = re.sub(r"\W", "_", raw.strip()) or "d"
        if not (base[0].isalpha() or base[0] == "_"):
            base = "s_" + base
        name, i = base, 1
        while name in self.g.symbols:
            name, i = f"{base}_{i}", i + 1
        rng = self.symbol_ranges.get(raw, self.symbol_ranges.get(name, (1, None)))
        self._dim_syms[raw] = self._declare(name, rng)
        return self._dim_syms[raw]

    def fresh_symbol(self) -> sympy.Symbol:
        while f"u{self._counter}" in self.g.symbols:
            self._counter += 1
        return self._declare(f"u{self._counter}", (0, None))

    def input_type(self, vi: onnx.ValueInfoProto) -> TensorType:
        kind = vi.type.WhichOneof("value")
        if kind != "tensor_type":
            raise UnsupportedOpError(f"graph input {vi.name!r} is a {kind}; only tensor inputs are supported")
        tt = vi.type.tensor_type
        dtype = ir_dtype(tt.elem_type, f"graph input {vi.name!r}")
        if not tt.HasField("shape"):
            raise FrontendError(f"graph input {vi.name!r} has no shape (its rank is unknown)",
                                hint="export with a known rank for every input")
        return TensorType(tuple(self.input_dim(d, vi.name, i) for i, d in enumerate(tt.shape.dim)), dtype)

    # values
    def materialize(self, v: Val, g: Graph, hint: str, loc: Loc | None = None):
        if v.ir is not None:
            return v.ir
        if is_symbolic(v.known):
            v.ir = self._symbolic_tensor(v, g, loc)
            return v.ir
        t = to_torch(v.known, v.dtype)
        base = v.name or hint or "c"
        key, i = base, 1
        while key in self.g.constants:
            key, i = f"{base}_{i}", i + 1
        self.g.constants[key] = t           # one table for the graph and its regions
        v.ir = g.add_node("constant", {"name": key}, [TensorType.of(t)], names=[key]).output
        return v.ir

    def _symbolic_tensor(self, v: Val, g: Graph, loc):
        """A known array holding sympy dims, built from `full` nodes."""
        td = torch_dtype(v.dtype)
        flat = list(v.known.reshape(-1))
        if v.known.ndim == 0:
            return self.emit(g, "full", {"size": [], "fill_value": flat[0], "dtype": td}, loc)[0]
        parts = [self.emit(g, "full", {"size": [1], "fill_value": x, "dtype": td}, loc)[0] for x in flat]
        out = parts[0] if len(parts) == 1 else self.emit(g, "cat", {"tensors": parts}, loc)[0]
        if v.known.ndim != 1:
            out = self.emit(g, "reshape", {"self": out, "shape": list(v.known.shape)}, loc)[0]
        return out

    def emit(self, g: Graph, op: str, args: dict, loc, regions=(), where: str | None = None) -> list:
        opdef = get_op(op)
        try:
            types = infer_types(opdef, args, self.ctx, regions)
        except SpikecError:
            raise
        except Exception as e:
            shapes = ", ".join(f"{k}={v.type}" for k, v in args.items() if hasattr(v, "type"))
            raise FrontendError(f"{op}({shapes}) is rejected by shape inference: {_first_line(e)}",
                                where=where) from e
        types = [self._bind_wildcards(t) for t in types]
        node = g.add_node(op, args, types, loc=loc, regions=list(regions))
        self._emitted.add(id(node))
        return node.outputs

    def _bind_wildcards(self, t):
        """Data-dependent sizes (NonZero) come back as `?u..`; give each a declared symbol."""
        if not isinstance(t, TensorType):
            return t
        wild = {s for s in t.symbols() if s.startswith(WILDCARD_PREFIX)}
        if not wild:
            return t
        mapping = {}
        for s in sorted(wild):
            mapping[sympy.Symbol(s)] = self.fresh_symbol()
        dims = []
        for d in t.shape:
            if isinstance(d, int):
                dims.append(d)
            else:
                dims.append(d.xreplace({fs: mapping[sympy.Symbol(fs.name)] for fs in d.free_symbols
                                        if fs.name.startswith(WILDCARD_PREFIX)}))
        return TensorType(tuple(dims), t.dtype)

    # graphs
    def run(self) -> Graph:
        gp, g = self.model.graph, self.g
        if len(gp.sparse_initializer):
            raise UnsupportedOpError("sparse initializers are not supported")
        inputs = {vi.name for vi in gp.input}
        unknown = set(self.constant_inputs) - inputs
        if unknown:
            raise FrontendError(f"constant_inputs names {sorted(unknown)}, which are not graph inputs "
                                f"(inputs: {sorted(inputs)})")
        init_names = {t.name for t in gp.initializer}
        env: dict[str, Val] = {}
        for vi in gp.input:
            if vi.name in init_names:          # IR < 4 lists initializers as inputs too
                continue
            if vi.name in self.constant_inputs:
                dtype = ir_dtype(vi.type.tensor_type.elem_type, f"graph input {vi.name!r}")
                env[vi.name] = Val(known=np.asarray(self.constant_inputs[vi.name]), dtype=dtype, name=vi.name)
                continue
            env[vi.name] = Val(ir=g.add_input(self.input_type(vi), vi.name))
        self.ctx = InferContext(g.symbols, g.constants)
        self._add_initializers(gp, env)
        self.body(gp, g, env, self.label)
        outs = []
        for vi in gp.output:
            if vi.name not in env:
                raise FrontendError(f"graph output {vi.name!r} is not produced by any node")
            outs.append(self.materialize(env[vi.name], g, vi.name))
        g.set_outputs(outs)
        _prune(g)
        used = {n.args["name"] for n in g.walk() if n.op == "constant"}
        for key in [k for k in g.constants if k not in used]:
            del g.constants[key]
        return g

    def _add_initializers(self, gp: onnx.GraphProto, env: dict):
        for init in gp.initializer:
            dtype = ir_dtype(init.data_type, f"initializer {init.name!r}")
            try:
                arr = numpy_helper.to_array(init)
            except Exception as e:
                raise FrontendError(f"cannot read initializer {init.name!r}: {_first_line(e)}",
                                    hint="load external data with the model (onnx.load(path))") from e
            env[init.name] = Val(known=arr, dtype=dtype, name=init.name)

    def body(self, gp: onnx.GraphProto, g: Graph, env: dict, file: str):
        defined = {v.name for v in gp.input} | {t.name for t in gp.initializer}
        for i, node in enumerate(gp.node):
            loc = Loc(file, i)
            for name in node.output:        # ONNX graphs are SSA: one producer per name
                if name and name in defined:
                    raise FrontendError(f"{node.op_type} node {node.name or '<unnamed>'!r} defines {name!r}, which an "
                                        "earlier node, input or initializer already defines",
                                        where=f"{loc} (ONNX node {node.name or '<unnamed>'!r}, {node.op_type})")
                defined.add(name)
            self.node(node, g, env, loc)

    def node(self, node: onnx.NodeProto, g: Graph, env: dict, loc: Loc):
        where = f"{loc} (ONNX node {node.name or '<unnamed>'!r}, {node.op_type})"
        domain = node.domain or ""
        rule = self.rules.get(node.op_type) if domain in _ONNX_DOMAINS else None
        if rule is None:
            op = node.op_type if domain in _ONNX_DOMAINS else f"{domain}::{node.op_type}"
            raise UnsupportedOpError(
                f"unsupported ONNX op {op} (node {node.name or '<unnamed>'!r}, #{loc.line})", where=where,
                hint="spikec.frontend.onnx_ops.supported_ops() lists the supported ops" +
                     ("; a custom-domain op needs a model-local function" if domain not in _ONNX_DOMAINS else ""))
        extra = [a.name for a in node.attribute if a.name not in rule.attrs]
        if extra:
            raise UnsupportedOpError(f"{node.op_type}: attribute(s) {', '.join(extra)} not supported "
                                     f"(node {node.name or '<unnamed>'!r}, #{loc.line})", where=where)
        _check_schema(node, self.opset, where)
        for name in node.input:
            if name and name not in env:
                raise FrontendError(f"{node.op_type} reads {name!r}, which no earlier node or input defines",
                                    where=where)
        cx = Cx(self, node, g, env, loc, where)
        self._emitted = set()
        try:
            outs = self._fold(rule, cx)
            if outs is None:
                outs = rule.emit(cx)
        except SpikecError:
            raise
        except Exception as e:
            raise FrontendError(f"cannot import {node.op_type}: {_first_line(e)}", where=where) from e
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        for name, out in zip(node.output, outs):
            if not name or out is None:
                continue
            v = out if isinstance(out, Val) else Val(ir=out)
            v = self._fix_dtype(v, name, cx)
            self._name_after(v, name, g)
            env[name] = v

    def _name_after(self, v: Val, name: str, g: Graph):
        # A result made for this node reads better under its ONNX name than as a number.
        ir = v.ir
        if ir is None or ir.producer is None or id(ir.producer) not in self._emitted or not ir.name.isdigit():
            return
        g.rename(ir, name)

    def _fold(self, rule, cx: Cx):
        """Evaluate the node at import when its inputs are known shape-like data."""
        if rule.fold is None:
            return None
        vals = [cx.val(i) if cx.has(i) else None for i in range(cx.n_inputs)]
        present = [v for v in vals if v is not None]
        if not present or any(v.known is None for v in present):
            return None
        if not any(is_symbolic(v.known) for v in present):
            for v in present:
                # integer shape data folds up to FOLD_LIMIT; floats only through exact data movement, tiny
                limit = (FOLD_LIMIT if v.dtype in INT_DTYPES | {"bool"} else
                         FLOAT_FOLD_LIMIT if rule.moves_only and v.dtype in NUMPY_DTYPES else -1)
                if v.known.size > limit:
                    return None
        try:
            outs = rule.fold(cx, *[v.known if v is not None else None for v in vals])
        except NoFold:
            return None
        if outs is None:
            return None
        result = []
        for o in outs:
            arr, dtype = o if isinstance(o, tuple) else (o, present[0].dtype)
            arr = np.asarray(arr, dtype=object) if not isinstance(arr, np.ndarray) else arr
            if arr.size > (FOLD_LIMIT if dtype in INT_DTYPES | {"bool"} else FLOAT_FOLD_LIMIT) and not is_symbolic(arr):
                return None
            result.append(Val(known=_normalize(arr), dtype=dtype))
        return result

    def _fix_dtype(self, v: Val, name: str, cx: Cx) -> Val:
        """Keep ONNX's dtype where aten would promote (int32 sum -> int64, int pow float -> float)."""
        want = self.elem_types.get(name)
        want = ONNX_TO_IR.get(want) if want else None
        if want is None or want == v.dtype:
            return v
        if v.ir is None:
            return Val(known=v.known, dtype=want)
        return Val(ir=cx.cast(v.ir, want))

    def import_region(self, gp: onnx.GraphProto, name: str, in_types: list, outer_env: dict,
                      captures: list[str] | None, loc: Loc):
        """A subgraph (Scan body, If branch) as an IR region. Outer values it reads
        become extra region inputs (returned, to pass as operands); known ones are
        copied in as known values."""
        sub = Graph(name)
        env: dict[str, Val] = {}
        if len(in_types) != len(gp.input):
            raise FrontendError(f"subgraph {gp.name!r} takes {len(gp.input)} inputs, got {len(in_types)}")
        for vi, t in zip(gp.input, in_types):
            env[vi.name] = Val(ir=sub.add_input(t, vi.name))
        self._add_initializers(gp, env)
        captured = []
        for cname in (captures if captures is not None else free_names(gp)):
            if cname in env:
                continue
            ov = outer_env.get(cname)
            if ov is None:
                raise FrontendError(f"subgraph {gp.name!r} reads {cname!r}, which is not defined outside it")
            if ov.known is not None:
                env[cname] = Val(known=ov.known, dtype=ov.dtype, name=ov.name)
            else:
                env[cname] = Val(ir=sub.add_input(ov.ir.type, cname))
                captured.append(ov.ir)
        self.body(gp, sub, env, f"{loc.file}#{loc.line}/{gp.name or name}")
        sub.set_outputs([self.materialize(env[o.name], sub, o.name) for o in gp.output])
        return sub, captured

    def inline_graph(self, gp: onnx.GraphProto, g: Graph, outer_env: dict, loc: Loc) -> list[Val]:
        """Import a subgraph's nodes into `g` itself (an If whose condition is known)."""
        env = dict(outer_env)
        self._add_initializers(gp, env)
        self.body(gp, g, env, f"{loc.file}#{loc.line}/{gp.name or 'branch'}")
        return [env[o.name] for o in gp.output]


def _check_schema(node: onnx.NodeProto, opset: int, where: str) -> None:
    """Input/output counts and required attributes against ONNX's own op schema, so a
    malformed node is named here instead of failing inside its import rule."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain or "")
    except Exception:           # no schema at this opset: the rule decides
        return
    n_in = len(node.input)
    while n_in and not node.input[n_in - 1]:        # trailing "" = omitted optional inputs
        n_in -= 1
    name = f"{node.op_type} node {node.name or '<unnamed>'!r}"
    if not schema.min_input <= n_in <= schema.max_input:
        want = (f"{schema.min_input}" if schema.min_input == schema.max_input else
                f"{schema.min_input} to {schema.max_input}" if schema.max_input < 2 ** 30 else
                f"at least {schema.min_input}")
        raise FrontendError(f"{name} has {n_in} input(s); {node.op_type} (opset {opset}) takes {want}", where=where)
    n_out = len(node.output)
    if not schema.min_output <= n_out <= schema.max_output:
        raise FrontendError(f"{name} has {n_out} output(s); {node.op_type} (opset {opset}) gives "
                            f"{schema.min_output} to {schema.max_output}", where=where)
    given = {a.name for a in node.attribute}
    missing = sorted(a for a, spec in schema.attributes.items() if spec.required and a not in given)
    if missing:
        raise FrontendError(f"{name} lacks the required attribute(s) {', '.join(missing)}", where=where)


def _prune(g: Graph) -> None:
    """Drop nodes whose results nothing reads (folded-away shape code, composed transposes).
    Every IR op is pure, so this changes no value."""
    live = {id(v) for v in g.outputs}
    for n in reversed(list(g.nodes)):
        if any(id(o) in live for o in n.outputs):
            live.update(id(v) for v in n.inputs)
            for r in n.regions:
                _prune(r)
        else:
            g.remove_node(n)


def _normalize(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != object:
        return arr
    out = np.empty(arr.shape, dtype=object)
    for idx, x in np.ndenumerate(arr):
        out[idx] = simplify(x)
    return out


def from_onnx(model_or_path, *, symbols: dict | None = None, constant_inputs: dict | None = None,
              source_name: str | None = None) -> Graph:
    """Import an ONNX model (a path, bytes or an onnx.ModelProto) into a spikec Graph.

    Dims with a `dim_param` (or none at all) become symbols; their range is
    (1, None) unless `symbols={"T": (lo, hi)}` says otherwise. `constant_inputs`
    binds graph inputs to arrays at import (for operands that must be static,
    such as a Reshape target given as an input). `source_name` labels the
    locations when the model is not read from a file.
    """
    model, label = _load(model_or_path)
    if source_name:
        label = source_name
    if len(model.functions):
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:
            raise FrontendError(f"could not inline the model-local functions of {label}: {_first_line(e)}") from e
    g = _Importer(model, label, symbols or {}, constant_inputs or {}).run()
    verify(g, infer_types=False)
    return g
