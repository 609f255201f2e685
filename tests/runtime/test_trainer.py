"""Training through the torch target: schedule, exact resume after SIGKILL, data parallel."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from spikec.runtime.trainer import TrainConfig, Trainer, batch_at, lr_at

from lm_cache import compiled

STEPS = 16


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(cfg, s) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_batches_are_a_function_of_step_and_rank():
    data = torch.arange(1000)
    cfg = TrainConfig(batch_size=4, seq_len=8)
    x, y = batch_at(data, cfg, 3, 0, 0, 1)
    assert torch.equal(y, x + 1)                      # targets are the next tokens
    halves = [batch_at(data, cfg, 3, 0, r, 2)[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), x)          # ranks split the same global batch


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    path = compiled("spikingbrain").save(str(d / "sb.spk"))
    data = d / "data.txt"
    data.write_text("".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(400)))
    return path, str(data)


def _train_cmd(path, data, ckpt, extra=()):
    return [sys.executable, "-m", "spikec.cli", "train", path, "--data", data, "--steps", str(STEPS),
            "--batch-size", "4", "--seq-len", "32", "--ckpt-every", "3", "--warmup", "4", "--ckpt-dir", ckpt,
            "-q", *extra]


def _losses(ckpt):
    with open(os.path.join(ckpt, "losses.jsonl")) as f:
        return [json.loads(line)["loss"] for line in f]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_training_lowers_the_loss_and_resumes_bit_identically_after_sigkill(artifact_dir, tmp_path):
    path, data = artifact_dir
    subprocess.run(_train_cmd(path, data, str(tmp_path / "a")), check=True, env=_env(), timeout=300)
    full = _losses(tmp_path / "a")
    assert len(full) == STEPS and full[-1] < full[0]

    b = str(tmp_path / "b")
    kill_after = random.Random(os.getpid()).randint(4, STEPS - 3)
    proc = subprocess.Popen(_train_cmd(path, data, b), env=_env())
    log = os.path.join(b, "losses.jsonl")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(log) and len(open(log).readlines()) >= kill_after:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_losses(b)) < STEPS, "the run finished before it could be killed"
    subprocess.run(_train_cmd(path, data, b), check=True, env=_env(), timeout=300)
    assert _losses(b) == full                          # bit-identical loss sequence


def test_two_process_data_parallel_matches_one_process(artifact_dir, tmp_path):
    path, data = artifact_dir
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    subprocess.run(_train_cmd(path, data, one), check=True, env=_env(), timeout=300)
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(29500 + os.getpid() % 1000), "-m", "spikec.cli"]
    subprocess.run(run + _train_cmd(path, data, two, ("--dist",))[3:], check=True, env=_env(), timeout=300)
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == STEPS
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-5


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    module = torch.nn.Sequential(torch.nn.Embedding(20, 8), torch.nn.Linear(8, 20))
    data = torch.randint(0, 20, (500,))
    Trainer(module, data, TrainConfig(steps=2, batch_size=2, seq_len=8, ckpt_every=1), str(tmp_path), False).fit()
    from spikec.runtime import CheckpointError
    with pytest.raises(CheckpointError, match="different training config"):
        Trainer(module, data, TrainConfig(steps=2, batch_size=4, seq_len=8, ckpt_every=1), str(tmp_path), False).fit()
