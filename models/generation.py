"""Eager token generation: greedy and sampling (temperature, top-k, top-p).

This is the baseline later runtime work is compared against, so it is kept simple: one
prefill of the prompt, then one ``model.step`` per new token with the cache passed in and
out explicitly. ``use_cache=False`` recomputes the whole prefix every step instead.
"""
from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus (top-p) set to -inf. logits: [B, V]."""
    if top_k is not None and top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass before it already reaches top_p (the first token always stays)
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: torch.Tensor, do_sample: bool, temperature: float, top_k, top_p,
               generator: torch.Generator | None) -> torch.Tensor:
    """logits: [B, V] -> token ids [B]."""
    if not do_sample or temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, max_new_tokens: int, *, do_sample: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             eos_token_id: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Return [B, T + n] ids (n <= max_new_tokens; stops early once every row emitted eos).

    Rows that finished keep emitting eos so the batch stays rectangular.
    """
    was_training = model.training
    model.eval()
    try:
        ids = input_ids
        finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        cache = None
        for i in range(max_new_tokens):
            if not use_cache:
                logits = model(ids)[:, -1]
            elif cache is None:
                logits, cache = model.prefill(ids)
                logits = logits[:, -1]
            else:
                logits, cache = model.step(ids[:, -1:], cache)
                logits = logits[:, -1]
            tok = next_token(logits, do_sample, temperature, top_k, top_p, generator)
            if eos_token_id is not None:
                tok = torch.where(finished, torch.full_like(tok, eos_token_id), tok)
                finished = finished | (tok == eos_token_id)
            ids = torch.cat([ids, tok[:, None]], dim=1)
            if eos_token_id is not None and bool(finished.all()):
                break
        return ids
    finally:
        model.train(was_training)
