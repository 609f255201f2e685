"""Adaptive-threshold integer spikes, one program per token (row):

    v_th = clamp(mean(|x|) / k, VTH_MIN, VTH_MAX);   counts = round(x / v_th)   (int32, signed)

Two passes over the row in blocks of BF: the mean, then the counts. Rounding
is half-to-even, as torch.round does, written out with floor so that it is the
same on every backend (and in the interpreter).
"""
import triton
import triton.language as tl


@triton.jit
def spike_encode_kernel(x, counts, v_th, k, F, VTH_MIN, VTH_MAX, BF: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BF)
    total = tl.zeros([BF], dtype=tl.float32)
    for f0 in range(0, F, BF):
        xs = tl.load(x + row * F + f0 + cols, mask=f0 + cols < F, other=0.).to(tl.float32)
        total += tl.abs(xs)
    th = tl.sum(total, axis=0) / F / k
    th = tl.minimum(tl.maximum(th, VTH_MIN), VTH_MAX)
    tl.store(v_th + row, th)
    for f0 in range(0, F, BF):
        m = f0 + cols < F
        y = tl.load(x + row * F + f0 + cols, mask=m, other=0.).to(tl.float32) / th
        fl = tl.floor(y)
        frac = y - fl
        odd = (fl - 2. * tl.floor(fl * 0.5)) != 0.
        up = (frac > 0.5) | ((frac == 0.5) & odd)
        tl.store(counts + row * F + f0 + cols, tl.where(up, fl + 1., fl).to(tl.int32), mask=m)
