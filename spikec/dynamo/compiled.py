"""What the backend returns for one dynamo subgraph: the spikec-compiled module,
called with dynamo's convention (flat args in, tuple out), that runs the subgraph
eagerly — never crashing the user's model — when spikec cannot run it."""
from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

import sympy
import torch

from spikec import passes
from spikec.codegen import get_target
from spikec.ir import Graph, SpikecError, TensorType, UnsupportedOpError, get_op, torch_dtype

from .capture import capture
from .options import BackendOptions
from .signature import Signature, read_signature

log = logging.getLogger("spikec.dynamo")

# Targets whose compiled modules are differentiable torch code (the others run inference only).
AUTOGRAD_TARGETS = ("torch",)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def log_eager(name: str, why: BaseException | str) -> None:
    """The one log line a subgraph that runs eagerly gets. A spikec error (an unsupported
    op, a lowering the target lacks) is expected: info; anything else is a spikec bug: warning."""
    expected = isinstance(why, (str, SpikecError))
    text = why if isinstance(why, str) else _first_line(why)
    level = logging.INFO if expected else logging.WARNING
    log.log(level, "spikec backend: %s runs eagerly: %s", name, text,
            exc_info=isinstance(why, BaseException) and log.isEnabledFor(logging.DEBUG))


@dataclass
class Variant:
    """One compilation of the subgraph: what it accepts and the compiled module."""
    sig: Signature
    # per input: dtype, static sizes (None where symbolic), (symbol, axis, lo, hi) of ranged dims
    shapes: list[tuple[torch.dtype, list[int | None], list[tuple[str, int, int, int | None]]]]
    module: object

    def accepts(self, inputs) -> bool:
        for x, (dtype, static, ranged) in zip(inputs, self.shapes):
            if x.dtype != dtype or x.dim() != len(static):
                return False
            if any(d is not None and d != n for d, n in zip(static, x.shape)):
                return False
            if any(not (lo <= x.shape[axis] and (hi is None or x.shape[axis] <= hi)) for _, axis, lo, hi in ranged):
                return False
        return True


def _input_shapes(g: Graph) -> list:
    shapes = []
    for v in g.inputs:
        t = v.type
        if not isinstance(t, TensorType):
            raise UnsupportedOpError(f"graph input %{v.name} is not a tensor")
        static = [d if isinstance(d, int) else None for d in t.shape]
        ranged = []
        for axis, d in enumerate(t.shape):
            if isinstance(d, sympy.Symbol) and d.name in g.symbols:
                lo, hi = g.symbols[d.name]
                ranged.append((d.name, axis, lo or 0, hi))
        shapes.append((torch_dtype(t.dtype), static, ranged))
    return shapes


class SpikecSubgraph:
    """Callable as dynamo calls a compiled subgraph: `fn(*args) -> tuple of tensors`."""

    def __init__(self, gm: torch.fx.GraphModule, opts: BackendOptions, name: str):
        self.gm = gm
        self.opts = opts
        self.target = get_target(opts.target)
        self.name = name
        self.variants: list[Variant] = []
        self.eager_reason: str | None = None      # set once: every later call runs eagerly
        self._miss_logged = False

    # -- compiling ------------------------------------------------------------
    def add_variant(self, args, *, dynamic: bool, weights_as_inputs: bool = False) -> Variant:
        grad = torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
        if grad and self.target.name not in AUTOGRAD_TARGETS:
            raise UnsupportedOpError(f"target {self.target.name!r} compiles inference only and this subgraph "
                                     "needs gradients", hint="use target 'torch' to train, or torch.no_grad()")
        t0 = time.perf_counter()
        sig = read_signature(self.gm, args, grad=grad, weights_as_inputs=weights_as_inputs)
        g = capture(self.gm, args, sig, dynamic=dynamic, name=f"dynamo_{len(self.variants)}")
        t1 = time.perf_counter()
        repro = os.path.join(tempfile.gettempdir(), "spikec-dynamo")   # not the user's working directory
        g = passes.PassManager(self.opts.pipeline, repro_dir=repro).run(g)
        t2 = time.perf_counter()
        module = self.target.lower(g, **self.opts.target_options)
        variant = Variant(sig, _input_shapes(g), module)
        self.variants.append(variant)
        if log.isEnabledFor(logging.DEBUG):
            fused = Counter(n.op for n in g.nodes if get_op(n.op).category == "fused")
            log.debug("spikec backend: compiled %s for %s: %d inputs, %d nodes, fused ops {%s}; "
                      "capture %.2fs, passes %.2fs, lower %.2fs", self.name, self.target.name, len(g.inputs),
                      len(g.nodes), ", ".join(f"{k}: {v}" for k, v in sorted(fused.items())),
                      t1 - t0, t2 - t1, time.perf_counter() - t2)
        return variant

    # -- calling --------------------------------------------------------------
    def __call__(self, *args):
        if self.eager_reason is None:
            variant = None
            for v in self.variants:
                if v.sig.same_weights(args) and v.sig.same_fixed(args) and v.accepts([args[i] for i in v.sig.inputs]):
                    variant = v
                    break
            if variant is None:
                variant = self._specialize(args)
            if variant is not None:
                inputs = [args[i] for i in variant.sig.inputs]
                try:
                    return tuple(variant.module.run(*inputs))
                except Exception as e:                   # eager gives the user's answer (or their error)
                    if self.opts.fallback == "error":
                        raise
                    self.eager_reason = _first_line(e)
                    log_eager(self.name, e)
        return self.gm(*args)

    def _specialize(self, args) -> Variant | None:
        """A static compilation for arguments no variant accepts (new shapes dynamo did
        not make symbolic, or new weights); eager once `max_specializations` are spent."""
        if len(self.variants) > self.opts.max_specializations:
            if self.opts.fallback == "error":
                raise SpikecError(f"{self.name}: no compiled variant accepts these inputs and "
                                  f"max_specializations={self.opts.max_specializations} are spent")
            if not self._miss_logged:
                self._miss_logged = True
                log_eager(self.name, f"inputs no compiled variant accepts (max_specializations="
                                     f"{self.opts.max_specializations} spent); those calls run eagerly")
            return None
        # Other weights than every compiled variant holds: the subgraph serves several module
        # instances, so compile it (once, symbolic like dynamo's graph) with weights as inputs.
        shared = [v for v in self.variants if not v.sig.constants]
        new_weights = not shared and all(not v.sig.same_weights(args) for v in self.variants)
        try:
            if shared or new_weights:
                return self.add_variant(args, dynamic=new_weights, weights_as_inputs=True)
            return self.add_variant(args, dynamic=False)
        except Exception as e:
            if self.opts.fallback == "error":
                raise
            self.eager_reason = _first_line(e)
            log_eager(self.name, e)
            return None
