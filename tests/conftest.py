"""Shared test setup.

Every top-level Graph a test builds is checked at teardown: its text form must
parse back to a structurally equal graph. Tests that build malformed graphs on
purpose opt out with `@pytest.mark.no_roundtrip`.
"""
from __future__ import annotations

import os
import sys
import warnings

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))   # `import modules` (the test modules)
# the bad-input corpus's count line: xdist's controller loads only this conftest, so its hooks live here
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "bad_inputs"))
from corpus_summary import pytest_runtest_logreport, pytest_terminal_summary  # noqa: E402,F401
torch.set_num_threads(1)                          # pytest -n 2 on 2 cores
os.environ.setdefault("SPIKEC_VERIFY_EACH", "1")   # the pass manager verifies around every pass
warnings.filterwarnings("ignore", message=r".*LeafSpec.*")

from spikec import ir  # noqa: E402
from spikec.ir import graph as graph_mod  # noqa: E402

_built: list = []
_orig_init = graph_mod.Graph.__init__


def _tracking_init(self, *a, **kw):
    _orig_init(self, *a, **kw)
    _built.append(self)


graph_mod.Graph.__init__ = _tracking_init


def pytest_configure(config):
    config.addinivalue_line("markers", "no_roundtrip: the test builds malformed graphs on purpose")


@pytest.fixture(autouse=True)
def every_graph_round_trips(request):
    _built.clear()
    yield
    if request.node.get_closest_marker("no_roundtrip"):
        return
    graphs = list(_built)
    regions = {id(r) for g in graphs for n in g.walk() for r in n.regions}
    for g in graphs:
        if id(g) in regions or g.name.startswith("_"):
            continue
        text = str(g)
        back = ir.parse(text, constants=g.constants)
        diff = ir.structural_diff(g, back, names=True)
        assert diff is None, f"text round trip of @{g.name} failed: {diff}\n{text[:2000]}"
    _built.clear()
