"""A real, non-editable install puts everything under the one `spikec`
namespace: no bare `ir`, `frontend`, `runtime`, `models`... in site-packages."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ["ir", "frontend", "passes", "codegen", "runtime", "models"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), ROOT],
                   check=True, cwd=build, env={**os.environ, "PIP_NO_CACHE_DIR": "1"})
    return target


def test_only_the_spikec_namespace_lands(installed):
    top = sorted(p for p in os.listdir(installed) if p != "bin")
    assert "spikec" in top
    stray = [p for p in top if p != "spikec" and not p.startswith("spikec-")]
    assert stray == [], f"top-level entries besides spikec: {stray}"
    for folder in FOLDERS:
        assert os.path.isfile(os.path.join(installed, "spikec", folder, "__init__.py")), folder


def test_installed_package_imports_from_the_install(installed):
    code = ("import spikec, spikec.ir, spikec.frontend, spikec.passes, spikec.codegen, spikec.runtime, "
            "spikec.models; print(spikec.ir.__file__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=installed, env={**os.environ, "PYTHONPATH": str(installed)}).stdout
    assert out.strip().startswith(str(installed))
