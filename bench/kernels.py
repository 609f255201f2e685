"""kernels: fused `linear_attention` forward (GLA, per-channel gate) on CPU.

B=1, H=8, D=64, T in {1K, 4K, 16K}, fp32, scale D^-0.5, log-decays
logsigmoid(x)/16 (SpikingBrain's gate), against:

- torch eager, naive loop over time (timed at 1K and 4K; 16K extrapolated
  linearly from 4K and marked so: the loop is O(T) with a constant per-step cost),
- torch eager, chunked (C=64: intra-chunk GEMMs batched, a Python loop carries
  the state between chunks),
- torch.compile (Inductor, C++/OpenMP) of that chunked function,
- onnxruntime (CPU EP) running the chunked function exported with
  torch.onnx.export(dynamo=True),
- every spikec target in --targets (default: cpu, torch, onnx, mlir), each compiling ONE graph with a
  symbolic T and runs it at every length.

It also measures the cpu target's GEMM choice (`dense_gemm` in the JSON): one
`linear` compiled with gemm="tir" / "blas" / "relax" against torch's F.linear.

Idle worker threads sleep (OMP_WAIT_POLICY=PASSIVE, TVM_THREAD_POOL_SPIN_COUNT=0,
both overridable from the environment): on a shared machine spinning barriers
cost torch up to 10x. All rows are timed round-robin in one process (one call of each per repeat, the
median reported), so their ratios hold under the same machine load. GFLOP/s use
the dense chunked-algorithm count 4·B·H·T·D·(C + D) for every row (a rate, not
each implementation's own work), against this machine's fp32 GEMM peak measured
here with torch.mm (1024³, --threads threads) timed in the same round-robin rounds
as the rows. The cpu kernel skips the zero tiles above the causal diagonal, so
its row also reports `executed_gflops` (the multiply-adds it really does).

The hook: ROWS maps a row name to a builder `(T) -> fn(q, k, v, g) | None`.
Other backends add rows by `--targets cpu,onnx,mlir` (any spikec target lowering
linear_attention) or by registering a builder in ROWS before calling main().

    python bench/kernels.py [--quick | --smoke] [--targets cpu,torch,onnx,mlir] [--threads 2]
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

# Idle workers must not spin on a shared machine: TVM's pool would steal the torch
# rows' cores, and libgomp's active barrier made 2-thread torch 10x slower under load
# (21 ms at 1 thread, 205 ms at 2 threads for the chunked form at 1K; 22 ms with PASSIVE).
os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import parser, setup, table, write  # noqa: E402

B, H, D, C = 1, 8, 64, 64
GEMM_N = 1024               # the GEMM timed in every round (2.1 GFLOP), the peak the rows are held to
NAIVE_MAX_T = 4096          # the naive loop is timed up to here, extrapolated beyond


# -- the reference implementations --------------------------------------------------------------
def gla_naive(q, k, v, g, scale):
    """The recurrence as written: one step per token."""
    S = q.new_zeros(q.shape[0], q.shape[1], q.shape[3], v.shape[3])
    outs = []
    for t in range(q.shape[2]):
        S = g[:, :, t, :, None].exp() * S + k[:, :, t, :, None] * v[:, :, t, None, :]
        outs.append(((q[:, :, t] * scale)[:, :, None, :] @ S)[:, :, 0])
    return torch.stack(outs, 2)


def gla_chunked(q, k, v, g, scale):
    """Chunked GLA (C=64): intra-chunk products batched over all chunks, the state
    carried chunk to chunk by a Python loop. Stable for decays down to about
    -80 per chunk (exp(±cumulative decay) of one chunk), ample for g = logsigmoid/16."""
    Bq, Hq, T, Dk = q.shape
    pad = (-T) % C
    if pad:
        q, k, v, g = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v, g))
    N = (T + pad) // C
    q, k, v, g = (x.reshape(Bq, Hq, N, C, x.shape[-1]) for x in (q, k, v, g))
    b = g.cumsum(3)                                           # log-decay from the chunk start
    qe = q * scale * b.exp()
    ke = k * (-b).exp()
    mask = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    A = (qe @ ke.transpose(-1, -2)).masked_fill(~mask, 0.0)
    o = A @ v                                                 # intra-chunk part
    last = b[:, :, :, -1:, :]                                 # decay over the whole chunk
    kd = k * (last - b).exp()
    kv = kd.transpose(-1, -2) @ v                             # [B, H, N, D, D]
    decay = last.transpose(-1, -2).exp()                      # [B, H, N, D, 1]
    S = q.new_zeros(Bq, Hq, Dk, v.shape[-1])
    inter = []
    for n in range(N):
        inter.append(qe[:, :, n] @ S)
        S = decay[:, :, n] * S + kv[:, :, n]
    o = o + torch.stack(inter, 2)
    return o.reshape(Bq, Hq, N * C, -1)[:, :, :T]


def make_inputs(T: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, T, D, generator=gen) for _ in range(3))
    g = F.logsigmoid(torch.randn(B, H, T, D, generator=gen)) / 16
    return q, k, v, g


SCALE = D ** -0.5


# -- rows: name -> builder(T) -> fn(q, k, v, g) or None ------------------------------------------
def _naive(T):
    return (lambda q, k, v, g: gla_naive(q, k, v, g, SCALE)) if T <= NAIVE_MAX_T else None


def _chunked(T):
    return lambda q, k, v, g: gla_chunked(q, k, v, g, SCALE)


_COMPILED = {}


def _compiled(T):
    # one compiled function per length (dynamic=False: the chunk loop unrolls for each T)
    fn = torch.compile(lambda q, k, v, g: gla_chunked(q, k, v, g, SCALE), dynamic=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        fn(*make_inputs(T, seed=1))
    _COMPILED[T] = time.perf_counter() - t0
    return fn


def _onnxruntime(T):
    import onnxruntime as ort

    class M(torch.nn.Module):
        def forward(self, q, k, v, g):
            return gla_chunked(q, k, v, g, SCALE)

    path = os.path.join(tempfile.mkdtemp(prefix="spikec_kernels_"), f"gla_{T}.onnx")
    prog = torch.onnx.export(M(), make_inputs(T), dynamo=True, verbose=False)
    prog.save(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")    # like OMP_WAIT_POLICY=PASSIVE
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run(q, k, v, g):
        return torch.from_numpy(sess.run(None, dict(zip(names, (x.numpy() for x in (q, k, v, g)))))[0])
    return run


ROWS = {
    "torch eager naive loop": _naive,
    "torch eager chunked": _chunked,
    "torch.compile chunked": _compiled,
    "onnxruntime chunked": _onnxruntime,
}


def spikec_row(target: str, threads: int):
    """A builder for a spikec target: one graph with symbolic T, compiled once."""
    import spikec
    from spikec import ir
    from spikec.ir import TensorType, sym

    g = ir.Graph("gla")
    T = sym("T")
    g.symbols["T"] = (1, None)
    q, k, v, gate = (g.add_input(TensorType((B, H, T, D), "f32"), n) for n in ("q", "k", "v", "g"))
    g.set_outputs(g.add_node("linear_attention", {"q": q, "k": k, "v": v, "gate": gate, "gate_kind": "channel",
                                                  "scale": SCALE}, [TensorType((B, H, T, D), "f32")]).outputs)
    opts = {"cpu": {"num_threads": threads}, "mlir": {"opt_level": 3}}.get(target, {})   # mlir: LLVM -O3 (default -O0)
    t0 = time.perf_counter()
    art = spikec.compile(g, target=target, pipeline="", **opts)
    compile_s = time.perf_counter() - t0
    return (lambda _T: art), compile_s


DENSE_SHAPES = [(16, 128, 320), (512, 1024, 1024), (4096, 1024, 1024)]     # (rows M, K, N) of a linear


def dense_rows(threads: int, repeats: int, smoke: bool) -> list[dict]:
    """The GEMM choice of the cpu target, measured: y = x·Wᵀ as one `linear` node
    compiled with gemm="tir" (hand-scheduled TensorIR), "blas" (torch's GEMM called
    from the VM) and "relax" (TOPI matmul + default schedule; small shape only),
    against torch.nn.functional.linear called directly."""
    import spikec
    from spikec import ir
    from spikec.ir import TensorType

    shapes = [(16, 32, 64)] if smoke else DENSE_SHAPES
    out = []
    for M, K, N in shapes:
        g = ir.Graph("dense")
        x = g.add_input(TensorType((M, K), "f32"), "x")
        w = g.add_constant("w", torch.randn(N, K) / K ** 0.5)
        g.set_outputs([g.add_node("linear", {"input": x, "weight": w}, [TensorType((M, N), "f32")]).output])
        fns = {"torch linear": lambda xx, ww=g.constants["w"]: F.linear(xx, ww)}
        for mode in ("tir", "blas", "relax"):
            if mode == "relax" and M * K * N > 2 ** 24:
                continue                       # untuned TOPI matmul: seconds per call at these sizes
            art = spikec.compile(g, target="cpu", pipeline="", gemm=mode, num_threads=threads)
            fns[f"cpu gemm={mode}"] = art
        xx = torch.randn(M, K)
        times = {n: [] for n in fns}
        for fn in fns.values():
            fn(xx)
        for _ in range(repeats):
            for n, fn in fns.items():
                t0 = time.perf_counter()
                fn(xx)
                times[n].append(time.perf_counter() - t0)
        row = {"M": M, "K": K, "N": N}
        for n, ts in times.items():
            sec = statistics.median(ts)
            row[n] = {"us": sec * 1e6, "gflops": 2 * M * K * N / sec / 1e9}
        out.append(row)
        print("dense", {k: (round(v["gflops"], 1) if isinstance(v, dict) else v) for k, v in row.items()}, flush=True)
    return out


def gemm_peak(threads: int, repeats: int) -> dict:
    """fp32 GEMM rate of torch.mm at `threads` threads: the best median over a few sizes."""
    best = {}
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            ts.append(time.perf_counter() - t0)
        best[n] = 2 * n ** 3 / statistics.median(ts) / 1e9
    return {"gflops": max(best.values()), "by_size": best}


def flops(T: int) -> float:
    return 4.0 * B * H * T * D * (C + D)


def cpu_executed_flops(T: int) -> float:
    """What the cpu kernel actually multiplies: it skips the zero tiles above the
    diagonal of A and of A·V (see codegen/tvm/kernels/gla_chunk.py)."""
    from spikec.codegen.tvm.kernels.gla_chunk import executed_flops
    return executed_flops(T, B * H, D, D, C)


def main(argv=None) -> dict:
    p = parser(__doc__)
    p.add_argument("--targets", default="cpu,torch,onnx,mlir",
                   help="spikec targets to add as rows (default cpu,torch,onnx,mlir)")
    args = p.parse_args(argv)
    setup(args)
    lengths = [64, 200] if args.smoke else [1024, 16384] if args.quick else [1024, 4096, 16384]
    repeats = args.repeats or (1 if args.smoke else 3 if args.quick else 5)
    global NAIVE_MAX_T
    if args.smoke:
        NAIVE_MAX_T = 64
    elif args.quick:            # the step loop costs ~10 s per 1K tokens: time it once, extrapolate
        NAIVE_MAX_T = 1024

    load_before = os.getloadavg()
    builders = dict(ROWS)
    compile_s = {}
    for t in [t for t in args.targets.split(",") if t]:
        try:
            b, s = spikec_row(t, args.threads)
            builders[f"spikec {t}"] = b
            compile_s[f"spikec {t}"] = s
        except Exception as e:      # noqa: BLE001 - a target without linear_attention is reported, not fatal
            print(f"target {t}: not benchmarked ({type(e).__name__}: {str(e).splitlines()[0]})")

    peak = gemm_peak(args.threads, max(repeats, 3))
    print(f"fp32 GEMM (torch.mm, {args.threads} threads), best size: {peak['gflops']:.1f} GFLOP/s")
    ga, gb = torch.randn(GEMM_N, GEMM_N), torch.randn(GEMM_N, GEMM_N)
    rows = []
    for T in lengths:
        x = make_inputs(T)
        fns, errors = {}, {}
        with torch.no_grad():
            ref = gla_chunked(*x, SCALE) if T > 256 else gla_naive(*x, SCALE)
            for name, build in builders.items():
                try:
                    fn = build(T)
                except Exception as e:  # noqa: BLE001
                    print(f"T={T} {name}: not run ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
                    fn = None
                if fn is None:
                    continue
                out = fn(*x)                                         # warm-up, and the check
                out = out[0] if isinstance(out, (list, tuple)) else out
                errors[name] = ((out - ref).abs().max() / ref.abs().max()).item()
                fns[name] = fn
            times = {n: [] for n in fns}
            mm = []
            for _ in range(repeats):                                 # round-robin: same load for every row
                for name, fn in fns.items():
                    t0 = time.perf_counter()
                    fn(*x)
                    times[name].append(time.perf_counter() - t0)
                t0 = time.perf_counter()                             # and the GEMM peak, in the same rounds
                torch.mm(ga, gb)
                mm.append(time.perf_counter() - t0)
        gemm = 2 * GEMM_N ** 3 / statistics.median(mm) / 1e9
        row = {"T": T, "gemm_gflops": gemm}
        for name in builders:
            if name in times:
                s = statistics.median(times[name])
                row[name] = {"ms": s * 1e3, "gflops": flops(T) / s / 1e9,
                             "peak_fraction": flops(T) / s / 1e9 / gemm, "max_rel_err": errors[name]}
                if name == "spikec cpu":
                    row[name]["executed_gflops"] = cpu_executed_flops(T) / s / 1e9
        naive = "torch eager naive loop"
        if naive not in row and rows and naive in rows[-1]:
            prev = rows[-1]
            ms = prev[naive]["ms"] * T / prev["T"]
            row[naive] = {"ms": ms, "gflops": flops(T) / ms * 1e-6, "peak_fraction": flops(T) / ms * 1e-6 / gemm,
                          "extrapolated_from_T": prev["T"]}
        rows.append(row)
        print(table([_flat(row)], list(_flat(row))), flush=True)

    dense = dense_rows(args.threads, max(repeats, 5), args.smoke)
    summary = _summary(rows)
    print(table([_flat(r) for r in rows], list(_flat(rows[-1]))))
    for k, v in summary.items():
        print(f"{k}: {v}")

    def plot(ax):
        for name in builders:
            pts = [(r["T"], r[name]["ms"]) for r in rows if name in r]
            if pts:
                extra = any("extrapolated_from_T" in r.get(name, {}) for r in rows)
                ax.loglog(*zip(*pts), marker="o", linestyle="--" if extra else "-",
                          label=name + (" (last point extrapolated)" if extra else ""))
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("forward time (ms, median)")
        ax.set_title(f"GLA forward, B={B} H={H} D={D}, fp32, {args.threads} threads")
    from spikec.codegen.tvm.host import host_mcpu
    host = {"llvm_mcpu": host_mcpu(), "avx512f": "avx512f" in open("/proc/cpuinfo").read(),
            "load_average_before_after": [load_before, os.getloadavg()],
            "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "TVM_THREAD_POOL_SPIN_COUNT")}}
    write("kernels", {"host": host, "shape": {"B": B, "H": H, "D": D, "chunk": C, "gate": "channel, logsigmoid(x)/16"},
                      "flop_count": "4*B*H*T*D*(C+D) for every row (dense chunked algorithm)",
                      "gemm_sizes": peak, "compile_seconds": {**compile_s, **{f"torch.compile T={t}": s for t, s
                                                                              in _COMPILED.items()}},
                      "repeats": repeats, "rows": rows, "dense_gemm": dense, "summary": summary}, args, plot)
    return {"rows": rows, "summary": summary}


def _flat(row: dict) -> dict:
    out = {"T": row["T"]}
    for k, v in row.items():
        if isinstance(v, dict):
            out[k + " ms"] = v["ms"]
    return out


def _summary(rows: list) -> dict:
    last = rows[-1]
    cpu = last.get("spikec cpu")
    if not cpu:
        return {}
    out = {"T": last["T"], "gemm_gflops": last["gemm_gflops"], "cpu_gflops": cpu["gflops"],
           "cpu_fraction_of_gemm_peak": cpu["peak_fraction"], "cpu_executed_gflops": cpu["executed_gflops"],
           "cpu_executed_fraction_of_gemm_peak": cpu["executed_gflops"] / last["gemm_gflops"]}
    for name in ("onnxruntime chunked", "torch.compile chunked", "torch eager chunked", "torch eager naive loop"):
        if name in last:
            out[f"speedup_vs_{name.replace(' ', '_').replace('.', '_')}"] = last[name]["ms"] / cpu["ms"]
    out["targets"] = {"vs_onnxruntime": 1.2, "vs_torch_compile": 1.5, "fraction_of_gemm_peak": 0.7}
    return out


if __name__ == "__main__":
    main()
