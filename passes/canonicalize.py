"""canonicalize: local simplifications, one rule per line in a table."""
from spikec.ir import Graph

from .registry import register
from .rewrite import Pat, Rewrite, Var, apply_patterns

x, y = Var("x"), Var("y")


def _same_type(m):
    return m.root.outputs[0].type == m["x"].type


def _identity_perm(m):
    return list(m["p"]) == list(range(len(m["p"])))


def _compose_perm(m, b):
    inner, outer = m["p"], m["q"]
    return b.op("permute", {"self": m["x"], "dims": [inner[i] for i in outer]})


def _reshape_chain(m, b):
    return b.op("view", {"self": m["x"], "size": list(m.root.outputs[0].type.shape)})


def _forward_x(m, b):
    return m["x"]


RULES = [
    # identities (1 also matches 1.0; only where the result type is the input's: int * 1.0 is a float)
    Rewrite("mul-one", Pat("mul", x, 1, where=_same_type), _forward_x),
    Rewrite("add-zero", Pat("add", x, 0, where=_same_type), _forward_x),
    Rewrite("sub-zero", Pat("sub", x, 0, where=_same_type), _forward_x),
    Rewrite("div-one", Pat("div", x, 1, where=_same_type), _forward_x),
    Rewrite("neg-neg", Pat("neg", Pat("neg", x)), _forward_x),
    # copies and aliases are the same value in a functional IR
    Rewrite("clone", Pat("clone", x, where=_same_type), _forward_x),
    Rewrite("alias", Pat("alias", x), _forward_x),
    Rewrite("detach", Pat("detach", x), _forward_x),
    Rewrite("lift-fresh-copy", Pat("lift_fresh_copy", x), _forward_x),
    Rewrite("to-copy-same-dtype", Pat("_to_copy", x, where=_same_type), _forward_x),
    # shape ops that do nothing, and chains that collapse
    Rewrite("view-noop", Pat("view", x, Var("s"), where=_same_type), _forward_x),
    Rewrite("reshape-noop", Pat("reshape", x, Var("s"), where=_same_type), _forward_x),
    Rewrite("expand-noop", Pat("expand", x, Var("s"), where=_same_type), _forward_x),
    Rewrite("permute-identity", Pat("permute", x, Var("p"), where=_identity_perm), _forward_x),
    Rewrite("permute-permute", Pat("permute", Pat("permute", x, Var("p")), Var("q")), _compose_perm),
    Rewrite("view-view", Pat("view", Pat("view", x, Var("s")), Var("t")), _reshape_chain),
    Rewrite("reshape-view", Pat("view", Pat("reshape", x, Var("s")), Var("t")), _reshape_chain),
]


@register("canonicalize")
def canonicalize(graph: Graph) -> None:
    """Fold identities (x*1, x+0, --x), drop copies and no-op shape ops, collapse view/permute chains."""
    apply_patterns(graph, RULES)
