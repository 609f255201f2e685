"""Session: run a compiled language model — forward, prefill, decode, generate.

The artifact's `prefill` entry turns a prompt into logits and the decode state;
`decode` takes one token per sequence and the state, and returns the next
logits and a new state. GLA layers carry a constant-size recurrent state, SWA
layers a ring buffer of `window` keys/values, full-attention layers a KV cache
that grows by one per token (see DecodeState.nbytes).

Each call works on its own state, so one Session serves several threads; a
target whose compiled module is not reentrant is serialised with a lock.
"""
from __future__ import annotations

import threading
from typing import Iterator, Sequence

import torch

from .artifact import Artifact
from .errors import RuntimeInputError
from .sampling import check_sampling, sample
from .state import DecodeState


class Session:
    def __init__(self, artifact: Artifact):
        self.artifact = artifact
        self.layout = artifact.state
        self.vocab_size = artifact.meta.get("vocab_size")
        self._locks = {name: threading.Lock() for name, e in artifact.entries.items()
                       if not getattr(e.module, "thread_safe", True)}

    @property
    def target(self) -> str:
        return self.artifact.target

    def _run(self, entry: str, *inputs) -> list:
        lock = self._locks.get(entry)
        if lock is None:
            return self.artifact.run(entry, *inputs)
        with lock:
            return self.artifact.run(entry, *inputs)

    def forward(self, *inputs):
        if self.vocab_size and inputs and isinstance(inputs[0], torch.Tensor) and not inputs[0].is_floating_point():
            inputs = (self._check_vocab(inputs[0], "forward input ids"), *inputs[1:])   # a language model's ids
        outs = self._run("forward", *inputs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    __call__ = forward

    # -- checks ------------------------------------------------------------------
    def _ids(self, ids, what: str = "input ids") -> torch.Tensor:
        if not isinstance(ids, torch.Tensor):
            ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2:
            raise RuntimeInputError(f"{what} must be [batch, length], got shape {list(ids.shape)}")
        if ids.dtype not in (torch.int64, torch.int32):
            raise RuntimeInputError(f"{what} must be integer token ids, got {ids.dtype}")
        if ids.shape[1] == 0:
            raise RuntimeInputError(f"{what} are empty: give at least one token")
        return self._check_vocab(ids, what).long()

    def _check_vocab(self, ids: torch.Tensor, what: str) -> torch.Tensor:
        if self.vocab_size and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise RuntimeInputError(f"{what} contain token id {bad}, outside the vocabulary [0, {self.vocab_size})")
        return ids

    # -- the two steps of generation ----------------------------------------------
    def empty_state(self, batch_size: int) -> DecodeState:
        return DecodeState([s.empty(batch_size) for s in self.layout], self.layout)

    def prefill(self, ids) -> tuple[torch.Tensor, DecodeState]:
        """Prompt [B, T] -> (logits [B, T, V], state after the prompt)."""
        ids = self._ids(ids)
        if "prefill" in self.artifact.entries:
            outs = self._run("prefill", ids)
            return outs[0], DecodeState(outs[1:], self.layout)
        # No length-generic prefill graph (the model's recurrence could not be captured
        # with a symbolic length): feed the prompt through decode, one token at a time.
        state, logits = self.empty_state(ids.shape[0]), []
        for t in range(ids.shape[1]):
            lg, state = self.decode(ids[:, t], state)
            logits.append(lg[:, None])
        return torch.cat(logits, 1), state

    def decode(self, tokens, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        """One token per sequence ([B] or [B, 1]) -> (logits [B, V], new state)."""
        tokens = self._ids(torch.as_tensor(tokens).reshape(-1, 1), "decode tokens")
        if tokens.shape[0] != state.batch_size:
            raise RuntimeInputError(f"decode got {tokens.shape[0]} tokens for a state of batch {state.batch_size}")
        outs = self._run("decode", tokens, *state.tensors)
        return outs[0][:, -1], DecodeState(outs[1:], self.layout)

    # -- generation ------------------------------------------------------------------
    def generate(self, ids, max_new_tokens: int = 32, *, temperature: float = 0.0, top_k: int | None = None,
                 top_p: float | None = None, stop: int | Sequence[int] | None = None, stream: bool = False,
                 seed: int | None = None):
        """Continue prompts. `ids` is a [B, T] tensor, or a list of prompts of different
        lengths (each list entry a 1-D sequence; the result is then a list).

        Greedy when temperature is 0. Generation stops when every sequence has produced a
        `stop` token (finished rows keep repeating it). stream=True returns an iterator
        of [B] token tensors instead of the full [B, T + n] ids."""
        check_sampling(temperature, top_k, top_p)
        if isinstance(ids, (list, tuple)) and ids and not isinstance(ids[0], int):
            if stream:
                raise RuntimeInputError("stream=True takes one [B, T] batch; stream each prompt separately")
            return self._generate_ragged(ids, max_new_tokens, temperature=temperature, top_k=top_k,
                                         top_p=top_p, stop=stop, seed=seed)
        ids = self._ids(ids)
        steps = self._steps(ids, max_new_tokens, temperature, top_k, top_p, stop, seed)
        if stream:
            return steps
        new = list(steps)
        return torch.cat([ids, torch.stack(new, 1)], 1) if new else ids

    def _steps(self, ids, max_new_tokens, temperature, top_k, top_p, stop, seed) -> Iterator[torch.Tensor]:
        if max_new_tokens < 0:
            raise RuntimeInputError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        stops = torch.tensor([stop] if isinstance(stop, int) else list(stop or []), dtype=torch.long)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if max_new_tokens == 0:
            return
        logits, state = self.prefill(ids)
        logits = logits[:, -1]
        finished = torch.zeros(ids.shape[0], dtype=torch.bool)
        for i in range(max_new_tokens):
            tok = sample(logits, temperature, top_k, top_p, gen)
            if len(stops):
                tok = torch.where(finished, stops[0], tok)
                finished |= torch.isin(tok, stops)
            yield tok
            if (len(stops) and bool(finished.all())) or i == max_new_tokens - 1:
                return
            logits, state = self.decode(tok, state)

    def _generate_ragged(self, prompts, max_new_tokens, **kw) -> list[torch.Tensor]:
        # Prompts of equal length run as one batch; the decode position is shared by a
        # batch, so different lengths are separate batches (same tokens as alone).
        seqs = [self._ids(p)[0] for p in prompts]
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(seqs):
            groups.setdefault(len(s), []).append(i)
        out: list = [None] * len(seqs)
        for idx in groups.values():
            res = self.generate(torch.stack([seqs[i] for i in idx]), max_new_tokens, **kw)
            for j, i in enumerate(idx):
                out[i] = res[j]
        return out

    def state_bytes(self, state: DecodeState) -> int:
        return state.nbytes()
