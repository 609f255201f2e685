"""Small test modules with the structures the compiler must capture: a GLA
recurrence as a Python loop, causal-masked linear attention, sliding-window
softmax attention, top-2 MoE dispatched with nonzero, RMSNorm, RoPE, SwiGLU,
a scan-based recurrence and a torch.library custom op. Written the way a
researcher writes them; they never import spikec."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch._higher_order_ops.scan import scan

D = 16


@torch.library.custom_op("spikec_test::spike", mutates_args=())
def spike(x: torch.Tensor, thresh: float) -> torch.Tensor:
    return (x > thresh).to(x.dtype)


@spike.register_fake
def _(x, thresh):
    return torch.empty_like(x)


class RMSNorm(nn.Module):
    def __init__(self, d=D, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(d) + 0.5)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    def __init__(self, d=D, hidden=2 * D):
        super().__init__()
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class RoPE(nn.Module):
    """NeoX rotate-half RoPE over [B, T, H, d]."""

    def __init__(self, head_dim=8, theta=1e6):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim))

    def forward(self, x):
        T = x.shape[1]
        pos = torch.arange(T, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat([freqs, freqs], -1)[None, :, None, :]
        x1, x2 = x.chunk(2, -1)
        return x * emb.cos() + torch.cat([-x2, x1], -1) * emb.sin()


class GLALoop(nn.Module):
    """Gated linear attention, the naive Python loop over time."""

    def __init__(self, d=D):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.g = nn.Linear(d, d)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = F.relu(self.q(x)), F.relu(self.k(x)), self.v(x)
        g = F.logsigmoid(self.g(x)) / 16
        S = x.new_zeros(B, d, d)
        outs = []
        for t in range(T):
            S = torch.exp(g[:, t])[:, :, None] * S + k[:, t, :, None] * v[:, t, None, :]
            outs.append((q[:, t] * d ** -0.5)[:, None, :] @ S)
        return torch.cat(outs, 1)


class GLAScan(nn.Module):
    """The same recurrence written with torch's scan (T stays symbolic)."""

    def __init__(self, d=D):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.g = nn.Linear(d, d)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = F.relu(self.q(x)), F.relu(self.k(x)), self.v(x)
        g = F.logsigmoid(self.g(x)) / 16

        def step(S, xs):
            qt, kt, vt, gt = xs
            S = torch.exp(gt)[:, :, None] * S + kt[:, :, None] * vt[:, None, :]
            return S.clone(), torch.einsum("bd,bde->be", qt * d ** -0.5, S)

        S0 = torch.zeros(B, d, d)
        _, o = scan(step, S0, (q, k, v, g), dim=1)
        return o


class CausalLinearAttention(nn.Module):
    """The quadratic masked form ((q kᵀ) ⊙ M) v."""

    def __init__(self, d=D):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        T = x.shape[1]
        q, k, v = F.relu(self.q(x)), F.relu(self.k(x)), self.v(x)
        mask = torch.tril(torch.ones(T, T))
        return ((q @ k.transpose(-1, -2)) * mask) @ v


class SlidingWindowAttention(nn.Module):
    """Multi-head softmax attention with a band mask, RoPE on q and k."""

    def __init__(self, d=D, heads=2, window=4):
        super().__init__()
        self.h, self.hd, self.window = heads, d // heads, window
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d, bias=False)
        self.rope = RoPE(self.hd)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.hd).unbind(2)
        q, k = self.rope(q), self.rope(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd)
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        band = (j <= i) & (j > i - self.window)
        scores = scores.masked_fill(~band, float("-inf"))
        out = scores.softmax(-1) @ v
        return self.o(out.transpose(1, 2).reshape(B, T, d))


class MoETop2(nn.Module):
    """Top-2 of 4 experts; tokens dispatched with nonzero / index_select / index_add."""

    def __init__(self, d=D, experts=4, hidden=2 * D):
        super().__init__()
        self.router = nn.Linear(d, experts, bias=False)
        self.experts = nn.ModuleList([SwiGLU(d, hidden) for _ in range(experts)])

    def forward(self, x):
        B, T, d = x.shape
        flat = x.reshape(-1, d)
        probs = self.router(flat).softmax(-1)
        w, idx = probs.topk(2, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            hit = (idx == e)
            rows = hit.any(-1).nonzero().squeeze(-1)
            weight = (w * hit).sum(-1).index_select(0, rows)
            y = expert(flat.index_select(0, rows)) * weight[:, None]
            out = out.index_add(0, rows, y)
        return out.reshape(B, T, d)


class Spiking(nn.Module):
    def __init__(self, d=D):
        super().__init__()
        self.l = nn.Linear(d, d)

    def forward(self, x):
        return spike(self.l(x), 0.1) * x


class Branchy(nn.Module):
    """Data-dependent branch with torch.cond."""

    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda x: x.sin(), lambda x: x.cos() * 2, (x,))


class DecayLoop(nn.Module):
    """A while_loop: decay the input a fixed number of times."""

    def forward(self, x):
        from torch._higher_order_ops.while_loop import while_loop
        i0 = torch.zeros((), dtype=torch.int64)
        return while_loop(lambda i, s: i < 5, lambda i, s: (i + 1, s * 0.5 + 1), (i0, x))[1]


class Block(nn.Module):
    """RMSNorm + one mixer + RMSNorm + SwiGLU, residual."""

    def __init__(self, mixer: nn.Module, d=D):
        super().__init__()
        self.n1, self.n2, self.mixer, self.ffn = RMSNorm(d), RMSNorm(d), mixer, SwiGLU(d)

    def forward(self, x):
        h = x + self.mixer(self.n1(x))
        return h + self.ffn(self.n2(h))


def make(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return MODULES[name]().eval()


MODULES = {
    "rmsnorm": RMSNorm, "swiglu": SwiGLU, "rope": lambda: _RoPE4D(),
    "gla_loop": GLALoop, "gla_scan": GLAScan, "causal_linear": CausalLinearAttention,
    "swa": SlidingWindowAttention, "moe_nonzero": MoETop2, "spiking": Spiking,
    "block_gla": lambda: Block(GLALoop()), "block_swa": lambda: Block(SlidingWindowAttention()),
    "block_moe": lambda: Block(MoETop2()),
    "cond": Branchy, "while_loop": DecayLoop,
}

# Modules whose sequence length can stay symbolic (no Python loop over time).
DYNAMIC_OK = {"rmsnorm", "swiglu", "rope", "gla_scan", "causal_linear", "swa", "moe_nonzero", "spiking",
              "block_swa", "block_moe", "cond"}


class _RoPE4D(nn.Module):
    def __init__(self):
        super().__init__()
        self.rope = RoPE(8)

    def forward(self, x):
        B, T, d = x.shape
        return self.rope(x.view(B, T, 2, 8)).reshape(B, T, d)


def example_input(T: int = 8, B: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g)
