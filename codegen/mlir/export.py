"""IR graph -> torch.export -> torch-mlir modules (torch backend IR, then each output type)."""
from __future__ import annotations

import torch
from torch.utils._sympy.numbers import int_oo

from spikec.codegen.errors import LoweringError
from spikec.ir import Graph

from .custom_ops import decomposition_table
from .program import IRProgram, dynamic_shapes, example_inputs, example_length
from .toolchain import BACKEND_PIPELINES, context, parse, run_pipeline
from .views import spell_out_inferred_sizes, strict_views

OUTPUT_TYPES = ("linalg-on-tensors", "tosa", "stablehlo")


def symbol_lengths(graph: Graph, prefer: int) -> dict[str, int]:
    names = {d.name for v in graph.inputs for d in getattr(v.type, "shape", ()) if not isinstance(d, int)}
    return {n: example_length(*graph.symbols.get(n, (2, None)), prefer=prefer) for n in sorted(names)}


def trace_length(options: dict) -> int:
    """The length a dynamic export traces with. It must make every derived size > 1: a size
    whose trace value is 1 (e.g. the chunk count at T < chunk) gets treated as a broadcast
    dim and the compiled code is wrong (it corrupts the heap) for other lengths."""
    return 2 * int(options.get("chunk", 64)) + 3


def export_program(graph: Graph, options: dict, dynamic: bool, length: int = 16):
    """torch.export of the IR program; `dynamic` keeps the graph's symbols symbolic (traced at
    `trace_length`), otherwise every symbolic dim is fixed to `length`."""
    prog = IRProgram(graph, options).eval()
    lengths = symbol_lengths(graph, trace_length(options) if dynamic else length)
    args = tuple(example_inputs(graph, lengths))
    shapes = dynamic_shapes(graph, lengths) if dynamic and lengths else None
    try:
        with torch.no_grad():
            ep = torch.export.export(prog, args, dynamic_shapes=shapes, strict=False)
        if shapes:
            check_still_symbolic(graph, ep)
        return ep
    except LoweringError:
        raise
    except Exception as e:
        kind = "with symbolic " + ", ".join(lengths) if shapes else "with static shapes"
        raise LoweringError(f"mlir: torch.export of the IR program {kind} failed: {type(e).__name__}: "
                            f"{str(e).splitlines()[0][:400]}",
                            hint="lower with dynamic=False to fix the symbolic dims to one length") from e


def check_still_symbolic(graph: Graph, ep) -> None:
    """Every symbolic dim of the graph's inputs is still symbolic in the exported program, over
    at least the graph's range. With Dim.DYNAMIC, torch.export raises when code fixes a dim to a
    constant, but narrows its range (a guard T <= 20) without a word, and the compiled code
    would then be wrong outside it."""
    user = set(ep.graph_signature.user_inputs)
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in user]
    for v, p in zip(graph.inputs, placeholders):
        for axis, (d, got) in enumerate(zip(v.type.shape, p.meta["val"].shape)):
            if isinstance(d, int):
                continue
            lo, hi = graph.symbols.get(str(d), (2, None))
            if not isinstance(got, torch.SymInt) or not got.node.expr.free_symbols:
                raise LoweringError(f"mlir: torch.export fixed dim {axis} ({d}) of input %{v.name} to {int(got)}",
                                    hint="an op in the graph specialises this size; lower with dynamic=False "
                                         "to compile for one length")
            vr = ep.range_constraints.get(got.node.expr)
            unbounded = vr is not None and vr.upper == int_oo
            # torch assumes backed sizes are >= 2 (0/1 specialisation) whatever the range says
            if vr is not None and (int(vr.lower) > max(lo, 2) or (hi is not None and vr.upper < hi)
                                   or (hi is None and not unbounded)):
                raise LoweringError(f"mlir: torch.export narrowed dim {axis} ({d}) of input %{v.name} from "
                                    f"[{lo}, {hi if hi is not None else 'inf'}] to [{vr.lower}, {vr.upper}]",
                                    hint="an op in the graph guards on this size; lower with dynamic=False "
                                         "to compile for one length")


def import_torch_backend(ep):
    """The exported program as torch-mlir's torch backend IR (fused ops already decomposed)."""
    from torch_mlir.extras.fx_importer import FxImporter
    before = _symbolic_dims(ep)
    ep = ep.run_decompositions(decomposition_table())
    lost = before - _symbolic_dims(ep)
    if lost:
        # run_decompositions specialises a size silently when a decomposition guards on it; the
        # compiled code would then be wrong (or corrupt memory) at any other length
        raise LoweringError(f"mlir: decomposing the fused ops fixed the symbolic dims {sorted(lost)} of the "
                            f"program's inputs/outputs to their trace values",
                            hint="a decomposition in codegen/mlir/chunked.py guards on a size; or lower with "
                                 "dynamic=False")
    importer = FxImporter(context=context())
    importer.import_frozen_program(ep, func_name="main")
    strict_views(importer.module)
    run_pipeline(importer.module, BACKEND_PIPELINES["torch"], "torch-mlir import to the torch backend")
    spell_out_inferred_sizes(importer.module)
    return importer.module


def lower_to(torch_backend_module, output_type: str):
    """A fresh copy of the torch backend module lowered to `output_type`."""
    module = parse(torch_backend_module.operation.get_asm())
    run_pipeline(module, BACKEND_PIPELINES[output_type], f"lowering to {output_type}")
    return module


def _symbolic_dims(ep) -> set:
    """(placeholder/output position, axis) of every symbolic size at the program's boundary."""
    out = set()
    nodes = [n for n in ep.graph.nodes if n.op == "placeholder"]
    outs = [a for n in ep.graph.nodes if n.op == "output" for a in n.args[0]]
    for kind, group in (("input", nodes), ("output", outs)):
        for i, n in enumerate(group):
            val = getattr(n, "meta", {}).get("val")
            for axis, d in enumerate(getattr(val, "shape", ())):
                if isinstance(d, torch.SymInt):
                    out.add((kind, i, axis))
    return out
