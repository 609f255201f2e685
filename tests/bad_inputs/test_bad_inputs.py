"""Walk the bad-input corpus (bad_cases.py) through the API and the command line.

Every case must be refused with a SpikecError of the expected class whose message,
as one line, matches the case's regex; on the command line with exit code 2 and a
single `error:` line on stderr. A crash, a traceback from a dependency or a hang
(CASE_TIMEOUT) fails the case. The CLI runs in-process (spikec.cli.main, stdout and
stderr captured at the file-descriptor level, so torch's own logging is seen too);
a few cases also run through `python -m spikec` to cover the real entry point.
"""
from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys

import pytest

from bad_cases import CASES, fill
from bad_makers import Shared
from spikec.cli import one_line
from spikec.ir import SpikecError

pytestmark = pytest.mark.no_roundtrip        # refused inputs leave half-built graphs behind
CASE_TIMEOUT = 60                            # seconds; the slowest case (a torch.export) takes ~2
BY_ID = {c.id: c for c in CASES}


class Hang(BaseException):
    """Raised by the alarm; a BaseException so no `except Exception` in spikec swallows it."""


@contextlib.contextmanager
def deadline(seconds: int):
    def on_alarm(*_):
        raise Hang(f"no answer within {seconds}s: this input hangs spikec")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Ctx:
    def __init__(self, tmp, shared):
        self.tmp, self.shared = tmp, shared


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    return Shared(tmp_path_factory.mktemp("bad-inputs-shared"))


def _params(channel: str) -> list:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.known, strict=True)] if c.known else [])
            for c in CASES if getattr(c, channel) is not None]


def _made(case, tmp_path, shared) -> dict:
    return {"tmp": str(tmp_path), **case.make(Ctx(tmp_path, shared))}


def _check_line(case, line: str) -> None:
    assert line.startswith("error: "), f"stderr must be one 'error:' line, got {line!r}"
    assert re.search(case.match, line[len("error: "):]), f"{case.id}: {case.match!r} not found in\n  {line}"


@pytest.mark.parametrize("case", _params("api"))
def test_api_refuses(case, shared, tmp_path, monkeypatch):
    made = _made(case, tmp_path, shared)
    monkeypatch.chdir(tmp_path)              # a failing pass writes its reproducer into the cwd
    with deadline(CASE_TIMEOUT), pytest.raises(SpikecError) as info:
        case.api(made, Ctx(tmp_path, shared))
    err = info.value
    assert isinstance(err, case.error), f"expected {case.error.__name__}, got {type(err).__name__}: {err}"
    assert "Traceback" not in str(err)
    text = one_line(err)
    assert re.search(case.match, text), f"{case.id}: {case.match!r} not found in\n  {text}"
    if case.after:
        case.after(made)


def _main(argv: list[str]) -> int:
    from spikec.cli import main
    try:
        return main(argv)
    except SystemExit as e:                  # argparse and --version exit this way
        return e.code if isinstance(e.code, int) else 1


@pytest.mark.parametrize("case", _params("cli"))
def test_cli_refuses(case, shared, tmp_path, monkeypatch, capfd):
    made = _made(case, tmp_path, shared)
    argv = fill(case.cli, made)
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()                       # not the output of making the inputs
    with deadline(CASE_TIMEOUT):
        rc = _main(argv)
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"spikec {' '.join(argv)}: exit code {rc}\n{err}"
    assert "Traceback" not in out + err, err
    assert len(lines) == 1, f"stderr must be one line, got {len(lines)}:\n{err}"
    _check_line(case, lines[0])
    if case.after:
        case.after(made)


# The real console entry point (a fresh interpreter, its own stderr), on the case where
# torch prints and logs the most on its way out: a failing torch.export.
@pytest.mark.parametrize("case_id", ["export_data_dependent_branch"])
def test_python_m_spikec(case_id, shared, tmp_path):
    case = BY_ID[case_id]
    argv = fill(case.cli, _made(case, tmp_path, shared))
    r = subprocess.run([sys.executable, "-m", "spikec", *argv], capture_output=True, text=True, cwd=tmp_path,
                       timeout=180)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    _check_line(case, lines[0])


def test_corpus_size_and_categories():
    """The corpus covers every kind of bad input the issue lists, with enough cases."""
    from collections import Counter
    per = Counter(c.category for c in CASES)
    assert len(CASES) >= 50
    assert set(per) >= {"onnx-malformed", "onnx-unsupported", "ir-syntax", "ir-type", "export", "runtime-input",
                        "token-ids", "config", "checkpoint", "train-checkpoint", "artifact", "pipeline", "cli-args"}
    assert all(c.api is not None or c.cli is not None for c in CASES)


def test_torch_output_is_held_back_only_when_tracing_fails(capfd, caplog):
    """frontend.quiet: what torch prints or logs during an export that fails is dropped (the
    FrontendError says it in one line); after one that succeeds it is shown unchanged."""
    import logging

    from spikec.frontend.quiet import held_output
    log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    caplog.set_level(logging.WARNING)
    with held_output():
        print("printed during a good export", file=sys.stderr)
        log.warning("logged during a good export")
        assert "logged during a good export" not in caplog.text      # held until the end
    assert "printed during a good export" in capfd.readouterr().err
    assert "logged during a good export" in caplog.text
    caplog.clear()
    with pytest.raises(RuntimeError), held_output():
        print("printed during a failed export", file=sys.stderr)
        log.error("logged during a failed export")
        raise RuntimeError("export failed")
    assert "failed export" not in capfd.readouterr().err and "failed export" not in caplog.text
