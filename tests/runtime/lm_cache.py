"""Captured zoo language models, shared by the runtime tests (capture is the slow part)."""
from __future__ import annotations

import functools

import torch

import spikec.models as zoo
from spikec.lm_capture import capture_lm

ZOO = ("spikingbrain", "spikingbrain_moe", "spikegpt", "transformer")
PIPELINE = "default,fuse-linear-attention,fuse-attention"


@functools.lru_cache(maxsize=None)
def model(name: str):
    torch.manual_seed(0)
    return zoo.create(name, "tiny").eval()


@functools.lru_cache(maxsize=None)
def captured(name: str):
    m = model(name)
    return capture_lm(m, m.config.vocab_size, max_len=4096)


@functools.lru_cache(maxsize=None)
def compiled(name: str, target: str = "torch"):
    import spikec
    return spikec.compile(captured(name), target=target, pipeline=PIPELINE)
