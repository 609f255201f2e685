"""Corpus cases for model configs (presets, overrides, config.json) and HF-style
checkpoints with missing or mis-shaped tensors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

import bad_makers as mk
from corpus_case import case, static
from spikec.ir import FrontendError


# == configs with bad values ===================================================================
def config_case(id, spec, overrides, match, command="inspect"):
    def api(m, c):
        from spikec.model_spec import load
        return load(spec, overrides=overrides)
    # the CLI reads a value as JSON, or as a bare string when it is not JSON
    flags = tuple(a for k, v in overrides.items()
                  for a in ("--config", f"{k}={v if isinstance(v, str) else json.dumps(v)}"))
    tail = ("-o", "{tmp}/out.spk", "-q") if command == "compile" else ()
    case(id, "config", match, api=api, cli=(command, spec, *flags, *tail), error=FrontendError)


config_case("config_heads_not_multiple", "spikingbrain:tiny", {"num_attention_heads": 3},
            r"bad config for spikingbrain:tiny: num_attention_heads must be a multiple of num_key_value_heads")
config_case("config_unknown_field", "spikingbrain:tiny", {"window_size": 8},
            r"unknown config field 'window_size' for model 'spikingbrain'", command="compile")
config_case("config_bad_choice", "spikingbrain:tiny", {"attn_mode": "fast"},
            r"attn_mode must be 'naive' or 'chunk', got 'fast'")
config_case("config_negative_size", "spikingbrain:tiny", {"hidden_size": -5},
            r"config field hidden_size must be >= 1, got -5", command="compile")
config_case("config_wrong_type", "transformer:tiny", {"hidden_size": "wide"},
            r"config field hidden_size must be int, got 'wide' \(str\)")
config_case("config_zero_layers", "spikegpt:tiny", {"num_hidden_layers": 0},
            r"config field num_hidden_layers must be >= 1, got 0")
config_case("config_zero_vocabulary", "spikingbrain:tiny", {"vocab_size": 0},
            r"config field vocab_size must be >= 1, got 0")
config_case("config_layer_index_out_of_range", "spikingbrain:tiny", {"attn_layers": [9]},
            r"attn_layers holds 9, outside \[0, 4\)")
config_case("config_layers_not_a_list", "spikingbrain:tiny", {"attn_layers": 5},
            r"config field attn_layers must be list\[int\] \| None, got 5 \(int\)")
config_case("config_nan", "spikingbrain:tiny", {"norm_eps": float("nan")},
            r"config field norm_eps must be a finite number, got nan")
config_case("config_zero_chunk", "spikingbrain:tiny", {"chunk_size": 0},
            r"config field chunk_size must be >= 1, got 0")
config_case("config_moe_top_k_zero", "spikingbrain_moe:tiny", {"num_experts_per_tok": 0},
            r"config field num_experts_per_tok must be >= 1, got 0")
config_case("config_moe_top_k_above_experts", "spikingbrain_moe:tiny", {"num_experts_per_tok": 9},
            r"num_experts_per_tok must be in \[1, num_experts\]")
config_case("config_unknown_preset", "spikingbrain:huge", {},
            r"unknown preset 'huge' for spikingbrain; known: tiny, small")
config_case("config_unknown_model", "llama:tiny", {}, r"unknown zoo model 'llama'; known: spikegpt, spikingbrain")
case("config_override_without_value", "config", r"--config expects KEY=VALUE \(e\.g\. attn_mode=naive\), got 'hidden'",
     cli=("inspect", "spikingbrain:tiny", "--config", "hidden"))


def json_config_case(id, file, match):
    def make(c):
        d = c.tmp / "ckpt"
        d.mkdir()
        (d / "config.json").write_bytes(Path(static("config", file)).read_bytes())
        return {"input": str(d)}

    def api(m, c):
        from spikec.cli_runtime import compile_zoo
        return compile_zoo(m["input"], "torch", "", progress=False)
    case(id, "config", match, make=make, api=api, cli=("compile", "{input}", "-o", "{tmp}/out.spk", "-q"),
         error=FrontendError)


json_config_case("config_json_truncated", "truncated.json",
                 r"cannot load the checkpoint .*ckpt: .*config\.json is not valid JSON: .*line 2")
json_config_case("config_json_unknown_model_type", "unknown_model_type.json",
                 r"cannot load the checkpoint .*: unknown model_type 'llama'; known: ")
json_config_case("config_json_missing_model_type", "missing_model_type.json",
                 r"config\.json has no 'model_type' field")
json_config_case("config_json_heads_not_multiple", "heads_not_multiple.json",
                 r"num_attention_heads must be a multiple of num_key_value_heads")
json_config_case("config_json_string_size", "string_size.json",
                 r"config field hidden_size must be int, got '128' \(str\)")
json_config_case("config_json_nan", "nan_eps.json", r"config field norm_eps must be a finite number, got nan")
json_config_case("config_json_not_an_object", "not_an_object.json",
                 r"config\.json holds a JSON list, not an object of config fields")
json_config_case("config_json_misspelt_field", "typo_field.json",
                 r"unknown config field 'num_hiden_layers' for model_type 'gla_swa'")


# == checkpoints with missing or mis-shaped tensors ============================================
def ckpt_case(id, damage, match):
    def make(c):
        d = mk.copy_dir(c.shared.zoo_checkpoint, c.tmp / "ckpt")
        damage(d)
        return {"input": d}

    def api(m, c):
        from spikec.cli_runtime import compile_zoo
        return compile_zoo(m["input"], "torch", "", progress=False)
    case(id, "checkpoint", match, make=make, api=api, cli=("compile", "{input}", "-o", "{tmp}/out.spk", "-q"),
         error=FrontendError)


W = "model.safetensors"
ckpt_case("ckpt_missing_tensor", lambda d: mk.edit_safetensors(f"{d}/{W}", lambda t: t.pop("model.norm.weight")),
          r"checkpoint in .*ckpt is missing tensor 'model\.norm\.weight'")
ckpt_case("ckpt_misshaped_tensor",
          lambda d: mk.edit_safetensors(f"{d}/{W}", lambda t: t.update({"model.norm.weight": torch.ones(31)})),
          r"tensor 'model\.norm\.weight' has shape \(31,\) in the checkpoint but the model expects \(32,\)")
ckpt_case("ckpt_unexpected_tensor",
          lambda d: mk.edit_safetensors(f"{d}/{W}", lambda t: t.update({"model.extra.weight": torch.ones(2)})),
          r"checkpoint in .* has unexpected tensor 'model\.extra\.weight'")
ckpt_case("ckpt_truncated_weights", lambda d: mk.truncate(f"{d}/{W}", 0.5),
          r"model\.safetensors is not a readable safetensors file")
ckpt_case("ckpt_header_garbage", lambda d: Path(f"{d}/{W}").write_bytes(b"\xff" * 64),
          r"model\.safetensors is not a readable safetensors file")
ckpt_case("ckpt_no_weights", lambda d: os.remove(f"{d}/{W}"),
          r"no model\.safetensors or model\.safetensors\.index\.json in .*ckpt")
ckpt_case("ckpt_index_damaged", lambda d: Path(f"{d}/model.safetensors.index.json").write_text('{"weights": {}}'),
          r"model\.safetensors\.index\.json is damaged \(KeyError: 'weight_map'\)")
ckpt_case("ckpt_index_missing_shard", lambda d: Path(f"{d}/model.safetensors.index.json").write_text(
    json.dumps({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}})),
    r"the weights file .*model-00002-of-00002\.safetensors is missing")
ckpt_case("ckpt_index_outside_directory", lambda d: Path(f"{d}/model.safetensors.index.json").write_text(
    json.dumps({"weight_map": {"model.norm.weight": "../../elsewhere.safetensors"}})),
    r"names the shard '\.\./\.\./elsewhere\.safetensors', which is not a file in")
case("ckpt_config_override", "checkpoint", r"--config overrides apply to zoo names, not to the checkpoint",
     make=lambda c: {"input": c.shared.zoo_checkpoint},
     cli=("compile", "{input}", "--config", "hidden_size=64", "-o", "{tmp}/out.spk", "-q"))
