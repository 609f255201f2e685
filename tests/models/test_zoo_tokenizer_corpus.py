"""Byte tokenizer, tokenizer.json support, and the stdlib corpus."""
import torch

import spikec.models as zoo
from spikec.models.corpus import random_batch


def test_byte_tokenizer_roundtrip():
    tok = zoo.ByteTokenizer()
    text = "def f(x):\n    return x  # ünïcødé ✓"
    ids = tok.encode(text, add_eos=True)
    assert ids[-1] == tok.eos_token_id == 256 and max(ids[:-1]) < 256
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=False) == text + "<|endoftext|>"
    assert tok.vocab_size == zoo.config("spikingbrain", "tiny").vocab_size == 260


def test_tokenizer_json_is_used_when_present(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {"<|endoftext|>": 0, "hello": 1, "world": 2, "[UNK]": 3}
    t = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.save(str(tmp_path / "tokenizer.json"))
    tok = zoo.load_tokenizer(tmp_path)
    assert isinstance(tok, zoo.HFTokenizer)
    assert tok.encode("hello world", add_eos=True) == [1, 2, 0]
    assert tok.eos_token_id == 0 and tok.vocab_size == 4
    assert isinstance(zoo.load_tokenizer(tmp_path / "nothing"), zoo.ByteTokenizer)


def test_corpus_is_deterministic_and_split_by_file():
    a = zoo.build_corpus(max_bytes=300_000)
    b = zoo.build_corpus(max_bytes=300_000)
    assert torch.equal(a["train"], b["train"]) and torch.equal(a["val"], b["val"])
    assert a["train"].numel() + a["val"].numel() >= 300_000 and a["train"].numel() > 0 and a["val"].numel() > 0
    assert int(a["train"].max()) < 260
    x, y = random_batch(a["train"], 3, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 16) and torch.equal(x[:, 1:], y[:, :-1])
