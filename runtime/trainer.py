"""Trainer: next-token training of a compiled model (torch target) with exact resume.

    tr = Trainer(module, data, TrainConfig(steps=300, batch_size=8, seq_len=128), ckpt_dir="run1")
    tr.fit()            # resumes from run1/checkpoint.pt when it exists

`module` maps ids [B, T] -> logits [B, T, V] and has parameters (the torch
target's compiled module, or any nn.Module). Batches are a pure function of
(seed, step, rank), so the only data position to save is the step counter;
a checkpoint holds parameters, optimizer and scheduler state, RNG states and
the loss history, and is written atomically (temp file + rename). A run
killed at any point and resumed produces the same loss sequence, bit for bit.

Data parallel: under `torchrun` (gloo on CPU) each rank takes its slice of the
global batch and gradients are averaged with all_reduce; rank 0 writes.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import CheckpointError, RuntimeInputError

CKPT = "checkpoint.pt"
LOG = "losses.jsonl"


@dataclass
class TrainConfig:
    steps: int = 300
    batch_size: int = 8            # global batch (split across data-parallel ranks)
    seq_len: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    grad_accum: int = 1
    precision: str = "fp32"        # fp32 | bf16 (autocast)
    ckpt_every: int = 50
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "grad_accum", "ckpt_every"):
            if getattr(self, name) < 1:
                raise RuntimeInputError(f"train config: {name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise RuntimeInputError(f"train config: precision must be fp32 or bf16, got {self.precision!r}")
        if self.lr <= 0:
            raise RuntimeInputError(f"train config: lr must be > 0, got {self.lr}")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to lr * min_lr_ratio at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_at(data: torch.Tensor, cfg: TrainConfig, step: int, micro: int, rank: int, world: int):
    """The (inputs, targets) of one rank's micro-batch: a pure function of its arguments."""
    if data.numel() < cfg.seq_len + 2:
        raise RuntimeInputError(f"training data has {data.numel()} tokens; need more than seq_len + 1 = {cfg.seq_len + 1}")
    per_rank = cfg.batch_size // world
    g = torch.Generator().manual_seed(((cfg.seed * 1_000_003 + step) * 1009 + micro) & 0x7FFF_FFFF_FFFF)
    starts = torch.randint(0, data.numel() - cfg.seq_len - 1, (cfg.batch_size,), generator=g)
    starts = starts[rank * per_rank:(rank + 1) * per_rank]
    idx = starts[:, None] + torch.arange(cfg.seq_len + 1)
    chunk = data[idx]
    return chunk[:, :-1], chunk[:, 1:]


def _dist():
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


