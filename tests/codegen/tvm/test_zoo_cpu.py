"""The zoo's tiny SpikingBrain, traced the researcher's way (GLA as a loop over
time), fused (linear_attention + sliding_window_attention) with T symbolic,
compiled ONCE for the cpu target and run at T=16 and T=300.

Oracle: spikec.ir.interpret of the same fused graph (and eager PyTorch for the
model itself). Tolerance: max |logits - reference| <= 1e-4 · max |reference|.
"""
import pytest
import torch

import spikec
import spikec.models as zoo
from spikec import ir, passes
from spikec.passes.symbolic_length import trace_symbolic

TOL = 1e-4


@pytest.fixture(scope="module")
def fused():
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny", attn_mode="naive").eval()
    vocab = model.config.vocab_size
    g = trace_symbolic(model, lambda T: (torch.randint(0, vocab, (1, T)),), lengths=(16, 17))
    g = passes.run(g, "fuse-attention")
    return model, g


def test_fused_spikingbrain_one_module_any_length(fused):
    model, g = fused
    ops = g.op_counts()
    assert ops.get("linear_attention") and ops.get("sliding_window_attention")
    assert g.symbols, "T must stay symbolic: one compiled module serves every length"
    art = spikec.compile(g, target="cpu", pipeline="")
    (src,) = [text for name, text in art.sources().items() if name.endswith("relax_module.py")]
    assert "gla_chunk_channel" in src and "attention_swa" in src and "R.call_tir" in src
    for T in (16, 300):
        ids = torch.randint(0, model.config.vocab_size, (1, T), generator=torch.Generator().manual_seed(T))
        got = art(ids)
        want = ir.interpret(g, ids)
        with torch.no_grad():
            eager = model(ids)
        scale = want.abs().max()
        assert got.shape == (1, T, model.config.vocab_size)
        assert (got - want).abs().max() <= TOL * scale, f"T={T} vs interpreter"
        assert (got - eager).abs().max() <= TOL * scale, f"T={T} vs eager"
