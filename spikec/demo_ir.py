"""`spikec demo --ir`: the IR walkthrough on the default tiny model.

1. trace spikingbrain:tiny (chunked GLA, symbolic T) and verify the IR;
2. run the fusion pipeline; interpret traced and fused graphs against eager;
3. the same model written the researcher's way (GLA as a Python loop over
   time): trace at two lengths, fuse each loop into one linear_attention,
   unify the length back into a symbol, and check it at other lengths.
"""
from __future__ import annotations

import time

import torch

from spikec import ir


class _Clock:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.2f}s] {msg}", flush=True)


def _fused_ops(g: ir.Graph) -> dict:
    return {k: v for k, v in g.op_counts().items() if ir.get_op(k).category == "fused"}


def _compare(step, label, graph, model, vocab, lengths) -> float:
    worst = 0.0
    for T in lengths:
        ids = torch.randint(0, vocab, (1, T), generator=torch.Generator().manual_seed(T))
        with torch.no_grad():
            want = model(ids)
        got = ir.interpret(graph, ids)
        err = (got - want).abs().max().item()
        worst = max(worst, err)
        step(f"  {label} vs eager at T={T}: max |diff| = {err:.2e}")
    return worst


def run_ir_demo(model_name: str = "spikingbrain:tiny", seq_len: int = 40,
             pipeline: str = "default,fuse-linear-attention,fuse-attention") -> bool:
    from spikec import models, passes
    from spikec.model_spec import load
    from spikec.passes.symbolic_length import trace_symbolic
    from spikec.stats import format_stats

    step = _Clock()
    step(f"1. tracing {model_name} with torch.export (T symbolic in [2, 4096])")
    loaded = load(model_name, seq_len=seq_len, dynamic={"T": (2, 4096)})
    g, model = loaded.graph, loaded.model
    vocab = int(models.config(*models.parse_spec(model_name)).vocab_size)
    ir.verify(g)
    step("   verified (SSA, attributes, inferred types); IR statistics:")
    print(format_stats(g, top=10))
    roundtrip = ir.structural_diff(g, ir.parse(str(g), constants=g.constants))
    step(f"   text round trip: {'equal' if roundtrip is None else roundtrip}")
    fused = passes.run(g, pipeline)
    step(f"2. {pipeline}: {len(g.nodes)} -> {len(fused.nodes)} nodes; fused ops: {_fused_ops(fused) or 'none'}")
    worst = _compare(step, "traced graph", g, model, vocab, (seq_len, 2 * seq_len + 3))
    worst = max(worst, _compare(step, "fused graph ", fused, model, vocab, (seq_len, 2 * seq_len + 3)))

    name, preset = models.parse_spec(model_name)
    if name == "spikingbrain":
        step("3. the same model with GLA as a Python loop over time (attn_mode=naive)")
        naive = models.create(name, preset, attn_mode="naive").eval()
        naive.load_state_dict(model.state_dict())
        loop_graph = trace_symbolic(naive, lambda T: (torch.randint(0, vocab, (1, T)),), lengths=(16, 17))
        loop_graph = passes.run(loop_graph, "fuse-attention")
        step(f"   traced at T=16 and T=17, loops fused, T unified: fused ops {_fused_ops(loop_graph)}, "
             f"{len(loop_graph.nodes)} nodes")
        worst = max(worst, _compare(step, "fused loop graph", loop_graph, naive, vocab, (1, 16, 100)))
    ok = worst <= 1e-4 and roundtrip is None
    step("OK: every graph reproduces the eager model" if ok else f"MISMATCH (worst {worst:.2e})")
    return ok