class Trainer:
    def __init__(self, module: torch.nn.Module, data: torch.Tensor, cfg: TrainConfig, ckpt_dir: str | None = None,
                 progress: bool = True, on_step: Callable[[int, float], None] | None = None,
                 vocab_size: int | None = None):
        cfg.validate()
        if vocab_size and data.numel() and (int(data.min()) < 0 or int(data.max()) >= vocab_size):
            bad = int(data.min()) if int(data.min()) < 0 else int(data.max())
            raise RuntimeInputError(f"training data holds token id {bad}, outside the model's vocabulary "
                                    f"[0, {vocab_size})", hint="the tokenizer and the model do not match")
        self.dist, self.rank, self.world = _dist()
        if cfg.batch_size % self.world:
            raise RuntimeInputError(f"batch_size {cfg.batch_size} does not split over {self.world} ranks")
        self.module, self.data, self.cfg, self.ckpt_dir = module, data.long().flatten(), cfg, ckpt_dir
        self.progress, self.on_step = progress and self.rank == 0, on_step
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise RuntimeInputError("the module has no trainable parameters (compile for the torch target to train)")
        decay = [p for p in self.params if p.dim() >= 2]
        no_decay = [p for p in self.params if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
        self.step = 0
        self.losses: list[float] = []
        if self.dist is not None:
            for p in module.parameters():         # every rank starts from rank 0's weights
                self.dist.broadcast(p.data, 0)

    # -- checkpoints ---------------------------------------------------------------
    def _ckpt_path(self) -> str | None:
        return os.path.join(self.ckpt_dir, CKPT) if self.ckpt_dir else None

    def save_checkpoint(self) -> None:
        path = self._ckpt_path()
        if path is None or self.rank != 0:
            return
        os.makedirs(self.ckpt_dir, exist_ok=True)
        state = {"step": self.step, "losses": self.losses, "config": asdict(self.cfg),
                 "model": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                 "rng": torch.get_rng_state()}
        tmp = f"{path}.tmp-{os.getpid()}"
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def resume(self) -> bool:
        path = self._ckpt_path()
        if path is None or not os.path.exists(path):
            return False
        try:
            # weights_only: a checkpoint is tensors, numbers, strings and containers; a
            # tampered file cannot run code while it is read.
            state = torch.load(path, weights_only=True)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise CheckpointError(f"{path} cannot be read ({type(e).__name__}: {first})",
                                  hint="delete it to start over, or restore it from a backup") from e
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} holds a {type(state).__name__}, not a spikec training checkpoint")
        for key in ("step", "losses", "model", "optimizer", "rng", "config"):
            if key not in state:
                raise CheckpointError(f"{path} lacks {key!r}: not a spikec training checkpoint")
        if not isinstance(state["config"], dict) or not isinstance(state["step"], int) or state["step"] < 0 \
                or not isinstance(state["losses"], list):
            raise CheckpointError(f"{path} has a damaged 'config', 'step' or 'losses' record")
        if state["config"] != asdict(self.cfg):
            diff = {k: (state["config"].get(k), v) for k, v in asdict(self.cfg).items() if state["config"].get(k) != v}
            raise CheckpointError(f"{path} was written with a different training config: {diff}",
                                  hint="resume with the same settings, or use a new checkpoint directory")
        try:
            self.module.load_state_dict(state["model"])
        except (RuntimeError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{path} does not fit this model: {str(e).splitlines()[0]}") from e
        # Restore into copies first: a checkpoint that fails half-way leaves the trainer as it was.
        opt_state = self.opt.state_dict()
        try:
            self.opt.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as e:
            self.opt.load_state_dict(opt_state)
            raise CheckpointError(f"{path} holds an optimizer state that does not fit this model "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
        try:
            torch.set_rng_state(state["rng"])
        except (TypeError, RuntimeError) as e:
            raise CheckpointError(f"{path} holds a damaged RNG state ({type(e).__name__})") from e
        self.step, self.losses = int(state["step"]), list(state["losses"])
        return True

    def _log(self, step: int, loss: float, tok_s: float) -> None:
        if not self.ckpt_dir or self.rank != 0:
            return
        with open(os.path.join(self.ckpt_dir, LOG), "a") as f:
            f.write(json.dumps({"step": step, "loss": loss, "tokens_per_s": round(tok_s, 1)}) + "\n")

    # -- training ------------------------------------------------------------------
    def _loss(self, x, y) -> torch.Tensor:
        try:
            if self.cfg.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = self.module(x)
            else:
                logits = self.module(x)
            return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        except IndexError as e:     # an embedding or the loss indexed past the vocabulary
            raise RuntimeInputError(f"a training batch holds a token id the model cannot take (ids "
                                    f"{int(x.min())}..{max(int(x.max()), int(y.max()))}): {e}",
                                    hint="pass vocab_size= to check the data up front; the tokenizer and "
                                         "the model may not match") from e

    def train_step(self) -> float:
        cfg = self.cfg
        for group in self.opt.param_groups:
            group["lr"] = lr_at(cfg, self.step)
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(cfg.grad_accum):
            x, y = batch_at(self.data, cfg, self.step, micro, self.rank, self.world)
            loss = self._loss(x, y) / cfg.grad_accum
            loss.backward()
            total += float(loss.detach())
        if self.dist is not None:
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                self.dist.all_reduce(p.grad)
                p.grad /= self.world
            t = torch.tensor([total])
            self.dist.all_reduce(t)
            total = float(t) / self.world
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        self.step += 1
        return total

    def fit(self) -> list[float]:
        """Train to cfg.steps (resuming from the checkpoint if present); returns the loss history."""
        self.resume()
        if self.ckpt_dir and self.rank == 0:
            # the log holds exactly the steps the checkpoint has; later lines were lost with the process
            os.makedirs(self.ckpt_dir, exist_ok=True)
            with open(os.path.join(self.ckpt_dir, LOG), "w") as f:
                f.writelines(json.dumps({"step": i, "loss": v}) + "\n" for i, v in enumerate(self.losses))
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=self.cfg.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        tokens = self.cfg.batch_size * self.cfg.seq_len * self.cfg.grad_accum
        while self.step < self.cfg.steps:
            t0 = time.perf_counter()
            loss = self.train_step()
            dt = time.perf_counter() - t0
            self.losses.append(loss)
            self._log(self.step - 1, loss, tokens / dt)
            if self.on_step:
                self.on_step(self.step - 1, loss)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens / dt:,.0f}")
            if self.step % self.cfg.ckpt_every == 0 or self.step == self.cfg.steps:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        return self.losses
