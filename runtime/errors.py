"""Errors of the runtime: artifacts that cannot be loaded, bad inputs at run time."""
from spikec.ir.errors import SpikecError


class ArtifactError(SpikecError):
    """A saved artifact that is missing, damaged, of another format version or target."""


class RuntimeInputError(SpikecError):
    """Inputs a session cannot run: wrong shape or dtype, token ids out of range."""


class CheckpointError(SpikecError):
    """A training checkpoint that cannot be resumed."""
