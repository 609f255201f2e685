"""Errors of the pass infrastructure."""
from spikec.ir import SpikecError


class PipelineError(SpikecError):
    """A pipeline string that names an unknown pass or option, or a bad option value."""


class PassError(SpikecError):
    """A pass that raised or produced an invalid graph; points at the reproducer file."""
