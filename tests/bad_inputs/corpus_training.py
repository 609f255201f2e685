"""Corpus cases for training: damaged resume checkpoints, unusable data and settings."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

import bad_makers as mk
from corpus_case import case
from spikec.runtime import CheckpointError, RuntimeInputError


# == training checkpoints (resume) =============================================================
TRAIN_CLI = ("train", "{art}", "--data", "{data}", "--steps", "2", "--batch-size", "2", "--seq-len", "8",
             "--ckpt-dir", "{input}", "-q")


def train_case(id, damage, match, after=None):
    def make(c):
        d = mk.copy_dir(c.shared.train_checkpoint, c.tmp / "run")
        damage(d, c)
        return {"input": d, "art": c.shared.artifact, "data": c.shared.data_file, "marker": str(c.tmp / "PLANTED")}

    def api(m, c):
        c.shared.trainer(m["input"]).resume()
    case(id, "train-checkpoint", match, make=make, api=api, cli=TRAIN_CLI, error=CheckpointError, after=after)


CK = "checkpoint.pt"
train_case("train_ckpt_truncated", lambda d, c: mk.truncate(f"{d}/{CK}", 0.5),
           r"checkpoint\.pt cannot be read \(.*\) \(hint: delete it to start over")
train_case("train_ckpt_random_bytes",
           lambda d, c: Path(f"{d}/{CK}").write_bytes(np.random.default_rng(1).bytes(512)),
           r"checkpoint\.pt cannot be read")
train_case("train_ckpt_not_a_dict", lambda d, c: torch.save([1, 2, 3], f"{d}/{CK}"),
           r"checkpoint\.pt holds a list, not a spikec training checkpoint")
train_case("train_ckpt_missing_key", lambda d, c: mk.edit_train_checkpoint(d, lambda s: {k: v for k, v in s.items()
                                                                                         if k != "optimizer"}),
           r"checkpoint\.pt lacks 'optimizer': not a spikec training checkpoint")
train_case("train_ckpt_other_config",
           lambda d, c: mk.edit_train_checkpoint(d, lambda s: {**s, "config": {**s["config"], "lr": 0.5}}),
           r"checkpoint\.pt was written with a different training config: \{'lr': \(0\.5, 0\.003\)\}")
train_case("train_ckpt_misshaped_parameter", lambda d, c: mk.edit_train_checkpoint(d, lambda s: {
    **s, "model": {k: (v[:-1] if i == 0 else v) for i, (k, v) in enumerate(s["model"].items())}}),
    r"checkpoint\.pt does not fit this model: Error\(s\) in loading state_dict")
train_case("train_ckpt_optimizer_mismatch", lambda d, c: mk.edit_train_checkpoint(d, lambda s: {
    **s, "optimizer": {**s["optimizer"], "param_groups": s["optimizer"]["param_groups"][:1]}}),
    r"checkpoint\.pt holds an optimizer state that does not fit this model \(ValueError: ")
train_case("train_ckpt_rng_damaged",
           lambda d, c: mk.edit_train_checkpoint(d, lambda s: {**s, "rng": torch.zeros(3)}),
           r"checkpoint\.pt holds a damaged RNG state")
train_case("train_ckpt_negative_step", lambda d, c: mk.edit_train_checkpoint(d, lambda s: {**s, "step": -4}),
           r"checkpoint\.pt has a damaged 'config', 'step' or 'losses' record")


def _plant(d, c):
    torch.save({"step": mk.Planted(str(c.tmp / "PLANTED"))}, f"{d}/{CK}")


def _nothing_ran(m):
    assert not os.path.exists(m["marker"]), "reading the checkpoint ran code from it"


train_case("train_ckpt_runs_code", _plant, r"checkpoint\.pt cannot be read \(UnpicklingError: Weights only load failed",
           after=_nothing_ran)


def _train_data_case(id, text, match):
    def make(c):
        path = c.tmp / "data.txt"
        if text is not None:
            path.write_text(text)
        return {"art": c.shared.artifact, "data": str(path)}

    def api(m, c):
        import spikec.models as zoo
        from spikec.runtime import load_artifact
        from spikec.runtime.trainer import TrainConfig, Trainer
        data = torch.tensor(zoo.ByteTokenizer().encode(text, add_eos=True))
        Trainer(load_artifact(m["art"]).module, data, TrainConfig(**mk.TRAIN_ARGS), progress=False).fit()
    case(id, "train-checkpoint", match, make=make, api=api if text is not None else None,
         cli=("train", "{art}", "--data", "{data}", "--steps", "2", "--batch-size", "2", "--seq-len", "8", "-q"),
         error=RuntimeInputError)


_train_data_case("train_data_too_short", "abc", r"training data has 4 tokens; need more than seq_len \+ 1 = 9")
_train_data_case("train_data_missing", None, r"cannot read training data .*data\.txt: No such file or directory")
def _zero_steps(m, c):
    from spikec.runtime.trainer import TrainConfig, Trainer
    Trainer(mk.ByteLM(), c.shared.train_data(), TrainConfig(**{**mk.TRAIN_ARGS, "steps": 0}), progress=False)


case("train_zero_steps", "train-checkpoint", r"train config: steps must be >= 1, got 0",
     make=lambda c: {"art": c.shared.artifact, "data": c.shared.data_file}, api=_zero_steps,
     cli=("train", "{art}", "--data", "{data}", "--steps", "0", "-q"), error=RuntimeInputError)
