"""The bad-input corpus prints its summary line at the end of the session."""
from corpus_summary import pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401
