"""The cpu target's own error: a LoweringError raised while building TVM code."""
from spikec.codegen.errors import LoweringError


class TvmLoweringError(LoweringError):
    """A node the cpu (TVM) target could not lower: names the op and its source line."""
