"""Ahead-of-time compilation of every Triton kernel for sm_80, sm_90 (PTX +
cubin) and gfx942 (AMDGCN + hsaco) on a machine without a GPU.

In this process the kernels are decorated for the interpreter (no GPU), which
the compiler cannot take, so `compile_kernels` compiles in a subprocess with
TRITON_INTERPRET=0; one subprocess per test. Small head dims keep the compile
time down; the targets compile the shapes of the graph they lower.
"""
from __future__ import annotations

import json

import pytest

from spikec.codegen.triton.aot import KernelCompileError, compile_kernels
from spikec.codegen.triton.aot_specs import base_specs, variant_specs

ELF = b"\x7fELF"


def _check_nvidia(asm: dict, arch: str):
    assert f".target {arch}" in asm["ptx"]
    assert ".entry " in asm["ptx"]
    assert asm["cubin"][:4] == ELF


@pytest.mark.parametrize("arch,head_dim", [("sm_80", 16), ("sm_90", 64), ("gfx942", 16)])
def test_every_kernel_compiles(arch, head_dim):
    """Head dim 16 takes the all-pairs diagonal of the linear-attention kernels, 64 the row loop."""
    specs = base_specs(head_dim=head_dim)
    out = compile_kernels(arch, specs=specs)
    assert sorted(out) == sorted(s.name for s in specs)
    for name, asm in out.items():
        meta = json.loads(asm["metadata"])
        assert meta["arch"] == arch and meta["num_warps"] >= 1
        assert meta["name"] in (asm["ptx"] if arch.startswith("sm") else asm["amdgcn"]), name
        if arch.startswith("sm"):
            _check_nvidia(asm, arch)
        else:
            assert "gfx942" in asm["amdgcn"]
            assert asm["hsaco"][:4] == ELF


def test_variants_compile_for_sm90():
    """Packed sequences, bf16 inputs, no gate."""
    specs = variant_specs(head_dim=16)
    out = compile_kernels("sm_90", specs=specs)
    assert sorted(out) == sorted(s.name for s in specs)
    for asm in out.values():
        _check_nvidia(asm, "sm_90")


def test_unknown_arch_and_kernel_are_named():
    with pytest.raises(KernelCompileError, match="sm_70"):
        compile_kernels("sm_70")
    with pytest.raises(KernelCompileError, match="no_such_kernel"):
        compile_kernels("sm_90", names=["no_such_kernel"])
