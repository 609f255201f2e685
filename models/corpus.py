"""A small training corpus built from files already on the machine: the Python standard
library's own source. Nothing is downloaded. Deterministic: files are read in sorted order
and the split is by file, so train and validation text never overlap.
"""
from __future__ import annotations

import os
import sysconfig

import torch

from .tokenizer import ByteTokenizer


def stdlib_files(root: str | None = None) -> list[str]:
    root = root or sysconfig.get_paths()["stdlib"]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__", "test", "tests"))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
    return found


def build_corpus(max_bytes: int = 4_000_000, val_fraction: float = 0.05, tokenizer=None,
                 root: str | None = None) -> dict[str, torch.Tensor]:
    """Return {"train": LongTensor, "val": LongTensor} of token ids (documents joined by eos).

    Every ``round(1 / val_fraction)``-th file (offset by half that) goes to validation, so any
    prefix of the sorted file list has both splits.
    """
    tok = tokenizer or ByteTokenizer()
    parts = {"train": [], "val": []}
    total = 0
    base = root or sysconfig.get_paths()["stdlib"]
    every = max(2, round(1 / val_fraction))
    for i, path in enumerate(stdlib_files(root)):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        split = "val" if i % every == every // 2 else "train"
        parts[split] += tok.encode(text, add_eos=True)
        total += len(text)
        if total >= max_bytes:
            break
    if not parts["val"] or not parts["train"]:
        raise RuntimeError(f"corpus from {base} is empty or has no validation split")
    return {k: torch.tensor(v, dtype=torch.long) for k, v in parts.items()}


def random_batch(data: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator):
    """Random windows: (inputs [B, T], next-token targets [B, T])."""
    starts = torch.randint(0, data.numel() - seq_len - 1, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(seq_len + 1)
    chunk = data[idx]
    return chunk[:, :-1], chunk[:, 1:]
