"""Errors a target raises: which op, which target, where in the model."""
from __future__ import annotations

from spikec.ir.errors import SpikecError, UnsupportedOpError


class UnknownTargetError(SpikecError):
    """A target name nobody registered."""


class LoweringError(UnsupportedOpError):
    """A target that cannot lower an op: names the op, the target and the node's source line."""


class TargetUnavailableError(SpikecError):
    """A target whose toolchain or device is missing on this machine."""
