"""Before/Expected and FileCheck-style tests for passes, MLIR style.

A test file holds a pipeline, the input graph, and either the expected graph or
CHECK lines matched against the printed result:

    // RUN: canonicalize,cse
    graph @main(%x: f32[4]) -> (f32[4]) { ... }
    // CHECK: = neg(%x)
    // CHECK-NOT: mul(
    // CHECK-NEXT: return
    // CHECK-COUNT-2: add(

A line `// NO-VERIFY-INPUT` skips verifying the Before graph (for passes that
repair types). Or, instead of CHECK lines, `// EXPECTED:` followed by the expected graph (compared
structurally, value names ignored). Several cases may share a file, separated
by a line `// -----`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from spikec.ir import parse, structural_diff

from .manager import PassManager


class CheckFailure(AssertionError):
    pass


@dataclass
class Case:
    pipeline: str
    before: str
    expected: str | None = None
    checks: list[tuple[str, str]] = field(default_factory=list)
    line: int = 1
    verify_input: bool = True


def _pattern(text: str) -> re.Pattern:
    """Literal text with {{regex}} holes."""
    parts = re.split(r"\{\{(.*?)\}\}", text.strip())
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?:{p})" for i, p in enumerate(parts)))


def filecheck(output: str, checks: list[tuple[str, str]]) -> None:
    """Match CHECK / CHECK-NEXT / CHECK-NOT / CHECK-COUNT-n lines against `output`, in order."""
    lines = output.splitlines()
    pos = 0           # next line to search from
    last = -1         # line of the previous positive match
    pending_not: list[str] = []

    def find(pat, start):
        for i in range(start, len(lines)):
            if pat.search(lines[i]):
                return i
        return -1

    def check_nots(upto):
        for text in pending_not:
            pat = _pattern(text)
            for i in range(max(last + 1, 0), upto):
                if pat.search(lines[i]):
                    raise CheckFailure(f"CHECK-NOT: {text!r} found on output line {i + 1}: {lines[i].strip()}")
        pending_not.clear()

    for kind, text in checks:
        if kind == "CHECK-NOT":
            pending_not.append(text)
            continue
        pat = _pattern(text)
        if kind == "CHECK":
            i = find(pat, pos)
            if i < 0:
                raise CheckFailure(f"CHECK: {text!r} not found after output line {pos}\n{output}")
            check_nots(i)
            last, pos = i, i + 1
        elif kind == "CHECK-NEXT":
            if pos >= len(lines) or not pat.search(lines[pos]):
                got = lines[pos].strip() if pos < len(lines) else "<end>"
                raise CheckFailure(f"CHECK-NEXT: {text!r} is not on the next line (found {got!r})\n{output}")
            check_nots(pos)
            last, pos = pos, pos + 1
        elif kind.startswith("CHECK-COUNT-"):
            n = int(kind.rsplit("-", 1)[1])
            for k in range(n):
                i = find(pat, pos)
                if i < 0:
                    raise CheckFailure(f"{kind}: {text!r} matched {k} times, wanted {n}\n{output}")
                check_nots(i)
                last, pos = i, i + 1
        else:
            raise CheckFailure(f"unknown directive {kind}")
    check_nots(len(lines))


_DIRECTIVE = re.compile(r"^\s*//\s*(RUN|CHECK(?:-NEXT|-NOT|-COUNT-\d+)?|EXPECTED)\s*:\s?(.*)$")


def parse_cases(text: str) -> list[Case]:
    cases = []
    line_no = 1
    for chunk in re.split(r"^\s*// -----\s*$", text, flags=re.M):
        pipeline, before, expected, checks, mode = None, [], [], [], "before"
        verify_input = "// NO-VERIFY-INPUT" not in chunk
        for line in chunk.splitlines():
            m = _DIRECTIVE.match(line)
            if m and m.group(1) == "RUN":
                pipeline = m.group(2).strip()
            elif m and m.group(1) == "EXPECTED":
                mode = "expected"
            elif m:
                checks.append((m.group(1), m.group(2)))
            elif mode == "before":
                before.append(line)
            else:
                expected.append(line)
        if pipeline is None and not "".join(before).strip():
            line_no += chunk.count("\n") + 1
            continue
        if pipeline is None:
            raise ValueError(f"test case at line {line_no} has no '// RUN: <pipeline>' line")
        cases.append(Case(pipeline, "\n".join(before), "\n".join(expected) if expected else None, checks, line_no,
                          verify_input))
        line_no += chunk.count("\n") + 1
    return cases


def run_case(case: Case) -> str:
    """Run one case; raises CheckFailure with the output when it does not hold."""
    graph = parse(case.before)
    out = PassManager(case.pipeline, verify_each=True, verify_input=case.verify_input).run(graph)
    text = str(out)
    if case.expected is not None:
        diff = structural_diff(out, parse(case.expected))
        if diff is not None:
            raise CheckFailure(f"result differs from EXPECTED: {diff}\n--- got:\n{text}--- expected:\n{case.expected}")
    if case.checks:
        filecheck(text, case.checks)
    if case.expected is None and not case.checks:
        raise CheckFailure("a case needs CHECK lines or an EXPECTED graph")
    return text
