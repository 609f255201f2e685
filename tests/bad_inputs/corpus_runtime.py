"""Corpus cases at run time: wrong input shapes and dtypes, token ids outside the vocabulary."""
from __future__ import annotations


import torch

import bad_makers as mk
import spikec
from corpus_case import case
from spikec.ir import SpikecError
from spikec.runtime import RuntimeInputError


# == wrong inputs at run time, token ids out of range =========================================
def runtime_case(id, call, match, error, category="runtime-input", known=None):
    case(id, category, match, api=lambda m, c: call(c.shared), error=error, known=known)


LONG = dict(dtype=torch.long)
runtime_case("run_wrong_rank", lambda s: s.session.artifact(torch.zeros(8, **LONG)),
             r"input %ids must be torch\.int64 \[\?, \?\], got torch\.int64 \[8\]", SpikecError)
runtime_case("run_wrong_dtype", lambda s: s.session.artifact(torch.zeros(2, 8)),
             r"input %ids must be torch\.int64 \[\?, \?\], got torch\.float32 \[2, 8\]", SpikecError)
runtime_case("run_not_a_tensor", lambda s: s.session.artifact([[1, 2, 3]]),
             r"input %ids must be a tensor, got list", SpikecError)
runtime_case("run_too_many_inputs", lambda s: s.session.artifact(torch.zeros(2, 8, **LONG), torch.zeros(2)),
             r"entry 'forward' takes 1 input\(s\) \(%ids: i64\[B, T\]\), got 2", SpikecError)
runtime_case("run_entry_missing", lambda s: s.session.artifact.run("decode", torch.zeros(2, 1, **LONG)),
             r"this artifact has no 'decode' entry \(it has: forward\)", SpikecError)
T = dict(category="token-ids")
runtime_case("ids_above_vocabulary", lambda s: s.session.generate(torch.tensor([[1, 300]]), 2),
             r"input ids contain token id 300, outside the vocabulary \[0, 260\)", RuntimeInputError, **T)
runtime_case("ids_negative", lambda s: s.session.prefill(torch.tensor([[-1, 5]])),
             r"input ids contain token id -1, outside the vocabulary \[0, 260\)", RuntimeInputError, **T)
runtime_case("ids_not_integers", lambda s: s.session.generate(torch.tensor([[1.5, 2.0]]), 2),
             r"input ids must be integer token ids, got torch\.float32", RuntimeInputError, **T)
runtime_case("ids_wrong_rank", lambda s: s.session.generate(torch.zeros(1, 2, 3, **LONG), 2),
             r"input ids must be \[batch, length\], got shape \[1, 2, 3\]", RuntimeInputError, **T)
runtime_case("ids_empty_prompt", lambda s: s.session.generate(torch.zeros(1, 0, **LONG), 2),
             r"input ids are empty: give at least one token", RuntimeInputError, **T)
runtime_case("ids_negative_max_new_tokens", lambda s: s.session.generate(torch.tensor([[1]]), -1),
             r"max_new_tokens must be >= 0, got -1", RuntimeInputError, **T)
runtime_case("sampling_negative_temperature", lambda s: s.session.generate(torch.tensor([[1]]), 2, temperature=-0.5),
             r"temperature must be a finite number >= 0 \(0 = greedy\), got -0\.5", RuntimeInputError, **T)
runtime_case("sampling_top_p_above_one", lambda s: s.session.generate(torch.tensor([[1]]), 2, temperature=1.0, top_p=1.5),
             r"top_p must be in \(0, 1\]", RuntimeInputError, **T)
runtime_case("sampling_top_k_zero", lambda s: s.session.generate(torch.tensor([[1]]), 2, temperature=1.0, top_k=0),
             r"top_k must be an integer >= 1", RuntimeInputError, **T)
runtime_case("ids_forward_above_vocabulary", lambda s: s.session.forward(torch.tensor([[1, 300]])),
             r"token id 300, outside the vocabulary \[0, 260\)", RuntimeInputError, **T)


def _vocab100(c):
    return {"art": c.shared.artifact_vocab100}


case("ids_prompt_outside_vocabulary", "token-ids",
     r"input ids contain token id 111, outside the vocabulary \[0, 100\)", make=_vocab100,
     api=lambda m, c: spikec.load(m["art"]).generate(torch.tensor([list(b"hello")]), 2),
     cli=("run", "{art}", "--prompt", "hello", "-q"), error=RuntimeInputError)


def _train_vocab100(c):
    return {"art": c.shared.artifact_vocab100, "data": c.shared.data_file}


def _train_api_vocab(m, c):
    from spikec.runtime import load_artifact
    from spikec.runtime.trainer import TrainConfig, Trainer
    Trainer(load_artifact(m["art"]).module, c.shared.train_data(), TrainConfig(**mk.TRAIN_ARGS),
            progress=False).fit()


case("ids_training_data_outside_vocabulary", "token-ids",
     r"token id .*(outside the model's vocabulary \[0, 100\)|the model cannot take)", make=_train_vocab100,
     api=_train_api_vocab, cli=("train", "{art}", "--data", "{data}", "--steps", "2", "--batch-size", "2",
                                "--seq-len", "8", "-q"), error=RuntimeInputError)
