"""Which linear projections get spike-coded inputs: names, patterns and the default sets.

A projection is a `linear(input, weight, bias)` node. Its name is the name of its weight
constant without `.weight` (`model.layers.0.attn.q_proj`), as `from_torch` records the
module's parameters; a projection whose weight is not a named constant is known only by
its source location (`models/gla_layer.py:59`). A target pattern is an fnmatch glob
matched against both (and against "." + name, so `*.q_proj` also matches a top-level
`q_proj`); `!pattern` excludes. Two named sets:

  default  W8ASpike's QuantLinear layers: q, k, v, o and the low-rank gate projection of
           attention (gk_proj.0 and .1), gate and up of the FFN; not down_proj, not lm_head
  all      the paper's "every linear projection input"
  none     no projection (with kv_int8 / swa_query alone)
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from spikec.ir import Graph, Node, Value

from .errors import PipelineError

TARGET_SETS: dict[str, tuple[str, ...]] = {
    "default": ("*.q_proj", "*.k_proj", "*.v_proj", "*.o_proj", "*.gk_proj.*",
                "*.gate_proj", "*.up_proj"),
    "all": ("*",),
    "none": (),                 # only kv_int8 / swa_query
}

# Ops that may sit between a weight constant and the linear without changing which weight it is.
_WEIGHT_WRAPPERS = ("int8_fake_quant", "_to_copy", "detach", "alias", "clone")


def weight_name(v: Value) -> str | None:
    """The constant name behind a weight operand (through fake-quant and casts), or None."""
    p = v.producer
    while p is not None and p.op in _WEIGHT_WRAPPERS:
        v = p.inputs[0]
        p = v.producer
    if p is not None and p.op == "constant":
        return p.args["name"]
    return None


def projection_name(node: Node) -> str:
    """`model.layers.0.attn.q_proj` for a linear whose weight is that constant; else its location."""
    w = weight_name(node.arg("weight"))
    if w is not None:
        return w[:-len(".weight")] if w.endswith(".weight") else w
    return str(node.loc) if node.loc else f"%{node.outputs[0].name}"


@dataclass(frozen=True)
class TargetSpec:
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    @staticmethod
    def parse(targets) -> "TargetSpec":
        items = [targets] if isinstance(targets, str) else list(targets)
        inc: list[str] = []
        exc: list[str] = []
        named_none = False
        for item in items:
            for t in str(item).split("|"):
                t = t.strip()
                if not t:
                    continue
                if t.startswith("!"):
                    exc.append(t[1:])
                else:
                    inc.extend(TARGET_SETS.get(t, (t,)))
                    named_none |= t == "none"
        if not inc and not named_none:
            raise PipelineError("insert-spike-coding: no target patterns given",
                                hint="targets=default, targets=all, or globs such as *.q_proj|*.up_proj")
        return TargetSpec(tuple(inc), tuple(exc))

    def matches(self, node: Node) -> bool:
        name = projection_name(node)
        # "." + name too, so that *.q_proj also matches a top-level module's q_proj
        keys = [name, "." + name] + ([str(node.loc)] if node.loc else [])
        hit = any(fnmatchcase(k, p) for k in keys for p in self.include)
        return hit and not any(fnmatchcase(k, p) for k in keys for p in self.exclude)


def select_projections(graph: Graph, targets) -> list[Node]:
    """The `linear` nodes the target patterns choose, in program order."""
    spec = targets if isinstance(targets, TargetSpec) else TargetSpec.parse(targets)
    return [n for n in graph.nodes if n.op == "linear" and spec.matches(n)]
