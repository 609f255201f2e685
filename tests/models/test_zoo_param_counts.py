"""Parameter counts of the real-size presets, built on the meta device: within 2% of the
paper's sizes, and equal to a closed-form count written out independently here."""
import pytest
import torch

import spikec.models as zoo


def meta_counts(name, preset):
    with torch.device("meta"):
        model = zoo.create(name, preset)
    assert all(p.is_meta for p in model.parameters())
    return zoo.param_counts(model)


def swiglu(d, f):
    return 3 * d * f


def attn_params(d, heads, kv, hd):
    return d * heads * hd + heads * hd + 2 * (d * kv * hd + kv * hd) + heads * hd * d   # q,k,v biased; o not


def test_spikingbrain_7b():
    c = meta_counts("spikingbrain", "7b")
    d, V, L, f = 3584, 152064, 28, 18944
    gla_extra = d * 16 + 16 * 512 + 512 + 128          # gk_proj.0, gk_proj.1 (+bias), g_norm
    per_layer = attn_params(d, 28, 4, 128) + swiglu(d, f) + 2 * d
    closed = 2 * V * d + d + L * per_layer + 14 * gla_extra
    assert c["total"] == c["active"] == closed
    assert abs(c["total"] / 7.6e9 - 1) < 0.02


def test_spikingbrain_moe_76b():
    c = meta_counts("spikingbrain_moe", "76b")
    d, V, L, f, E = 3584, 152064, 28, 18944, 16
    attn = attn_params(d, 28, 4, 128) + 2 * d                # shared q/k/v/o + two branch norms
    moe_layer = (E + 1) * swiglu(d, f) + d * E               # routed + shared experts + router
    closed = 2 * V * d + d + L * (attn + 2 * d) + 7 * swiglu(d, f) + 21 * moe_layer
    assert c["total"] == closed
    assert c["active"] == closed - 21 * (E - 1) * swiglu(d, f)
    assert abs(c["total"] / 76e9 - 1) < 0.02
    assert abs(c["active"] / 12e9 - 1) < 0.02


def test_transformer_7b_is_qwen25_7b():
    c = meta_counts("transformer", "7b")
    assert abs(c["total"] / 7.62e9 - 1) < 0.01


def test_spikegpt_216m():
    c = meta_counts("spikegpt", "216m")
    assert abs(c["total"] / 216e6 - 1) < 0.02


@pytest.mark.parametrize("name", ["spikingbrain", "spikingbrain_moe", "spikegpt", "transformer"])
def test_every_preset_builds_on_meta(name):
    for preset in zoo.presets(name):
        c = meta_counts(name, preset)
        assert 0 < c["active"] <= c["total"]


def test_tiny_counts_match_numel_and_ties():
    m = zoo.create("transformer", "tiny", tie_word_embeddings=True)
    untied = zoo.create("transformer", "tiny")
    assert zoo.param_counts(untied)["total"] - zoo.param_counts(m)["total"] == 260 * 128
    assert zoo.param_counts(untied)["total"] == sum(p.numel() for p in untied.parameters())
