"""The torch target's rule table, and the one list of modules that fill it.

A rule is `fn(node, e) -> str | None`: it returns the Python expression whose
value is the node's output (a tuple for several outputs), or emits the
statements itself through `e` and returns None. `e` is the NodeEmitter
(see emitter.py) that writes arguments, locals and imports.
"""
from __future__ import annotations

import importlib
from typing import Callable

from spikec.ir import Graph, Node

from ..errors import LoweringError
from ..rules import RuleTable

# The modules (in this package) whose import registers rules, in order. A new
# family of ops gets its own file here (rules_spike.py, ...) and a line below.
RULE_MODULES: tuple[str, ...] = (
    "rules_structured",   # constant, scan, while_loop, cond
    "rules_aten",         # the core aten ops: handwritten special cases, the rest generated from the registry
    "rules_fused",        # linear_attention, attention, sliding_window_attention -> kernels/
    "rules_custom",       # torch.library custom ops: call the op itself
    "rules_spike",        # spike_encode/_train/_decode/_linear, straight_through, int8_fake_quant (STE kernels)
    "rules_lif",          # lif (multi-step LIF neuron, ATan surrogate gradient)
    "rules_moe",          # moe, grouped_matmul (grouped GEMM kernel), moe_route/_permute/_combine, all_to_all, shard
)


class TorchRuleTable(RuleTable):
    """A RuleTable that can be copied for a derived target and overridden op by op,
    and that may lower a whole op category (e.g. "custom") with one rule."""

    def __init__(self, target: str):
        super().__init__(target)
        self._by_category: dict[str, Callable] = {}

    def override(self, *ops: str):
        """Decorator: replace the rule of each op in `ops` (it must have one already)."""
        def deco(fn):
            for op in ops:
                if op not in self._rules:
                    raise ValueError(f"target {self.target!r}: op {op!r} has no rule to override; use .rule()")
                self._rules[op] = fn
            return fn
        return deco

    def category_rule(self, category: str):
        """Decorator: `fn` lowers every op of `category` that has no rule of its own."""
        def deco(fn):
            self._by_category[category] = fn
            return fn
        return deco

    def copy(self, target: str) -> "TorchRuleTable":
        """The same rules under another target's name, to override some of them."""
        new = TorchRuleTable(target)
        new._rules = dict(self._rules)
        new._by_category = dict(self._by_category)
        return new

    def lookup(self, op: str) -> Callable | None:
        fn = self._rules.get(op)
        if fn is None and self._by_category:
            from spikec.ir import get_op, has_op
            if has_op(op):
                fn = self._by_category.get(get_op(op).category)
        return fn

    def __contains__(self, op: str) -> bool:
        return self.lookup(op) is not None

    def get(self, node: Node) -> Callable:
        fn = self.lookup(node.op)
        if fn is None:
            return super().get(node)          # raises the LoweringError naming op, target and line
        return fn

    def missing(self, graph: Graph) -> list[Node]:
        seen: dict[str, Node] = {}
        for n in graph.walk():
            if n.op not in seen and self.lookup(n.op) is None:
                seen[n.op] = n
        return list(seen.values())


TORCH_RULES = TorchRuleTable("torch")

_loaded = False


def load_rules() -> TorchRuleTable:
    """Import every module in RULE_MODULES (once); returns the filled table."""
    global _loaded
    if not _loaded:
        for name in RULE_MODULES:
            importlib.import_module(f"{__package__}.{name}")
        _loaded = True
    return TORCH_RULES


def rule_error(node: Node, target: str, msg: str, hint: str | None = None) -> LoweringError:
    """A LoweringError for a node a rule cannot handle in this particular form."""
    return LoweringError(f"target {target!r} cannot lower {node.op!r}: {msg}", where=node.where(), hint=hint)
