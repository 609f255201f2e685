"""spikec.codegen.triton: the `cuda` and `rocm` targets, built on Triton kernels.

Importing this package first decides how kernels run (see `mode`): with no GPU
it sets TRITON_INTERPRET=1, so the kernels run in Triton's interpreter on CPU
tensors. That must happen before any kernel module is imported.
"""
from . import mode  # noqa: F401  (must come first: sets TRITON_INTERPRET before kernels are decorated)
from .aot import compile_kernels  # noqa: E402
from .target import CudaTarget, RocmTarget  # noqa: E402

__all__ = ["CudaTarget", "RocmTarget", "compile_kernels", "mode"]
