"""NeoX-style (rotate-half) rotary position embedding.

Angles are computed from positions on the fly (no cached tables or buffers): the same
expression serves the full-sequence path and the one-token decode path, so both round
identically, and a model built on the meta device has no buffer to restore.
"""
from __future__ import annotations

import torch


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """positions: integer tensor of any shape -> (cos, sin) of shape [*positions.shape, head_dim]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device,
                                              dtype=torch.float32) / head_dim))
    freqs = positions.to(torch.float32).unsqueeze(-1) * inv_freq
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, T, D]; cos/sin: [T, D] (broadcast over batch and heads)."""
    return (x.float() * cos + rotate_half(x.float()) * sin).to(x.dtype)
