"""How the mlir target gets aten.view lowered correctly when dynamic dims merge.

torch-mlir's legacy view lowering assumes a dynamic input dim is never merged with another:
for [B, T, 128] -> [B*T, 128] it pairs B with B*T and then fixes T to 1 (tensor<?x1x128>), so
the compiled code writes B*T*128 floats into a B*128 buffer and corrupts the heap. Its strict
lowering (function attribute `torch.disable_legacy_view`) emits tensor.reshape with run-time
sizes, which is right for any view; it needs `torch.assume_strict_symbolic_shapes`, which
states what torch.export guarantees (equal symbols are equal sizes, no implicit broadcast of a
symbolic dim) and which FxImporter sets for `import_program` but not `import_frozen_program`.

The strict lowering rejects a view whose sizes are constants with one -1 (`view(x, [-1])`,
which torch-mlir's own nonzero decomposition makes): `spell_out_inferred_sizes` replaces the -1
by numel(x) // (product of the other sizes), computed with torch.aten.size.int ops."""
from __future__ import annotations


def strict_views(module) -> None:
    from torch_mlir import ir
    with module.context:
        for op in module.body.operations:
            if op.operation.name == "func.func":
                op.attributes["torch.assume_strict_symbolic_shapes"] = ir.UnitAttr.get()
                op.attributes["torch.disable_legacy_view"] = ir.UnitAttr.get()


def _walk(op):
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                yield inner.operation
                yield from _walk(inner.operation)


def _constant_int(value):
    owner = value.owner
    if getattr(owner, "name", None) == "torch.constant.int":
        return owner.attributes["value"].value
    return None


def spell_out_inferred_sizes(module) -> int:
    """Rewrite every torch.aten.view with a -1 in its size list, in place; returns how many."""
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_d
    changed = 0
    with module.context:
        views = [op for op in _walk(module.operation) if op.name == "torch.aten.view"]
        for view in views:
            x, size_list = view.operands[0], view.operands[1]
            if size_list.owner.name != "torch.prim.ListConstruct":
                continue
            sizes = list(size_list.owner.operands)
            inferred = [i for i, s in enumerate(sizes) if _constant_int(s) == -1]
            if not inferred:
                continue
            rank = _rank(x.type)
            if rank is None:                         # unranked: leave it to the lowering's own error
                continue
            with ir.InsertionPoint(view), view.location:
                def const(n):
                    return torch_d.ConstantIntOp(n).result

                numel = const(1)
                for d in range(rank):
                    numel = torch_d.AtenMulIntOp(numel, torch_d.AtenSizeIntOp(x, const(d)).result).result
                known = None
                for j, s in enumerate(sizes):
                    if j != inferred[0]:
                        known = s if known is None else torch_d.AtenMulIntOp(known, s).result
                sizes[inferred[0]] = numel if known is None else torch_d.AtenFloordivIntOp(numel, known).result
                new_list = torch_d.PrimListConstructOp(size_list.type, sizes).result
            view.operands[1] = new_list
            changed += 1
    return changed


def _rank(torch_type) -> int | None:
    # the Python bindings have no accessor for a torch tensor type's sizes: !torch.vtensor<[?,2],i1> -> 2
    text = str(torch_type)
    if "<[" not in text:
        return None
    dims = text[text.index("<[") + 2:text.index("]")]
    return 0 if not dims else dims.count(",") + 1
