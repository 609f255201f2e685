"""spikec.ir: the typed SSA graph IR, its op registry, text form, verifier and interpreter."""
from .equal import structural_diff, structurally_equal
from .errors import (FrontendError, InterpretError, IRError, ParseError, SpikecError,
                     UnsupportedOpError, VerifyError)
from .graph import Graph, Loc, Node, Value
from .infer import InferContext, infer_types
from .interpreter import interpret
from .parser import parse
from .printer import print_graph
from .registry import OpDef, Param, get_op, has_op, lookup_torch, ops, register_op
from .types import DTYPES, ScalarType, TensorType, dtype_name, sym, torch_dtype
from .verifier import verify

__all__ = [
    "Graph", "Node", "Value", "Loc", "TensorType", "ScalarType", "DTYPES", "sym", "dtype_name", "torch_dtype",
    "OpDef", "Param", "register_op", "get_op", "has_op", "ops", "lookup_torch",
    "parse", "print_graph", "verify", "interpret", "infer_types", "InferContext",
    "structurally_equal", "structural_diff",
    "SpikecError", "IRError", "ParseError", "VerifyError", "UnsupportedOpError", "InterpretError", "FrontendError",
]
