"""insert-spike-coding: SpikingBrain's adaptive-threshold integer spikes on the inputs
of chosen linear projections.

    insert-spike-coding{coding=bitwise,k=3,targets=default,steps=0}

For every projection `linear(x, W, b)` the target patterns choose (see spike_targets):

    %c, %vth = spike_encode(%x, k=3.0, axis=-1)     # v_th = mean|x|/k per token, c = round(x/v_th)
    %c2 = clamp(%c, lo, hi)                          # only with steps > 0: what the coding carries
    %xh = mul(%c2, %vth)                             # x̂ = counts · v_th (cast back to x's dtype)
    %xs = straight_through(%x, %xh)                  # ste=true: value x̂, gradient to x (QAT)
    %y  = linear(%xs, %W, %b)

so the model still computes (W8ASpike's fake-quant form). Projections reading the same
x with the same k share one spike_encode. `form=event` instead writes
`spike_linear(%c2, %vth, %W, %b, coding)`, the accumulate-only event-driven projection.

Options: coding (binary | ternary | bitwise; it decides the clamp range with steps, the
report's time steps and the event form), k, targets (patterns, `|`-separated),
steps (0: unbounded, T from the data), calibration (a JSON file of per-projection k from
`spikec calibrate`), ste, form, weight_int8 + weight_group (symmetric INT8 fake-quant of
the targeted weights, groups along the input dim), kv_int8 (per-token absmax INT8 of the
keys and values of `sliding_window_attention`) and swa_query (spike its query too).
Statistics: spiked (projections), encoders, weights_int8, kv_int8.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from spikec.ir import Graph, Node, Value, torch_dtype
from spikec.ir.ops_spike import CODINGS, max_count

from .errors import PipelineError
from .manager import stat
from .registry import register
from .rewrite import Builder
from .spike_graph import decoded_input
from .spike_targets import TargetSpec, projection_name, select_projections, weight_name

FORMS = ("activation", "event")


@dataclass
class SpikeCodingConfig:
    coding: str = "bitwise"
    k: float = 3.0
    targets: tuple = ("default",)
    steps: int = 0
    form: str = "activation"
    ste: bool = True
    k_by_name: dict[str, float] = field(default_factory=dict)     # calibrated k per projection
    weight_int8: bool = False
    weight_group: int = 128
    kv_int8: bool = False
    swa_query: bool = False

    def check(self) -> None:
        if self.coding not in CODINGS:
            raise PipelineError(f"insert-spike-coding: unknown coding {self.coding!r}",
                                hint=f"coding={'|'.join(CODINGS)}")
        if self.form not in FORMS:
            raise PipelineError(f"insert-spike-coding: unknown form {self.form!r}", hint=f"form={'|'.join(FORMS)}")
        if self.k <= 0 or any(v <= 0 for v in self.k_by_name.values()):
            raise PipelineError(f"insert-spike-coding: k must be positive (got {self.k})")
        if self.steps < 0:
            raise PipelineError(f"insert-spike-coding: steps must be >= 0 (got {self.steps})")

    def count_range(self) -> tuple[int, int] | None:
        """The counts `steps` time steps of the coding carry. Binary spikes are unsigned and
        signed counts are shifted by a zero point, so binary splits its range around zero."""
        if self.steps == 0:
            return None
        if self.coding == "binary":
            return -(self.steps // 2), self.steps - self.steps // 2
        m = max_count(self.coding, self.steps)
        return -m, m


def _encode(b: Builder, x: Value, k: float, cfg: SpikeCodingConfig, name: str | None = None) -> tuple[Value, Value]:
    counts, vth = b.op("spike_encode", {"x": x, "k": float(k), "axis": -1})
    if name:                                  # readable IR: %model.layers.0.attn.q_proj.spikes
        b.graph.rename(counts, f"{name}.spikes")
        b.graph.rename(vth, f"{name}.v_th")
    rng = cfg.count_range()
    if rng is not None:
        counts = b.op("clamp", {"self": counts, "min": rng[0], "max": rng[1]})
    return counts, vth


def _decoded(b: Builder, x: Value, counts: Value, vth: Value, cfg: SpikeCodingConfig) -> Value:
    xh = b.op("mul", {"self": counts, "other": vth})
    if xh.type.dtype != x.type.dtype:
        xh = b.op("_to_copy", {"self": xh, "dtype": torch_dtype(x.type.dtype)})
    return b.op("straight_through", {"x": x, "y": xh}) if cfg.ste else xh


def _quantize_weight(b: Builder, lin: Node, group: int) -> None:
    w = lin.arg("weight")
    if w.producer is not None and w.producer.op == "int8_fake_quant":
        return
    in_f = w.type.shape[-1]
    g = group if group > 0 and isinstance(in_f, int) and in_f % group == 0 else 0
    if group > 0 and g == 0:
        stat("weights_int8_per_channel")          # in_features not a multiple of the group: one scale per row
    lin.args["weight"] = b.op("int8_fake_quant", {"x": w, "axis": -1, "group_size": g})
    stat("weights_int8")


def _spike_projection(graph: Graph, lin: Node, cfg: SpikeCodingConfig, shared: dict) -> None:
    x = lin.arg("input")
    name = projection_name(lin)
    k = float(cfg.k_by_name.get(name, cfg.k))
    b = Builder(graph, lin)
    if cfg.weight_int8:
        _quantize_weight(b, lin, cfg.weight_group)
    key = (id(x), k)
    if key not in shared:
        shared[key] = _encode(b, x, k, cfg, name if weight_name(lin.arg("weight")) else None)
        stat("encoders")
    counts, vth = shared[key]
    if cfg.form == "event":
        new = b.op("spike_linear", {"s": counts, "v_th": vth, "weight": lin.arg("weight"), "bias": lin.arg("bias"),
                                    "coding": cfg.coding})
        graph.replace_all_uses(lin.outputs[0], new)
        graph.remove_node(lin)
    else:
        if (key, "decoded") not in shared:
            shared[(key, "decoded")] = _decoded(b, x, counts, vth, cfg)
        lin.args["input"] = shared[(key, "decoded")]
    stat("spiked")


def _quantize_kv(graph: Graph, cfg: SpikeCodingConfig) -> None:
    for node in [n for n in graph.nodes if n.op == "sliding_window_attention"]:
        b = Builder(graph, node)
        for name in ("k", "v"):
            node.args[name] = b.op("int8_fake_quant", {"x": node.arg(name), "axis": -1})
            stat("kv_int8")
        if cfg.swa_query:
            q = node.arg("q")
            counts, vth = _encode(b, q, cfg.k, cfg)
            node.args["q"] = _decoded(b, q, counts, vth, cfg)
            stat("swa_query")


def insert_spike_coding(graph: Graph, cfg: SpikeCodingConfig) -> Graph:
    """Spike-code the chosen projections of `graph` in place (the Python entry point)."""
    cfg.check()
    spec = TargetSpec.parse(cfg.targets)
    shared: dict = {}
    for lin in select_projections(graph, spec):
        if decoded_input(lin.arg("input")) is not None:
            stat("already_spiked")            # running the pass twice changes nothing
            continue
        _spike_projection(graph, lin, cfg, shared)
    if cfg.kv_int8 or cfg.swa_query:
        _quantize_kv(graph, cfg)
    return graph


def load_calibration(path: str) -> dict[str, float]:
    """Per-projection k from a `spikec calibrate` JSON file ({"k": {name: k}, ...})."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise PipelineError(f"insert-spike-coding: cannot read calibration file {path!r}: {e}") from None
    ks = data.get("k") if isinstance(data, dict) else None
    if not isinstance(ks, dict):
        raise PipelineError(f"insert-spike-coding: {path!r} has no \"k\" table of projection -> k",
                            hint="write it with `spikec calibrate MODEL -o FILE`")
    return {str(n): float(v) for n, v in ks.items()}


@register("insert-spike-coding")
def insert_spike_coding_pass(graph: Graph, *, coding: str = "bitwise", k: float = 3.0, targets: tuple = ("default",),
                             steps: int = 0, form: str = "activation", calibration: str = "", ste: bool = True,
                             weight_int8: bool = False, weight_group: int = 128, kv_int8: bool = False,
                             swa_query: bool = False) -> None:
    """Adaptive-threshold spike coding (v_th = mean|x|/k, s = round(x/v_th)) on the inputs of chosen linear projections."""
    cfg = SpikeCodingConfig(coding=coding, k=float(k), targets=tuple(targets), steps=int(steps), form=form,
                            ste=ste, k_by_name=load_calibration(calibration) if calibration else {},
                            weight_int8=weight_int8, weight_group=int(weight_group), kv_int8=kv_int8,
                            swa_query=swa_query)
    insert_spike_coding(graph, cfg)
