"""The session summary line of the bad-input corpus:

    bad-input corpus: 180 cases, 179 refused cleanly, 1 known failure (strict xfail) [API 150, CLI 140]

Hooks (pytest_runtest_logreport, pytest_terminal_summary) that count the reports of
test_bad_inputs.py per case. They are imported by this folder's conftest.py and,
for `pytest -n 2 tests` (where xdist's controller loads only the top conftest), by
tests/conftest.py; recording is keyed by report, so being registered twice is harmless.
"""
from __future__ import annotations

import re
from collections import Counter

_NODE = re.compile(r"bad_inputs/test_bad_inputs\.py::test_(api|cli)_refuses\[(.+)\]$")
_reports: dict[tuple[str, str], str] = {}     # (nodeid, phase) -> passed | failed | xfailed | skipped
_done = False


def pytest_runtest_logreport(report):
    if not _NODE.search(report.nodeid):
        return
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "failed"     # a strict xfail that passed fails
    else:
        outcome = report.outcome
    _reports[(report.nodeid, report.when)] = outcome


def _case_status() -> tuple[dict[str, str], Counter]:
    by_case: dict[str, set[str]] = {}
    channels: Counter = Counter()
    for (nodeid, when), outcome in _reports.items():
        channel, case = _NODE.search(nodeid).groups()
        by_case.setdefault(case, set()).add(outcome)
        if when == "call" and outcome == "passed":
            channels[channel] += 1
    status = {}
    for case, outcomes in by_case.items():
        status[case] = next(o for o in ("failed", "xfailed", "skipped", "passed") if o in outcomes)
    return status, channels


def pytest_terminal_summary(terminalreporter):
    global _done
    if _done or not _reports:
        return
    _done = True
    status, channels = _case_status()
    counts = Counter(status.values())
    line = f"bad-input corpus: {len(status)} cases, {counts['passed']} refused cleanly"
    if counts["xfailed"]:
        line += f", {counts['xfailed']} known failure(s) (strict xfail, see the case's reason)"
    if counts["failed"]:
        line += f", {counts['failed']} NOT refused cleanly"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    line += f" [clean refusals: API {channels['api']}, CLI {channels['cli']}]"
    terminalreporter.write_sep("-", line, bold=True, red=bool(counts["failed"]), green=not counts["failed"])
