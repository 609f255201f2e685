"""Runs every tests/passes/*.ir file: each case's pipeline on its Before graph,
compared with its EXPECTED graph or CHECK lines."""
import glob
import os

import pytest

from spikec.passes.testing import CheckFailure, filecheck, parse_cases, run_case

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [(os.path.basename(path), i, case)
         for path in sorted(glob.glob(os.path.join(HERE, "*.ir")))
         for i, case in enumerate(parse_cases(open(path).read()))]


@pytest.mark.parametrize("case", [c for _, _, c in CASES], ids=[f"{f}:{c.line}" for f, _, c in CASES])
def test_ir_file_case(case):
    run_case(case)


def test_there_are_cases():
    assert len(CASES) >= 8


def test_filecheck_can_fail():
    out = "a = add(x)\nb = mul(a)\nreturn b\n"
    filecheck(out, [("CHECK", "add("), ("CHECK-NEXT", "mul("), ("CHECK-NOT", "neg(")])
    for checks in ([("CHECK", "neg(")], [("CHECK", "add("), ("CHECK-NEXT", "return")],
                   [("CHECK-NOT", "mul("), ("CHECK", "return")], [("CHECK-COUNT-2", "add(")]):
        with pytest.raises(CheckFailure):
            filecheck(out, checks)
