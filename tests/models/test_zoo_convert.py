"""convert_to_hybrid: a trained Transformer becomes a SpikingBrain GLA/SWA hybrid that reuses
its weights, runs, saves as a spikingbrain checkpoint and fine-tunes back to the Transformer's
loss (bench/convert_finetune.py records the full 300 + 300-step run)."""
import ast

import pytest
import torch

import spikec.models as zoo
from spikec.models import convert
from spikec.models.convert import GATE_BIAS, weight_name_map
from spikec.models.spikingbrain import SpikingBrainForCausalLM


@pytest.fixture(scope="module")
def transformer():
    torch.manual_seed(0)
    m = zoo.create("transformer", "tiny").eval()
    with torch.no_grad():        # non-trivial norms and biases, so a missed copy shows
        for name, p in m.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return m


def _ids(T=20, B=2):
    return torch.randint(0, 250, (B, T), generator=torch.Generator().manual_seed(1))


def test_converted_model_reuses_every_shared_weight(transformer):
    h = zoo.convert_to_hybrid(transformer)
    assert type(h) is SpikingBrainForCausalLM and h.config.model_type == "gla_swa"
    assert h.config.attn_layers == [1, 3]          # alternate: even GLA, odd SWA
    src, dst = transformer.state_dict(), h.state_dict()
    mapping = weight_name_map(transformer.config.num_hidden_layers)
    for t_name, h_name in mapping.items():
        assert torch.equal(src[t_name], dst[h_name]), t_name
        assert src[t_name].data_ptr() != dst[h_name].data_ptr()     # copied, not aliased
    new = sorted(set(dst) - set(mapping.values()))
    assert new == sorted(f"model.layers.{i}.attn.{p}" for i in (0, 2)
                         for p in ("gk_proj.0.weight", "gk_proj.1.weight", "gk_proj.1.bias", "g_norm.weight"))
    assert torch.equal(dst["model.layers.0.attn.g_norm.weight"], torch.ones(h.config.head_dim))
    bias = dst["model.layers.2.attn.gk_proj.1.bias"]
    assert torch.equal(bias, torch.full_like(bias, GATE_BIAS))
    with torch.no_grad():
        out = h(_ids())
    assert out.shape == (2, 20, h.config.vocab_size) and torch.isfinite(out).all()


def test_all_swa_with_a_wide_window_is_the_transformer(transformer):
    # every layer keeps softmax attention; with window >= T the band is the causal mask
    h = zoo.convert_to_hybrid(transformer, "all-swa", window=64).eval()
    assert h.config.attn_layers == [0, 1, 2, 3] and h.config.sliding_window == 64
    with torch.no_grad():
        torch.testing.assert_close(h(_ids()), transformer(_ids()), rtol=1e-5, atol=1e-5)
    assert zoo.convert_to_hybrid(transformer, "all-gla").config.attn_layers == []
    assert zoo.convert_to_hybrid(transformer, ["swa", "gla", "gla", "swa"]).config.attn_layers == [0, 3]


def test_new_parameters_are_deterministic_in_the_seed(transformer):
    key = "model.layers.0.attn.gk_proj.0.weight"
    a, b = (zoo.convert_to_hybrid(transformer, seed=5).state_dict()[key] for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, zoo.convert_to_hybrid(transformer, seed=6).state_dict()[key])


@pytest.mark.parametrize("plan, message", [
    (["gla", "swa", "attn", "swa"], "layer 2"),
    (["gla", "swa"], "2 entries"),
    ("every-other", "unknown plan"),
])
def test_bad_plan_is_a_clear_error(transformer, plan, message):
    with pytest.raises(ValueError, match=message):
        zoo.convert_to_hybrid(transformer, plan)


def test_only_a_transformer_converts():
    with pytest.raises(TypeError, match="TransformerForCausalLM"):
        zoo.convert_to_hybrid(zoo.create("spikingbrain", "tiny"))


def test_save_load_round_trip_as_spikingbrain(transformer, tmp_path):
    h = zoo.convert_to_hybrid(transformer, window=8).eval()
    h.save_pretrained(tmp_path)
    back = zoo.from_pretrained(tmp_path)
    assert type(back) is SpikingBrainForCausalLM and back.config == h.config
    with torch.no_grad():
        torch.testing.assert_close(back(_ids()), h(_ids()), rtol=0, atol=0)


def test_tied_embeddings_stay_tied():
    m = zoo.create("transformer", "tiny", tie_word_embeddings=True, num_hidden_layers=2)
    h = zoo.convert_to_hybrid(m)
    assert h.lm_head.weight is h.model.embeddings.weight
    assert torch.equal(h.lm_head.weight, m.lm_head.weight)


def test_zoo_does_not_import_the_compiler():
    # models/ depends on torch only (the graph pass imports the zoo, never the reverse)
    tree = ast.parse(open(convert.__file__).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in ("math", "torch") for a in node.names), ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 1 or node.module.split(".")[0] in ("__future__", "math", "torch"), node.module


def test_finetuned_hybrid_recovers_the_transformer_loss():
    # Short version of bench/convert_finetune.py (300 + 300 steps there): 60 steps of
    # Transformer, convert (alternate plan, window 32 < seq_len 64), 60 fine-tune steps.
    # Bound: the hybrid's final validation loss is within 10% of the Transformer's.
    corpus = zoo.build_corpus(max_bytes=600_000)
    kw = dict(batch_size=8, seq_len=64, eval_every=60, eval_batches=4, progress=False)
    torch.manual_seed(0)
    t = zoo.create("transformer", "tiny")
    pre = zoo.train_eager(t, corpus, steps=60, **kw)
    h = zoo.convert_to_hybrid(t, window=32)
    ft = zoo.train_eager(h, corpus, steps=60, lr=1e-3, seed=1, **kw)
    assert pre.final_val_loss < 0.7 * pre.initial_val_loss          # the Transformer did learn
    assert ft.final_val_loss <= 1.10 * pre.final_val_loss, (pre.final_val_loss, ft.final_val_loss)
