"""convert-attention on a traced Transformer: one linear_attention per GLA layer and one
sliding_window_attention per SWA layer of the plan; the interpreted graph equals the eager
`convert_to_hybrid` model (same seeded new weights) within 1e-4 relative error."""
import pytest
import torch

import spikec.passes
from spikec import models as zoo
from spikec.frontend import from_torch
from spikec.ir import interpret
from spikec.passes.convert_attention import convert_attention

FUSE = "default,fuse-attention"


def _rel_err(got, want):
    return ((got - want).abs().max() / want.abs().max()).item()


@pytest.fixture(scope="module")
def transformer():
    torch.manual_seed(0)
    m = zoo.create("transformer", "tiny").eval()
    with torch.no_grad():        # non-zero q/k/v biases, so a lost bias shows
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return m


def _ids(T, B=2):
    return torch.randint(0, 250, (B, T), generator=torch.Generator().manual_seed(T))


def _nodes(g, op):
    return [n for n in g.nodes if n.op == op]


def _check_eager(g, hybrid, T):
    with torch.no_grad():
        assert _rel_err(interpret(g, _ids(T)), hybrid(_ids(T))) < 1e-4


def test_alternate_plan_matches_eager_conversion(transformer):
    T, w = 20, 8                                  # T > window, so the band matters
    g = spikec.passes.run(from_torch(transformer, (_ids(T),)), f"{FUSE},convert-attention{{window={w}}}")
    la, swa = _nodes(g, "linear_attention"), _nodes(g, "sliding_window_attention")
    assert len(la) == 2 and len(swa) == 2 and not _nodes(g, "attention")
    assert all(n.arg("window") == w for n in swa)
    # layers in program order: 0 GLA, 1 SWA, 2 GLA, 3 SWA
    assert [n.op for n in g.nodes if n in la or n in swa] == ["linear_attention", "sliding_window_attention"] * 2
    for n in la:
        assert n.arg("gate_kind") == "channel" and n.arg("scale") == pytest.approx(32 ** -0.5)
        for operand in ("q", "k"):     # ReLU feature map straight on the head split: no RoPE
            relu = n.arg(operand).producer
            assert relu.op == "relu" and relu.arg("self").producer.op == "permute"
            assert relu.arg("self").producer.arg("self").producer.arg("self").producer.op == "linear"
    assert "model.layers.2.self_attn.gk_proj.1.bias" in g.constants
    assert "model.layers.1.self_attn.g_norm.weight" not in g.constants       # SWA adds nothing
    _check_eager(g, zoo.convert_to_hybrid(transformer, window=w).eval(), T)


def test_explicit_plan_symbolic_length(transformer):
    plan = ["gla", "gla", "swa", "gla"]
    g = from_torch(transformer, (_ids(8, B=1),), dynamic={"T": (2, 4096)})
    g = spikec.passes.run(g, f"{FUSE},convert-attention{{plan={'|'.join(plan)},window=5,seed=3}}")
    assert g.op_counts()["linear_attention"] == 3 and g.op_counts()["sliding_window_attention"] == 1
    hybrid = zoo.convert_to_hybrid(transformer, plan, window=5, seed=3).eval()
    for T in (7, 19):
        with torch.no_grad():
            assert _rel_err(interpret(g, _ids(T, B=1)), hybrid(_ids(T, B=1))) < 1e-4


def test_all_swa_with_a_wide_window_keeps_the_transformer(transformer):
    T = 12
    g = spikec.passes.run(from_torch(transformer, (_ids(T),)), f"{FUSE},convert-attention{{plan=all-swa,window=16}}")
    assert g.op_counts()["sliding_window_attention"] == 4 and "linear_attention" not in g.op_counts()
    with torch.no_grad():
        assert _rel_err(interpret(g, _ids(T)), transformer(_ids(T))) < 1e-4


@pytest.fixture(scope="module")
def fused(transformer):
    return spikec.passes.run(from_torch(transformer, (_ids(6),)), FUSE)


@pytest.mark.parametrize("plan, message", [
    ("gla|swa|bad|swa", "layer 2"),
    ("gla|swa", "2 entries but the model has 4"),
    ("sometimes", "unknown plan"),
])
def test_bad_plan_is_a_clear_error(fused, plan, message):
    with pytest.raises(ValueError, match=message):
        convert_attention(fused.copy(), plan=plan)


def test_graph_without_attention_is_an_error(transformer):
    g = from_torch(transformer, (_ids(6),))          # not fused: no `attention` node yet
    with pytest.raises(ValueError, match="run fuse-attention first"):
        convert_attention(g)


def test_registered_with_its_options():
    info = spikec.passes.get_pass("convert-attention")
    assert {"plan", "window", "seed", "low_rank", "gate_bias"} <= set(info.options)
    assert info.options["plan"].default == "alternate"
