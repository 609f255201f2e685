"""Calibration: pick k per projection for a target sparsity or a maximum error.

    cal = calibrate(graph, samples, sparsity=0.7)          # or max_error=0.05
    cal.save("calib.json")                                   # read by insert-spike-coding{calibration=...}

The inputs of every targeted projection of the *unspiked* graph are recorded on the
sample inputs (reference interpreter, the inputs as extra outputs). For each candidate
k the counts round(x / (mean|x|/k)) give the projection's 3-step-window sparsity
(spike_stats) and its relative output error ||(x̂ - x) Wᵀ||_F / ||x Wᵀ||_F. Then, per
projection:

  sparsity=s   the candidate with the smallest error among those with sparsity >= s
  max_error=e  the candidate with the largest sparsity among those with error <= e
  both         the largest sparsity among candidates meeting both

and when no candidate qualifies, the closest one (most sparse for a sparsity target,
most accurate for an error bound), marked `met: false`. Projections are calibrated
independently on the float activations (post-training calibration, as the report does
per layer); the spike report of the calibrated graph measures the combined effect.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from spikec.ir import Graph
from spikec.ir.ops_spike import spike_encode_reference

from .errors import PipelineError
from .spike_report import run_with_probes
from .spike_stats import CountStats
from .spike_targets import projection_name, select_projections, weight_name

DEFAULT_KS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)


@dataclass
class Calibration:
    objective: dict
    k: dict[str, float] = field(default_factory=dict)
    layers: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"objective": self.objective, "k": self.k, "layers": self.layers}

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=2)

    def format(self) -> str:
        lines = [f"calibration ({', '.join(f'{k}={v}' for k, v in self.objective.items())})",
                 f"{'projection':<44} {'k':>5} {'sparse3':>8} {'rel.err':>8}  met"]
        for name, d in self.layers.items():
            lines.append(f"{name:<44} {d['k']:>5g} {d['sparsity']:>8.4f} {d['error']:>8.4f}  {'yes' if d['met'] else 'NO'}")
        return "\n".join(lines)


def _choose(table: list[tuple[float, float, float]], sparsity, max_error) -> tuple[tuple, bool]:
    ok = [r for r in table if (sparsity is None or r[1] >= sparsity) and (max_error is None or r[2] <= max_error)]
    if ok:
        best = min(ok, key=lambda r: r[2]) if max_error is None else max(ok, key=lambda r: (r[1], -r[2]))
        return best, True
    if sparsity is not None and max_error is None:
        return max(table, key=lambda r: r[1]), False
    return min(table, key=lambda r: r[2]), False


def _relative_error(xs, decoded, w) -> float:
    """||(x̂ - x) Wᵀ||_F / ||x Wᵀ||_F over all samples (of x itself when W is not a constant)."""
    err_sq = ref_sq = 0.0
    for x, xh in zip(xs, decoded):
        diff, ref = xh - x.float(), x.float()
        if w is not None:
            diff, ref = diff @ w.float().t(), ref @ w.float().t()
        err_sq += float(diff.pow(2).sum())
        ref_sq += float(ref.pow(2).sum())
    return (err_sq / max(ref_sq, 1e-30)) ** 0.5


@torch.no_grad()
def calibrate(graph: Graph, samples, *, targets="default", sparsity: float | None = None,
              max_error: float | None = None, candidates=DEFAULT_KS) -> Calibration:
    if sparsity is None and max_error is None:
        raise PipelineError("calibrate: give a target sparsity or a maximum error (or both)")
    lins = select_projections(graph, targets)
    if not lins:
        raise PipelineError(f"calibrate: the targets {targets!r} match no linear projection",
                            hint="check the patterns against the weight names (spikec inspect MODEL)")
    samples = [s if isinstance(s, (tuple, list)) else (s,) for s in samples]
    xs: list[list[torch.Tensor]] = [[] for _ in lins]
    for inputs in samples:
        for i, x in enumerate(run_with_probes(graph, [n.arg("input") for n in lins], inputs)):
            xs[i].append(x)
    objective = {k: v for k, v in (("sparsity", sparsity), ("max_error", max_error)) if v is not None}
    cal = Calibration(objective)
    counted: dict[tuple[int, float], list] = {}        # (input, k) -> (sparsity, decoded x̂ per sample)
    for lin, acts in zip(lins, xs):
        w = graph.constants.get(weight_name(lin.arg("weight")))
        table = []
        for k in candidates:
            key = (id(lin.arg("input")), float(k))
            if key not in counted:
                st, decoded = CountStats(), []
                for x in acts:
                    counts, vth = spike_encode_reference(x, k)
                    st.add(counts)
                    decoded.append(counts * vth)
                counted[key] = (st.summary()["sparsity_window3"], decoded)
            sp, decoded = counted[key]
            table.append((float(k), sp, _relative_error(acts, decoded, w)))
        (k, sp, err), met = _choose(table, sparsity, max_error)
        name = projection_name(lin)
        cal.k[name] = k
        cal.layers[name] = {"k": k, "sparsity": sp, "error": err, "met": met,
                            "table": [{"k": a, "sparsity": b, "error": c} for a, b, c in table]}
    return cal

