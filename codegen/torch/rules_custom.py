"""torch.library custom ops (`ns::op`): the torch target calls the op itself,
so whatever kernels and autograd formula its author registered apply."""
from __future__ import annotations

from .table import TORCH_RULES


@TORCH_RULES.category_rule("custom")
def _custom_op(node, e):
    (overload,) = node.opdef.torch_targets
    args, kwargs, positional = [], {}, True
    for a in overload._schema.arguments:
        if a.name not in node.args:
            positional = False
            continue
        if positional and not a.kwarg_only:
            args.append(e.arg(a.name))
        else:
            kwargs[a.name] = e.arg(a.name)
    qual = f"torch.ops.{overload.namespace}.{overload._schema.name.split('::', 1)[1]}.{overload._overloadname}"
    returns = [str(r.type) for r in overload._schema.returns]
    e.unpack_one = len(node.outputs) == 1 and (len(returns) > 1 or returns[0].startswith("List"))
    return e.call(qual, *args, **kwargs)
