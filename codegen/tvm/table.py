"""The cpu target's rule table: op -> function(Lowering, Node) building Relax.
The rule modules fill it on import; `load_rules()` imports them all."""
import importlib

from spikec.codegen.rules import RuleTable

RULES = RuleTable("cpu")
RULE_MODULES = ("rules_elementwise", "rules_shape", "rules_reduce", "rules_index", "rules_linalg", "rules_fused")


def load_rules() -> RuleTable:
    for name in RULE_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    return RULES
