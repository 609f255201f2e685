"""The Triton kernels of the cuda / rocm targets, one folder per fused op:
linear_attention/ (chunked forward + backward, recurrent decode), attention/
(banded flash attention forward + backward), spike/ (spike encode), moe/
(grouped GEMM). Each folder's api.py is the host-side entry point."""
