"""The public entry points of spikec.models."""
import pytest
import torch

import spikec.models as zoo


def test_names_and_presets():
    assert zoo.names() == ["spikegpt", "spikingbrain", "spikingbrain_moe", "transformer"]
    assert zoo.presets("spikingbrain") == ["tiny", "small", "1b", "7b"]
    assert zoo.presets("spikingbrain_moe") == ["tiny", "small", "1b", "76b"]
    for name in zoo.names():
        assert {"tiny", "small", "1b"} <= set(zoo.presets(name))
        tiny = zoo.config(name, "tiny")
        assert tiny.hidden_size <= 128 and tiny.num_hidden_layers <= 4
        small = zoo.config(name, "small")
        assert small.hidden_size == 512 and small.num_hidden_layers == 8


def test_create_forward_shapes_and_spec():
    model = zoo.create("spikingbrain:tiny", num_hidden_layers=2)
    assert model.config.num_hidden_layers == 2
    logits = model(torch.randint(0, 256, (3, 11)))
    assert logits.shape == (3, 11, 260)
    with pytest.raises(KeyError, match="unknown model"):
        zoo.create("mamba")
    with pytest.raises(KeyError, match="unknown preset"):
        zoo.config("spikegpt", "7b")


def test_7b_layer_pattern():
    cfg = zoo.config("spikingbrain", "7b")
    assert cfg.attn_layers == list(range(1, 28, 2)) and cfg.head_dim == 128
    with torch.device("meta"):
        m = zoo.create("spikingbrain", "7b")
    kinds = [type(b.attn).__name__ for b in m.model.layers]
    assert kinds[:2] == ["GatedLinearAttention", "SoftmaxAttention"] and kinds.count("GatedLinearAttention") == 14
    assert m.model.layers[1].attn.window == 4096


def test_config_json_roundtrip(tmp_path):
    for name in zoo.names():
        cfg = zoo.config(name, "small")
        cfg.save(tmp_path / name)
        assert type(cfg).load(tmp_path / name) == cfg


def test_no_compiler_imports():
    import pathlib
    import re
    src = pathlib.Path(zoo.__file__).parent
    for f in src.glob("*.py"):
        text = f.read_text()
        assert not re.search(r"^\s*(from|import)\s+spikec(?!\.models)", text, re.M), f.name
        assert "from spikec" not in text and "import spikec" not in text.replace("import spikec.models", ""), f.name
