"""Every ```python block in docs/*.md runs (blocks of one file share a namespace)."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks(path):
    return BLOCK.findall(open(path).read())


@pytest.mark.parametrize("path", [p for p in DOCS if _blocks(p)], ids=os.path.basename)
def test_doc_code_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_test__"}
    for i, code in enumerate(_blocks(path)):
        try:
            exec(compile(code, f"{os.path.basename(path)}[block {i}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{os.path.basename(path)} block {i} failed: {type(e).__name__}: {e}") from e
