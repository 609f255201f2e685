"""Export the spiking part of a spike-coded graph to NIR (the Neuromorphic Intermediate
Representation, `nir` on PyPI).

What NIR can express of SpikingBrain's scheme is the accumulate-only projection of a
spike train: for each spiked projection

    Input(in)  --spikes s_t in {-1, 0, 1} (ternary) or {0, 1} (binary), one per NIR step-->
    Linear(W)  --W s_t-->  I(r = 1)  --v = Σ_t W s_t-->  Output(out)

The integrator's state after the last step is Σ_t W s_t; the model's projection is then
y = v_th · v + b. A top-level NIRGraph holds one such sub-graph per spiked projection,
named after it, with no edges between them (what connects them — RMSNorm, attention,
the GLA recurrence, SiLU gating — has no NIR node). Metadata of each sub-graph carries
what NIR cannot: k, the bias, and the per-token rescale. See docs/spike-coding.md for
the full list of what is not expressed (the adaptive threshold, soft reset, bitwise
weighting, the binary zero point).
"""
from __future__ import annotations

import numpy as np

from spikec.ir import Graph, SpikecError


class NIRExportError(SpikecError):
    """A graph or coding that NIR cannot express."""


def _nir():
    try:
        import nir
    except ImportError as e:        # pragma: no cover - nir is a dependency of this feature
        raise NIRExportError("NIR export needs the `nir` package", hint="pip install nir") from e
    return nir


def projection_subgraph(weight: np.ndarray, *, name: str, metadata: dict | None = None):
    """Input -> Linear(W) -> I(r=1) -> Output for one projection."""
    nir = _nir()
    out_f, in_f = weight.shape
    nodes = {
        "input": nir.Input(input_type={"input": np.array([in_f])}),
        "weight": nir.Linear(weight=weight.astype(np.float32)),
        "integrate": nir.I(r=np.ones(out_f, dtype=np.float32)),
        "output": nir.Output(output_type={"output": np.array([out_f])}),
    }
    edges = [("input", "weight"), ("weight", "integrate"), ("integrate", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"projection": name, **(metadata or {})})


def _weight_values(graph: Graph, v):
    """The weight's values: a constant, or the INT8 grid points of int8_fake_quant(constant)."""
    from spikec.ir.ops_spike import int8_fake_quant_reference
    p = v.producer
    if p is not None and p.op == "int8_fake_quant":
        inner = _weight_values(graph, p.arg("x"))
        return None if inner is None else int8_fake_quant_reference(inner, p.arg("axis"), p.arg("group_size"))
    if p is not None and p.op == "constant":
        return graph.constants.get(p.args["name"])
    return None


def export_nir(graph: Graph, *, coding: str = "ternary", path: str | None = None):
    """One NIR sub-graph per spike-coded projection of `graph`; written to `path` (HDF5) if given."""
    from spikec.passes.spike_graph import spiked_projections
    from spikec.passes.spike_targets import weight_name
    if coding == "bitwise":
        raise NIRExportError("NIR cannot express bitwise spike coding: step t of a train carries weight "
                             "2^(T-1-t), and NIR has no time-dependent weights",
                             hint="export with coding='ternary' (lossless re-coding of the same counts) or 'binary'")
    if coding not in ("ternary", "binary"):
        raise NIRExportError(f"unknown spike coding {coding!r} for NIR export", hint="ternary or binary")
    projs = spiked_projections(graph)
    if not projs:
        raise NIRExportError("the graph has no spike-coded projections to export",
                             hint="run insert-spike-coding first")
    nir = _nir()
    subgraphs = {}
    for p in projs:
        w = _weight_values(graph, p.linear.arg("weight"))
        if w is None:
            raise NIRExportError(f"projection {p.name}: its weight is computed, not a constant, so it has no "
                                 "values to export", where=p.linear.where())
        bias = p.linear.arg("bias")
        bname = weight_name(bias) if bias is not None else None
        meta = {"k": float(p.encode.arg("k")), "coding": coding,
                "input_spikes": "{-1,0,1}" if coding == "ternary" else "{0,1} (counts >= 0)",
                "rescale": "y = v_th * v + bias, v_th = mean(|x|)/k per token (data-dependent: not in NIR)",
                "bias": graph.constants[bname].detach().float().numpy() if bname else None}
        key = p.name.replace(".", "_")
        subgraphs[key] = projection_subgraph(w.detach().float().numpy(), name=p.name,
                                             metadata={k: v for k, v in meta.items() if v is not None})
    top = nir.NIRGraph(nodes=subgraphs, edges=[], metadata={"source": "spikec insert-spike-coding",
                                                            "coding": coding})
    if path:
        nir.write(path, top)
    return top
