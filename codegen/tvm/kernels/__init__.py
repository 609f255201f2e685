"""Hand-written TensorIR kernels of the cpu target, in TVMScript with explicit
CPU schedules. Each module has a `lower(cx, node, ...)` that adds the kernel to
the Relax module and calls it with `call_tir`."""
