"""fold-constants: compute nodes whose inputs are all known tensors at compile time."""
import torch

from spikec.ir import Graph, TensorType, Value

from .manager import stat
from .registry import register


def _static_literal(a) -> bool:
    if isinstance(a, (list, tuple)):
        return all(_static_literal(x) for x in a)
    return isinstance(a, (int, float, bool, str, type(None), torch.dtype, Value))


@register("fold-constants")
def fold_constants(graph: Graph, *, max_elements: int = 65536) -> None:
    """Evaluate nodes with only constant inputs and static small results into new constants."""
    known: dict[int, torch.Tensor] = {}
    for node in list(graph.nodes):
        if node.op == "constant":
            t = graph.constants.get(node.args["name"])
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                known[id(node.output)] = t
            continue
        opdef = node.opdef
        if (node.regions or opdef.category != "core" or len(node.outputs) != 1
                or not isinstance(node.output.type, TensorType) or not node.output.type.is_static
                or not all(_static_literal(a) for a in node.args.values())
                or any(id(v) not in known for v in node.inputs)):
            continue
        numel = 1
        for d in node.output.type.shape:
            numel *= d
        if numel > max_elements:
            continue
        args = {k: _sub(a, known) for k, a in node.args.items()}
        with torch.no_grad():
            value = opdef.call(args)
        new = graph.make_node("constant", {"name": ""}, [node.output.type], loc=node.loc, names=[f"folded.{node.op}"])
        name = new.output.name            # the value's fresh name doubles as the table key
        new.args = {"name": name}
        graph.constants[name] = value
        graph.insert_before(node, new)
        graph.replace_all_uses(node.output, new.output)
        graph.nodes.remove(node)
        known[id(new.output)] = value
        stat("folded")


def _sub(a, known):
    if isinstance(a, Value):
        return known[id(a)]
    if isinstance(a, (list, tuple)):
        return [_sub(x, known) for x in a]
    return a

