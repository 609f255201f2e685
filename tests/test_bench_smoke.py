"""Each benchmark script runs end to end at --smoke sizes and writes its JSON, so the
scripts cannot silently rot. (Speed is measured by the scripts, never asserted here.)"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {"prefill": ["--targets", "torch"], "decode": ["--targets", "torch"], "train": [], "kernels": ["--targets", "cpu"],
           "compile": ["--targets", "torch"]}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_bench_script_smoke(name, tmp_path):
    env = {**os.environ, "SPIKEC_BENCH_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", f"{name}.py"), "--smoke", "--threads", "1",
                        *SCRIPTS[name]], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = json.load(open(tmp_path / f"{name}.smoke.json"))
    assert data["benchmark"] == name and data["mode"] == "smoke" and data["rows"]
    assert data["machine"]["libraries"]["torch"].startswith("2.13")
    assert (tmp_path / f"{name}.smoke.png").stat().st_size > 1000


@pytest.mark.parametrize("name,key", [("spike", "rows"), ("moe", "results")])
def test_own_format_bench_script_smoke(name, key, tmp_path):
    # spike.py and moe.py keep their own JSON layout and take --out
    out = tmp_path / f"{name}.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", f"{name}.py"), "--smoke", "--out", str(out)],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.load(open(tmp_path / f"{name}.smoke.json"))[key]
