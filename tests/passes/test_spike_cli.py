"""`spikec calibrate` and `spikec inspect --spike-report` end to end on a small token model
(tests/passes/spike_eager.py:TinyLM), with sample text from a file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def spikec(*args):
    return subprocess.run([sys.executable, "-m", "spikec", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def files(tmp_path):
    factory = tmp_path / "lm.py"
    factory.write_text(f"import sys, torch\nsys.path.insert(0, {HERE!r})\nfrom spike_eager import TinyLM\n"
                       "def make():\n    torch.manual_seed(0)\n"
                       "    return TinyLM().eval(), (torch.zeros(1, 32, dtype=torch.long),)\n")
    text = tmp_path / "sample.txt"
    text.write_text("def spike(x, k):\n    return round(x / (abs(x).mean() / k))\n" * 20)
    return f"{factory}:make", str(text), tmp_path


def test_calibrate_then_report(files):
    model, text, tmp = files
    cal = tmp / "cal.json"
    r = spikec("calibrate", model, "--sparsity", "0.6", "--samples", "2", "--text", text, "-o", str(cal),
               "--targets", "all|!*lm_head")
    assert r.returncode == 0, r.stderr
    data = json.loads(cal.read_text())
    assert set(data["k"]) == {"block.attn.q_proj", "block.attn.k_proj", "block.attn.o_proj", "block.mlp.gate_proj",
                              "block.mlp.up_proj", "block.mlp.down_proj"}
    assert "block.mlp.down_proj" in r.stdout and data["objective"] == {"sparsity": 0.6}
    rep = tmp / "rep.json"
    r = spikec("inspect", model, "-p", f"insert-spike-coding{{calibration={cal},targets=all|!*lm_head,coding=ternary}}",
               "--spike-report", "--spike-json", str(rep), "--samples", "2", "--text", text)
    assert r.returncode == 0, r.stderr
    assert "spike report: 6 spiked projections, 2 samples, 64 tokens, coding ternary" in r.stdout
    report = json.loads(rep.read_text())
    assert report["layers"]["block.mlp.up_proj"]["k"] == data["k"]["block.mlp.up_proj"]
    assert 0 < report["overall"]["sparsity_window3"] < 1


def test_report_without_spikes_is_a_clear_error(files):
    model, text, _ = files
    r = spikec("inspect", model, "--spike-report", "--text", text)
    assert r.returncode == 2 and "no spike-coded projections" in r.stderr and "Traceback" not in r.stderr
    r = spikec("calibrate", model, "--text", text)
    assert r.returncode != 0 and "--sparsity" in r.stderr
