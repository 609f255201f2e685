"""What each argument of a dynamo FX subgraph is, for spikec.

Dynamo hands a backend `gm(*args)` where args mix the user's tensors, the
module's parameters and buffers (lifted as inputs), and symbolic sizes. spikec
graphs take tensors only, so:

- a parameter / buffer becomes a graph constant (held by reference; the call
  checks it is still the same tensor). It stays an input instead when autograd
  needs its gradient (so the gradient reaches the user's Parameter), or when one
  subgraph serves several module instances with their own weights;
- a user tensor is a graph input, its symbolic dims kept symbolic;
- a symbolic size that is a dim of a user tensor is recomputed from that tensor;
  any other int is fixed to its value (the call checks it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy
import torch

from spikec.ir import UnsupportedOpError

_BRACKETS = re.compile(r"\[['\"]?([^'\"\]]+)['\"]?\]")


@dataclass
class Signature:
    n_args: int
    inputs: list[int] = field(default_factory=list)                    # arg positions -> graph inputs, in order
    input_names: list[str] = field(default_factory=list)               # names for those graph inputs
    # position -> (name, tensor, its version counter when traced)
    constants: dict[int, tuple[str, torch.Tensor, int | None]] = field(default_factory=dict)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)    # position -> (graph input #, axis)
    fixed: dict[int, int] = field(default_factory=dict)                # position -> the int it was traced with
    dims: dict[tuple[int, int], str] = field(default_factory=dict)     # (graph input #, axis) -> symbol name

    def same_weights(self, args) -> bool:
        """The weights in `args` are the very tensors baked into the graph, unchanged in place
        (passes may have folded them, a target may have packed a copy). They differ when
        dynamo shares one subgraph between instances of a module class (every MoE expert)."""
        return all(args[i] is t and version(t) == v for i, (_, t, v) in self.constants.items())

    def same_fixed(self, args) -> bool:
        return all(int(args[i]) == value for i, value in self.fixed.items())


def version(t: torch.Tensor) -> int | None:
    """The in-place update counter; inference-mode tensors have none (and cannot change)."""
    try:
        return t._version
    except RuntimeError:
        return None


def constant_name(node: torch.fx.Node) -> str:
    """`model.layers.0.attn.q_proj.weight` from dynamo's source of the placeholder."""
    grapharg = node.meta.get("grapharg")
    source = getattr(grapharg, "source", None)
    try:
        text = source.name() if callable(getattr(source, "name", None)) else str(getattr(source, "name", ""))
    except Exception:                                   # source kinds vary across torch versions
        text = ""
    parts = _BRACKETS.findall(text)[1:]          # the first names the frame's local (self) or global
    name = ".".join(parts)
    return name if name and all(re.fullmatch(r"[A-Za-z0-9_]+", p) for p in parts) else node.name


def _local_name(node: torch.fx.Node) -> str:
    """`input_ids` from dynamo's placeholder `l_input_ids_`."""
    name = re.sub(r"^[lLgG]_+", "", node.name).rstrip("_")
    return name or node.name


def _is_static_tensor(x) -> bool:
    # dynamo marks a module's parameters and buffers (inlined nn modules) as static inputs
    return isinstance(x, torch.nn.Parameter) or getattr(x, "_dynamo_static_input_type", None) is not None


def _fake(node: torch.fx.Node):
    return node.meta.get("example_value", node.meta.get("val"))


def _symbol(d) -> sympy.Symbol | None:
    expr = d.node.expr if isinstance(d, torch.SymInt) else None
    return expr if isinstance(expr, sympy.Symbol) else None


def read_signature(gm: torch.fx.GraphModule, example_inputs, *, grad: bool, weights_as_inputs: bool) -> Signature:
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(example_inputs):
        raise UnsupportedOpError(f"the subgraph has {len(placeholders)} inputs but dynamo gave "
                                 f"{len(example_inputs)} example inputs")
    sig = Signature(len(example_inputs))
    symbol_at: dict[sympy.Symbol, tuple[int, int]] = {}
    for i, (node, x) in enumerate(zip(placeholders, example_inputs)):
        if isinstance(x, torch.Tensor):
            if _is_static_tensor(x) and not weights_as_inputs and not (grad and x.requires_grad):
                sig.constants[i] = (constant_name(node), x, version(x))
                continue
            k = len(sig.inputs)
            sig.inputs.append(i)
            sig.input_names.append(constant_name(node) if _is_static_tensor(x) else _local_name(node))
            fake = _fake(node)
            for axis, d in enumerate(getattr(fake, "shape", ())):
                s = _symbol(d)
                if s is not None:
                    symbol_at.setdefault(s, (k, axis))
                    sig.dims[(k, axis)] = str(s)
                elif isinstance(d, torch.SymInt):
                    sig.dims[(k, axis)] = ""            # symbolic, but an expression: let torch name it
    for i, (node, x) in enumerate(zip(placeholders, example_inputs)):
        if isinstance(x, torch.Tensor):
            continue
        if isinstance(x, bool) or not isinstance(x, (int, torch.SymInt)):
            raise UnsupportedOpError(f"subgraph input {node.name} is a {type(x).__name__}; spikec graphs take "
                                     "tensors and sizes")
        s = _symbol(_fake(node)) or _symbol(x)     # at call time x is a plain int; the meta keeps its symbol
        if s is not None and s in symbol_at:
            sig.sizes[i] = symbol_at[s]
        else:
            hint = x.node.hint if isinstance(x, torch.SymInt) else x
            if hint is None:
                raise UnsupportedOpError(f"subgraph input {node.name} is a data-dependent size with no value")
            sig.fixed[i] = int(hint)
    return sig
