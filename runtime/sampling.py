"""Choosing the next token from logits: greedy, temperature, top-k, top-p."""
from __future__ import annotations

import torch


def check_sampling(temperature, top_k, top_p) -> None:
    """Refuse settings that would silently mean something else (a negative temperature, an
    empty nucleus, zero candidates)."""
    from .errors import RuntimeInputError
    if temperature is not None and not (temperature >= 0 and temperature != float("inf")):
        raise RuntimeInputError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise RuntimeInputError(f"top_k must be an integer >= 1 (or None for no limit), got {top_k}")
    if top_p is not None and not (0 < top_p <= 1):
        raise RuntimeInputError(f"top_p must be in (0, 1] (or None for no nucleus), got {top_p}")


def filter_top_k_top_p(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """logits [B, V] with everything outside the top-k and the nucleus set to -inf."""
    if top_k:
        k = min(int(top_k), logits.shape[-1])
        kth = logits.topk(k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        vals, order = logits.sort(dim=-1, descending=True)
        probs = vals.softmax(-1)
        # keep a token while the mass strictly before it is below top_p (the best one always stays)
        remove_sorted = (probs.cumsum(-1) - probs) >= top_p
        remove = torch.empty_like(remove_sorted).scatter_(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def sample(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """logits [B, V] -> ids [B]. temperature 0 is greedy. Settings are checked once per
    generate call (check_sampling), not here on every token."""
    if temperature is None or temperature <= 0:
        return logits.argmax(-1)
    logits = filter_top_k_top_p(logits.float() / temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
