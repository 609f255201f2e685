"""A dynamo FX subgraph -> a spikec Graph, through the torch.export frontend.

The subgraph is wrapped in a module that holds its parameters and buffers as
attributes and takes only the tensor inputs, then exported (non-strict) with the
dims dynamo made symbolic marked dynamic, decomposed like `spikec.frontend.from_torch`
and imported by the same importer; weights become graph constants by reference.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.fx import Interpreter
from torch.fx.traceback import preserve_node_meta

from spikec.frontend.quiet import held_output
from spikec.frontend.torch_import import _Importer, decomposition_table
from spikec.ir import FrontendError, Graph, verify

from .signature import Signature


class _Holder(nn.Module):
    """One level of a dotted constant name (model.layers.0...)."""


class LiftedSubgraph(nn.Module):
    """`gm` with its constants as attributes; `forward(*tensor_inputs)`."""

    def __init__(self, gm: torch.fx.GraphModule, sig: Signature):
        super().__init__()
        self.sig = sig
        object.__setattr__(self, "_gm", gm)        # not a submodule: its own state is not the model's
        self._slots: dict[int, tuple[nn.Module, str]] = {}
        for i, (name, t, _) in sig.constants.items():
            self._slots[i] = self._place(name, t, i)

    def _place(self, name: str, t: torch.Tensor, i: int) -> tuple[nn.Module, str]:
        owner, parts = self, name.split(".")
        for p in parts[:-1]:
            child = owner._modules.get(p)
            if child is None:
                if hasattr(owner, p):
                    return self._place(f"arg{i}", t, i)      # the name cannot nest here
                child = _Holder()
                owner.add_module(p, child)
            owner = child
        leaf = parts[-1]
        if hasattr(owner, leaf):
            if name == f"arg{i}":
                raise FrontendError(f"cannot hold subgraph constant {name}")
            return self._place(f"arg{i}", t, i)
        if isinstance(t, nn.Parameter):
            owner.register_parameter(leaf, t)          # the user's Parameter itself: storage is shared
        else:
            owner.register_buffer(leaf, t)
        return owner, leaf

    def forward(self, *inputs):
        sig = self.sig
        args: list = [None] * sig.n_args
        for i, (owner, leaf) in self._slots.items():
            args[i] = getattr(owner, leaf)
        for k, i in enumerate(sig.inputs):
            args[i] = inputs[k]
        for i, (k, axis) in sig.sizes.items():
            args[i] = inputs[k].shape[axis]
        for i, value in sig.fixed.items():
            args[i] = value
        # Interpreter + preserve_node_meta: the exported nodes keep the stack traces dynamo
        # recorded, so spikec errors name the user's source line, not generated code.
        with preserve_node_meta():
            out = Interpreter(self._gm).run(*args)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _dynamic_shapes(sig: Signature, inputs) -> tuple:
    specs = [{} for _ in inputs]
    for (k, axis) in sig.dims:
        specs[k][axis] = torch.export.Dim.AUTO      # torch keeps it symbolic unless the code fixes it
    return (tuple(s or None for s in specs),)      # one entry: forward(*inputs) is a single varargs


def capture(gm: torch.fx.GraphModule, args, sig: Signature, *, dynamic: bool, name: str = "forward") -> Graph:
    """The spikec Graph of `gm` called with `args` (real tensors); symbolic dims stay
    symbolic when `dynamic`, else every dim is fixed to the one in `args`."""
    inputs = tuple(args[i] for i in sig.inputs)
    lifted = LiftedSubgraph(gm, sig)
    dyn = _dynamic_shapes(sig, inputs) if dynamic and sig.dims else None
    named = {key: s for key, s in sig.dims.items() if s} if dyn else {}
    try:
        # tracing(None): outside dynamo's tracing context, else export would adopt dynamo's fake
        # mode and leave guards on this wrapper's arguments in the frame dynamo is compiling.
        # held_output: a failed export's stderr dump would bury the one fallback log line.
        with torch._guards.tracing(None), held_output(), warnings.catch_warnings():
            # torch's own pytree deprecation notices; nothing a user can act on
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torch|copyreg)")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            ep = torch.export.export(lifted, inputs, dynamic_shapes=dyn, strict=False)
            ep = ep.run_decompositions(decomposition_table())
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise FrontendError(f"torch.export could not trace the subgraph: {type(e).__name__}: {first}") from e
    g = _Importer(ep, named).run()
    g.name = name
    for v, hint in zip(g.inputs, sig.input_names):     # the user's names, not the wrapper's inputs_N
        g.rename(v, hint)
    verify(g, infer_types=False)
    return g
