"""Checkpoint IO: save/load reproduces logits exactly; strict errors name the bad field/tensor;
parameter names follow SpikingBrain's release; release-style config.json files load."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import spikec.models as zoo


@pytest.mark.parametrize("name", ["spikingbrain", "spikingbrain_moe", "spikegpt", "transformer"])
def test_roundtrip_exact(name, tmp_path):
    torch.manual_seed(0)
    model = zoo.create(name, "tiny").eval()
    model.save_pretrained(tmp_path)
    loaded = zoo.from_pretrained(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    ids = torch.randint(0, 256, (2, 19))
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))


def test_tied_embeddings_roundtrip(tmp_path):
    model = zoo.create("transformer", "tiny", tie_word_embeddings=True).eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model.save_pretrained(tmp_path)
    assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")
    loaded = zoo.from_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    ids = torch.randint(0, 256, (1, 7))
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))


def test_release_parameter_names():
    keys = set(zoo.create("spikingbrain", "tiny").state_dict())
    expected = {
        "model.embeddings.weight", "model.norm.weight", "lm_head.weight",
        "model.layers.0.attn_norm.weight", "model.layers.0.mlp_norm.weight",
        "model.layers.0.attn.q_proj.weight", "model.layers.0.attn.q_proj.bias",
        "model.layers.0.attn.k_proj.bias", "model.layers.0.attn.v_proj.bias",
        "model.layers.0.attn.o_proj.weight", "model.layers.0.attn.gk_proj.0.weight",
        "model.layers.0.attn.gk_proj.1.weight", "model.layers.0.attn.gk_proj.1.bias",
        "model.layers.0.attn.g_norm.weight", "model.layers.1.attn.q_proj.bias",
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    }
    assert expected <= keys
    assert "model.layers.0.attn.o_proj.bias" not in keys and "model.layers.0.attn.gk_proj.0.bias" not in keys
    assert not any(k.startswith("model.layers.1.attn.g") for k in keys)   # SWA layers: no gate, no g_norm


def test_release_style_config_loads(tmp_path):
    # the fields of SpikingBrain-7B's released config.json (reference §1.4) plus HF bookkeeping
    release = {
        "architectures": ["GLAswaForCausalLM"], "auto_map": {"AutoConfig": "configuration_gla_swa.GLAswaConfig"},
        "model_type": "gla_swa", "vocab_size": 152064, "hidden_size": 3584, "num_hidden_layers": 28,
        "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944,
        "hidden_act": "swish", "attn_mode": "chunk", "sliding_window": 4096,
        "max_position_embeddings": 131072, "rope_theta": 1000000.0, "norm_eps": 1e-6,
        "elementwise_affine": True, "use_short_conv": False, "conv_size": 4,
        "attn_layers": list(range(1, 28, 2)), "bos_token_id": 151643, "eos_token_id": 151643,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "fuse_cross_entropy": True,
        "transformers_version": "4.55.2", "use_cache": True, "quant_weight_group_size": None,
        "gate_logit_normalizer": 16, "gate_low_rank_dim": 16, "head_dim": 128,
        "attn_type_list": [i % 2 for i in range(28)],
    }
    (tmp_path / "config.json").write_text(json.dumps(release))
    cfg = zoo.spikingbrain.SpikingBrainConfig.load(tmp_path)
    assert cfg.hidden_size == 3584 and cfg.attn_layers == list(range(1, 28, 2))
    assert zoo.name_for_model_type("gla_swa") == "spikingbrain"


def test_unknown_config_field_is_named(tmp_path):
    model = zoo.create("spikingbrain", "tiny")
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["num_hiden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(zoo.ConfigError, match="num_hiden_layers"):
        zoo.from_pretrained(tmp_path)
    with pytest.raises(zoo.ConfigError, match="window_size"):
        zoo.create("spikingbrain", "tiny", window_size=3)


def _edit_checkpoint(path, fn):
    tensors = load_file(path / "model.safetensors")
    fn(tensors)
    save_file(tensors, path / "model.safetensors")


def test_missing_tensor_is_named(tmp_path):
    zoo.create("spikingbrain", "tiny").save_pretrained(tmp_path)
    _edit_checkpoint(tmp_path, lambda t: t.pop("model.layers.2.attn.gk_proj.1.bias"))
    with pytest.raises(zoo.CheckpointError, match=r"missing tensor 'model\.layers\.2\.attn\.gk_proj\.1\.bias'"):
        zoo.from_pretrained(tmp_path)


def test_misshaped_tensor_is_named(tmp_path):
    zoo.create("spikingbrain", "tiny").save_pretrained(tmp_path)
    _edit_checkpoint(tmp_path, lambda t: t.__setitem__("model.layers.1.attn.k_proj.weight", torch.zeros(3, 128)))
    with pytest.raises(zoo.CheckpointError, match=r"'model\.layers\.1\.attn\.k_proj\.weight' has shape \(3, 128\)"):
        zoo.from_pretrained(tmp_path)


def test_unexpected_tensor_is_named(tmp_path):
    zoo.create("transformer", "tiny").save_pretrained(tmp_path)
    _edit_checkpoint(tmp_path, lambda t: t.__setitem__("model.extra.weight", torch.zeros(2)))
    with pytest.raises(zoo.CheckpointError, match=r"unexpected tensor 'model\.extra\.weight'"):
        zoo.from_pretrained(tmp_path)


def test_sharded_checkpoint_and_bf16(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny").eval()
    model.config.save(tmp_path)
    sd = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}   # released weights are bf16
    names = sorted(sd)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for fname, keys in shards.items():
        save_file({k: sd[k].contiguous() for k in keys}, tmp_path / fname)
        weight_map.update({k: fname for k in keys})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    loaded = zoo.from_pretrained(tmp_path)
    assert loaded.lm_head.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.lm_head.weight, sd["lm_head.weight"].float(), rtol=0, atol=0)
