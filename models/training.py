"""Eager training loop for the zoo (the baseline the compiled training path is compared to):
AdamW, linear warmup then cosine decay, gradient clipping, a tqdm bar with loss and tokens/s,
and a fixed validation set evaluated every ``eval_every`` steps.
"""
from __future__ import annotations

import dataclasses
import math
import time

import torch
from tqdm.auto import tqdm

from .corpus import build_corpus, random_batch


@dataclasses.dataclass
class TrainResult:
    steps: int
    tokens: int
    elapsed_s: float
    initial_val_loss: float
    final_val_loss: float
    history: list[dict]          # one row per evaluation: step, train_loss, val_loss, lr, tokens_per_s

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@torch.no_grad()
def evaluate(model, data: torch.Tensor, batch_size: int, seq_len: int, batches: int, seed: int = 1234) -> float:
    """Mean next-token cross entropy on ``batches`` fixed windows (same windows every call)."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(batches):
        x, y = random_batch(data, batch_size, seq_len, g)
        total += float(torch.nn.functional.cross_entropy(model(x).flatten(0, 1).float(), y.flatten()))
    model.train(was_training)
    return total / batches


def cosine_schedule(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # matrices decay; norms, biases and RWKV time parameters do not
        (decay if p.dim() >= 2 and "time_" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_eager(model, corpus: dict | None = None, *, steps: int = 300, batch_size: int = 16,
                seq_len: int = 128, lr: float = 3e-3, min_lr_ratio: float = 0.1,
                warmup_steps: int | None = None, weight_decay: float = 0.1,
                betas: tuple[float, float] = (0.9, 0.95), grad_clip: float = 1.0,
                eval_every: int = 50, eval_batches: int = 8, seed: int = 0,
                progress: bool = True) -> TrainResult:
    """Train ``model`` on ``corpus`` ({"train", "val"} token tensors; default: stdlib corpus)."""
    corpus = corpus if corpus is not None else build_corpus()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    warmup = warmup_steps if warmup_steps is not None else max(1, steps // 20)
    opt = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_schedule(s, steps, warmup, min_lr_ratio))

    def val() -> float:
        return evaluate(model, corpus["val"], batch_size, seq_len, eval_batches)

    initial = val()
    history = [{"step": 0, "train_loss": None, "val_loss": initial, "lr": lr * cosine_schedule(0, steps, warmup, min_lr_ratio), "tokens_per_s": None}]
    model.train()
    start = time.perf_counter()
    tokens, window_tokens, window_start, last = 0, 0, start, float("nan")
    bar = tqdm(range(1, steps + 1), disable=not progress, desc="train", dynamic_ncols=True)
    for step in bar:
        x, y = random_batch(corpus["train"], batch_size, seq_len, gen)
        loss, parts = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        last = float(parts["ce"])
        tokens += x.numel()
        window_tokens += x.numel()
        now = time.perf_counter()
        tps = window_tokens / max(now - window_start, 1e-9)
        bar.set_postfix(loss=f"{last:.3f}", tok_s=f"{tps:,.0f}")
        if step % eval_every == 0 or step == steps:
            history.append({"step": step, "train_loss": last, "val_loss": val(),
                            "lr": sched.get_last_lr()[0], "tokens_per_s": tps})
            window_tokens, window_start = 0, time.perf_counter()
    bar.close()
    final = history[-1]["val_loss"]
    return TrainResult(steps=steps, tokens=tokens, elapsed_s=time.perf_counter() - start,
                       initial_val_loss=initial, final_val_loss=final, history=history)
