"""aten ops the mlir target rewrites before torch-mlir sees them, each for a measured
torch-mlir limitation: several index tensors (not lowered for dynamic sizes), an empty
accumulating scatter (NaNs), integer fmod (not lowered), select at a run-time index (wrong
element at lengths other than the traced one), tanh-approximate gelu (5e-5 off)."""
from __future__ import annotations

import torch

from .rules import RULES


def _flat_index(x, indices):
    """aten advanced indexing with several index tensors (which torch-mlir cannot lower for
    dynamic sizes) as one index into the indexed axes flattened together.
    Returns (x with the indexed axes flattened into axis 0, the linear index, axes, adjacent)."""
    idx = []
    for ix in indices:
        if ix is not None and ix.dtype == torch.bool:
            idx.extend(ix.nonzero().unbind(1))
        else:
            idx.append(ix)
    idx += [None] * (x.dim() - len(idx))
    axes = [d for d, ix in enumerate(idx) if ix is not None]
    rest = [d for d in range(x.dim()) if d not in axes]
    xt = x.permute(axes + rest)
    sizes = [x.shape[d] for d in axes]
    lin = None
    for d, size in zip(axes, sizes):
        i = idx[d].long()
        i = torch.where(i < 0, i + size, i)
        lin = i if lin is None else lin * size + i
    flat = xt.reshape([-1] + [x.shape[d] for d in rest])
    return flat, lin, axes, rest


def _adjacent(axes):
    return axes == list(range(axes[0], axes[-1] + 1))


@RULES.rule("index")
def _index(prog, node, args):
    x, indices = args["self"], args["indices"]
    if sum(ix is not None for ix in indices) <= 1 and not any(ix is not None and ix.dtype == torch.bool
                                                               for ix in indices):
        return torch.ops.aten.index(x, indices)
    flat, lin, axes, rest = _flat_index(x, indices)
    out = flat.index_select(0, lin.reshape(-1)).reshape(list(lin.shape) + [x.shape[d] for d in rest])
    before = axes[0] if _adjacent(axes) else 0
    if before:                           # torch keeps adjacent indexed axes in place
        nb = lin.dim()
        out = out.permute(list(range(nb, nb + before)) + list(range(nb)) + list(range(nb + before, out.dim())))
    return out


@RULES.rule("index_put")
def _index_put(prog, node, args):
    x, indices, values = args["self"], args["indices"], args["values"]
    accumulate = bool(node.arg("accumulate"))
    flat, lin, axes, rest = _flat_index(x, indices)
    before = axes[0] if _adjacent(axes) else 0
    nb = lin.dim()
    rest_sizes = [x.shape[d] for d in rest]
    # values broadcast to x[indices]'s torch layout, then laid out as [*index shape, *rest]
    target = rest_sizes[:before] + list(lin.shape) + rest_sizes[before:]
    vals = values.to(x.dtype).expand(target)
    if before:
        vals = vals.permute(list(range(before, before + nb)) + list(range(before)) +
                            list(range(before + nb, vals.dim())))
    vals = vals.reshape([-1] + rest_sizes)
    lin = lin.reshape(-1)
    if accumulate:
        # torch-mlir's scatter gives NaNs for an empty index list (an MoE expert no token
        # chose); one extra zero row added to row 0 keeps the list non-empty and changes nothing
        lin = torch.cat([lin, lin.new_zeros(1)])
        vals = torch.cat([vals, vals.new_zeros([1] + rest_sizes)])
    out = torch.ops.aten.index_put(flat, [lin], vals, accumulate)
    perm = axes + rest
    out = out.reshape([x.shape[d] for d in perm])
    return out.permute([perm.index(d) for d in range(x.dim())])


@RULES.rule("fmod", "remainder")
def _fmod(prog, node, args):
    # integer fmod/remainder do not lower (aten.fmod on ints); a - q*b with q truncated / floored does
    a, b = args["self"], args["other"]
    out_dtype = prog.dtype_of(node.outputs[0])
    if out_dtype.is_floating_point:
        return node.opdef.call(args)
    a = a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=out_dtype)
    q = torch.div(a, b, rounding_mode="trunc" if node.op == "fmod" else "floor")
    return (a - q * b).to(out_dtype)


@RULES.rule("select")
def _select(prog, node, args):
    # torch-mlir lowers select with a run-time index (e.g. T - 1) to the wrong element when the
    # length differs from the traced one; a one-element slice lowers correctly
    x, dim, index = args["self"], args["dim"], args["index"]
    if isinstance(index, int):
        return torch.ops.aten.select(x, dim, index)
    return x.narrow(dim, index, 1).squeeze(dim)


@RULES.rule("gelu")
def _gelu(prog, node, args):
    # torch-mlir's lowering of gelu(approximate="tanh") is 5e-5 off; written out with
    # aten.tanh / aten.erf it reaches libm's tanhf / erff
    x = args["self"]
    if node.arg("approximate") == "tanh":
        return 0.5 * x * (1 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + torch.erf(x * 0.7071067811865476))
