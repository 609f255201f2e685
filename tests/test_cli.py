"""The command line: help everywhere, inspect on a factory file, clean errors."""
import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


def spikec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spikec", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["demo", "--help"]])
def test_help(argv):
    r = spikec(*argv)
    assert r.returncode == 0 and "usage: spikec" in r.stdout


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "factory.py"
    path.write_text(f"import sys\nsys.path.insert(0, {TESTS!r})\nimport modules as M\n"
                    "def make():\n    return M.make('swa'), (M.example_input(),)\n")
    return str(path)


def test_inspect_prints_ir_and_stats(factory, tmp_path):
    r = spikec("inspect", f"{factory}:make", "--dynamic", "T=2:512")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("graph @forward(%x: f32[2, T, 16])") and "softmax(" in r.stdout
    assert "Warning" not in r.stderr
    r = spikec("inspect", f"{factory}:make", "--stats")
    assert r.returncode == 0 and "op counts:" in r.stdout and "softmax" in r.stdout


@pytest.mark.parametrize("argv, message", [
    (["inspect", "nope.py:make"], "no such file: nope.py"),
    (["inspect", "nope.py"], "name the factory too"),
    (["inspect", "x.py:make", "--dynamic", "T"], "expects NAME=LO:HI"),
])
def test_errors_are_one_clear_line(argv, message):
    r = spikec(*argv)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr


def test_demo_ir_walkthrough():
    r = spikec("demo", "--ir")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: every graph reproduces the eager model" in r.stdout
    assert "'linear_attention': 2" in r.stdout and "'sliding_window_attention': 2" in r.stdout


def test_demo_runs_the_main_job(tmp_path):
    """Compile, save, load, generate, compare with eager (torch target here; `make demo`
    uses cpu, which the cpu target's own tests cover). A checkpoint is put in place so the
    test skips the demo's minute of training (train_eager has its own tests)."""
    import spikec.models as zoo
    zoo.create("spikingbrain", "tiny").save_pretrained(str(tmp_path / "ckpt"))
    r = spikec("demo", "--target", "torch", "--max-new-tokens", "8", "--out-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: the compiled artifact reproduces the eager model" in r.stdout
    assert "greedy tokens equal eager generate: True" in r.stdout
    assert (tmp_path / "ckpt" / "config.json").exists()
    assert (tmp_path / "spikingbrain-tiny.torch.spk" / "manifest.json").exists()
