"""spikec.frontend: PyTorch (torch.export) and ONNX models into spikec IR."""
from .torch_import import KEEP_UNDECOMPOSED, decomposition_table, export, from_torch

__all__ = ["from_torch", "export", "decomposition_table", "KEEP_UNDECOMPOSED", "from_onnx"]


def from_onnx(model_or_path, **kw):
    """Import an ONNX model (path, bytes or ModelProto); see `onnx_import.from_onnx`."""
    from .onnx_import import from_onnx as _from_onnx
    return _from_onnx(model_or_path, **kw)
