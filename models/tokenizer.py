"""Tokenizers: a byte-level one that needs no download, and ``tokenizer.json`` through the
``tokenizers`` package when a model directory ships one.

Byte tokenizer ids: 0..255 are the bytes, then the special tokens below (vocab 260). The
tiny/small presets use vocab_size=260 to match.
"""
from __future__ import annotations

import json
import os

SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>")
TOKENIZER_CONFIG = "tokenizer_config.json"


class ByteTokenizer:
    def __init__(self):
        self.special_tokens = {tok: 256 + i for i, tok in enumerate(SPECIAL_TOKENS)}
        self.eos_token_id = self.special_tokens["<|endoftext|>"]
        self.pad_token_id = self.special_tokens["<|pad|>"]
        self.bos_token_id = None

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.special_tokens)

    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        return ids + [self.eos_token_id] if add_eos else ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        by_id = {v: k for k, v in self.special_tokens.items()}
        out, buf = [], bytearray()
        for i in (int(t) for t in ids):
            if i < 256:
                buf.append(i)
                continue
            out.append(buf.decode("utf-8", errors="replace"))
            buf = bytearray()
            if not skip_special_tokens:
                out.append(by_id.get(i, ""))
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def save(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, TOKENIZER_CONFIG), "w") as f:
            json.dump({"tokenizer_class": "ByteTokenizer", "special_tokens": list(SPECIAL_TOKENS)}, f, indent=2)


class HFTokenizer:
    """``tokenizer.json`` (e.g. Qwen2.5's, which SpikingBrain-7B uses) behind the same interface."""

    def __init__(self, path: str | os.PathLike):
        from tokenizers import Tokenizer
        self._tok = Tokenizer.from_file(str(path))
        self.eos_token_id = self._find("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>")
        self.pad_token_id = self._find("<|pad|>", "<pad>") or self.eos_token_id
        self.bos_token_id = self._find("<s>", "<|begin_of_text|>", "<bos>")

    def _find(self, *names):
        for n in names:
            i = self._tok.token_to_id(n)
            if i is not None:
                return i
        return None

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return ids + [self.eos_token_id] if add_eos and self.eos_token_id is not None else ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def save(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        self._tok.save(os.path.join(directory, "tokenizer.json"))


def load_tokenizer(directory: str | os.PathLike | None = None):
    """``tokenizer.json`` in ``directory`` if there is one, else the byte tokenizer."""
    if directory is not None and os.path.exists(os.path.join(directory, "tokenizer.json")):
        return HFTokenizer(os.path.join(directory, "tokenizer.json"))
    return ByteTokenizer()
