"""Source locations: the user's file and line a traced op came from."""
from __future__ import annotations

import os
import re

from spikec.ir import Loc

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
# Frames inside these trees are machinery, not the user's model code.
_LIBRARY_MARKERS = (os.sep + "torch" + os.sep, os.sep + "site-packages" + os.sep + "torch",
                    os.sep + "contextlib.py", os.sep + "functools.py")


def short_path(path: str) -> str:
    """Relative to the working directory when below it; else the path as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def loc_from_stack_trace(stack_trace: str | None) -> Loc | None:
    """The innermost frame of the trace that is not library code."""
    if not stack_trace:
        return None
    frames = _FRAME.findall(stack_trace)
    for file, line in reversed(frames):
        if file.startswith("<eval_with_key") or file.startswith("<frozen"):
            continue   # code torch generated while tracing, not the user's
        if not any(m in file for m in _LIBRARY_MARKERS):
            return Loc(short_path(file), int(line))
    return None


def loc_of_callable(fn) -> Loc | None:
    code = getattr(getattr(fn, "forward", fn), "__code__", None)
    return Loc(short_path(code.co_filename), code.co_firstlineno) if code else None
