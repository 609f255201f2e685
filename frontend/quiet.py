"""Hold back what torch prints while it traces, and show it only if tracing succeeds.

When torch.export fails it prints the partial FX graph to stderr and logs the
failing meta kernel with its traceback, before raising. spikec turns the
exception into one FrontendError that names the user's line; the dump on top
of it is noise that buries that message (and a traceback a user cannot act on).
On success everything held back is replayed unchanged. SPIKEC_LOG=debug shows
it all as it happens.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys


def _torch_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                                       if n == "torch" or n.startswith("torch.")]
    seen: dict[int, logging.Handler] = {}
    for lg in loggers:
        for h in getattr(lg, "handlers", []):
            seen.setdefault(id(h), h)
    return list(seen.values())


class _Hold(logging.Filter):
    def __init__(self, handler: logging.Handler):
        super().__init__()
        self.handler = handler
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


@contextlib.contextmanager
def held_output():
    """Run the body with stderr and torch's log output held back; replayed if it returns normally."""
    if os.environ.get("SPIKEC_LOG", "").lower() == "debug":
        yield
        return
    holds = [_Hold(h) for h in _torch_handlers()]
    for hold in holds:
        hold.handler.addFilter(hold)
    buf = io.StringIO()
    ok = False
    try:
        with contextlib.redirect_stderr(buf):
            yield
        ok = True
    finally:
        for hold in holds:
            hold.handler.removeFilter(hold)
        if ok:
            sys.stderr.write(buf.getvalue())
            for hold in holds:
                for record in hold.records:
                    hold.handler.handle(record)
