"""Model-local ONNX functions (domain "spikec") for spikec's fused ops. Each body is
standard ONNX, so any runtime or execution provider runs it without a plug-in."""
from .attention import attention_function
from .common import DOMAIN
from .linear_attention import linear_attention_function

__all__ = ["DOMAIN", "attention_function", "linear_attention_function"]
