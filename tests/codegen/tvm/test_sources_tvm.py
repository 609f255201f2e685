"""TVM source emission (`spikec.codegen.tvm.emit_sources`): the same graph as CUDA C,
OpenCL C, WGSL and C source.

Checked here: CUDA compiles with nvcc to PTX for sm_90 and the C source with gcc
(each skipped, with the reason, where the compiler is absent); OpenCL and WGSL have
no validator installed on this machine (clang -x cl / naga would be the tools), so
their sources are checked for their kernel entry points only. The device-neutral
lowering they are built from is checked numerically by building it for llvm:
equal to spikec.ir.interpret within max |diff| <= 2e-5 · max |want| (fp32).
"""
import os
import shutil
import subprocess

import pytest
import torch
from tvm import relax
import tvm

from spikec import ir
from spikec.codegen import LoweringError
from spikec.codegen.tvm import emit_sources
from spikec.codegen.tvm.build import compile_module
from spikec.codegen.tvm.host import host_target
from spikec.codegen.tvm.module import to_torch, to_tvm
from spikec.codegen.tvm.sources import lower_portable
from la_graphs import attention_graph, la_inputs, linear_attention_graph, rel_err

TVM_SITE = os.path.dirname(os.path.dirname(tvm.__file__))


@pytest.fixture(scope="module")
def graph():
    # grouped-query GLA with a channel gate, state in and out (all fused-op paths)
    return linear_attention_graph(gate="channel", H=4, Hkv=2, K=16, V=16)


@pytest.fixture(scope="module")
def sources(graph):
    return emit_sources(graph, ("cuda", "opencl", "webgpu", "c"))


@pytest.mark.parametrize("make", [lambda: linear_attention_graph(gate="channel", H=4, Hkv=2, K=16, V=16),
                                  lambda: linear_attention_graph(gate="scalar", H=2, Hkv=2, K=8, V=8, h0=False),
                                  lambda: attention_graph("sliding_window_attention", window=5),
                                  lambda: attention_graph("attention", causal=False)],
                         ids=["gla-channel", "gla-scalar", "swa", "full"])
def test_device_neutral_lowering_is_numerically_right(make):
    g = make()
    mod, weights = lower_portable(g)
    vm = relax.VirtualMachine(compile_module(mod, host_target()), tvm.cpu())
    for T in (1, 19):
        xs = la_inputs(g, T) if g.name == "la" else [torch.randn([d if isinstance(d, int) else T for d in v.type.shape])
                                                     for v in g.inputs]
        got = [to_torch(o) for o in vm["main"](*[to_tvm(x) for x in xs], *[to_tvm(w) for w in weights])]
        want = ir.interpret(g, *xs)
        for a, b in zip(got, want if isinstance(want, tuple) else (want,)):
            assert rel_err(a, b) <= 2e-5, f"{g.name} T={T}"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed: CUDA source cannot be compiled")
def test_cuda_source_compiles_to_ptx_for_sm90(sources, tmp_path):
    cu = tmp_path / "kernels.cu"
    cu.write_text(sources["cuda"]["kernels.cu"])
    r = subprocess.run(["nvcc", "-ptx", "-arch=sm_90", "-o", str(tmp_path / "k.ptx"), str(cu)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ptx = (tmp_path / "k.ptx").read_text()
    assert ".target sm_90" in ptx and ptx.count(".entry") >= 3


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed: C source cannot be compiled")
def test_c_source_compiles_with_gcc(sources, tmp_path):
    c = tmp_path / "module.c"
    c.write_text(sources["c"]["module.c"])
    inc = [f"-I{os.path.join(TVM_SITE, 'tvm', 'include')}", f"-I{os.path.join(TVM_SITE, 'tvm_ffi', 'include')}"]
    r = subprocess.run(["gcc", "-c", "-O1", *inc, "-o", str(tmp_path / "m.o"), str(c)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_opencl_and_wgsl_sources_have_their_kernels(sources):
    cl = sources["opencl"]["kernels.cl"]
    wgsl = sources["webgpu"]["kernels.wgsl"]
    assert cl.count("__kernel void") >= 3 and "get_group_id" in cl
    assert wgsl.count("@compute") >= 3 and "i64" not in wgsl          # WGSL has no 64-bit integers
    assert "la_scores" in sources["relax"]["relax_module.py"]


def test_unavailable_kind_says_why(graph):
    with pytest.raises(LoweringError, match="vulkan"):
        emit_sources(graph, ["vulkan"])
