"""The cpu target's linear-attention kernels (chunked forward, recurrent / decode
step) against spikec.ir.interpret, whose reference is the plain loop over time.

Tolerance: max |cpu - interpret| <= 2e-5 · max |interpret| (fp32; the chunked
kernel sums in a different order and uses a polynomial exp, ~1e-6 measured).
"""
import pytest
import torch

from spikec import ir
from spikec.codegen import get_target
from la_graphs import la_inputs, linear_attention_graph, rel_err

TOL = 2e-5
LENGTHS = (1, 37, 64, 130)           # chunk = 64: below, at, and past a multiple


@pytest.fixture(scope="module")
def cpu():
    return get_target("cpu")


@pytest.mark.parametrize("gate", ["none", "scalar", "channel"])
def test_chunked_forward_matches_interpreter_at_several_lengths(cpu, gate):
    g = linear_attention_graph(gate=gate)
    mod = cpu.lower(g, linear_attention="chunk")          # one module, T symbolic
    assert "gla_chunk" in mod.sources()["relax_module.py"]
    for T in LENGTHS:
        xs = la_inputs(g, T)
        want = ir.interpret(g, *xs)
        got = mod.run(*xs)
        for name, a, b in zip(("o", "final state"), got, want):
            assert a.shape == b.shape
            assert rel_err(a, b) <= TOL, f"gate={gate} T={T} {name}: {rel_err(a, b):.2e}"


def test_chunked_forward_is_exact_for_strong_decays(cpu):
    # log-decay about -3 per step: -190 over one chunk of 64, which overflows any
    # single-reference factorisation exp(b_t)·exp(-b_s) of the chunk; the kernel's
    # 16-step references keep it exact.
    g = linear_attention_graph(gate="channel", H=2, Hkv=2, K=16, V=16)
    mod = cpu.lower(g, linear_attention="chunk")
    xs = la_inputs(g, 150, decay_scale=4.0)
    assert xs[3].sum(2).min() < -88 * 2          # really beyond exp's range over the sequence
    want = ir.interpret(g, *xs)
    for a, b in zip(mod.run(*xs), want):
        assert torch.isfinite(a).all() and rel_err(a, b) <= TOL


@pytest.mark.parametrize("gate", ["none", "scalar", "channel", "key_tied"])
def test_recurrent_kernel_matches_interpreter(cpu, gate):
    g = linear_attention_graph(gate=gate, H=2, Hkv=1, K=16, V=8)
    mod = cpu.lower(g, linear_attention="recurrent")
    assert "gla_recurrent" in mod.sources()["relax_module.py"]
    for T in (1, 5, 70):
        xs = la_inputs(g, T)
        for a, b in zip(mod.run(*xs), ir.interpret(g, *xs)):
            assert rel_err(a, b) <= TOL, f"gate={gate} T={T}"


def test_prefill_then_decode_steps_continue_the_recurrence(cpu):
    # prefill 70 tokens with the chunked kernel, then 3 single-token decode steps
    # (static T=1: the recurrent kernel) from the carried state == one run over 73.
    full = linear_attention_graph(gate="channel", H=2, Hkv=2, K=16, V=16, h0=False)
    step = linear_attention_graph(gate="channel", H=2, Hkv=2, K=16, V=16, h0=True, length=1)
    prefill_mod, step_mod = cpu.lower(full), cpu.lower(step)
    assert "gla_recurrent" in step_mod.sources()["relax_module.py"]
    q, k, v, g = la_inputs(full, 73)
    want_o, want_s = ir.interpret(full, q, k, v, g)
    o, s = prefill_mod.run(q[:, :, :70], k[:, :, :70], v[:, :, :70], g[:, :, :70])
    outs = [o]
    for t in range(70, 73):
        sl = slice(t, t + 1)
        o_t, s = step_mod.run(q[:, :, sl], k[:, :, sl], v[:, :, sl], g[:, :, sl], s)
        outs.append(o_t)
    assert rel_err(torch.cat(outs, 2), want_o) <= TOL
    assert rel_err(s, want_s) <= TOL


def test_outputs_of_two_runs_do_not_alias(cpu):
    g = linear_attention_graph(gate="none", h0=False, final=False)
    mod = cpu.lower(g)
    a = mod.run(*la_inputs(g, 20, seed=1))[0]
    a_copy = a.clone()
    mod.run(*la_inputs(g, 20, seed=2))
    assert torch.equal(a, a_copy)


@pytest.mark.parametrize("kernel", ["chunk", "recurrent"])
def test_values_with_more_heads_than_keys(cpu, kernel):
    # SpikingBrain's decode graph: keys and gate shared by 2 heads, values per head
    g = linear_attention_graph(gate="channel", H=4, Hkv=2, Hv=4, K=32, V=32)
    mod = cpu.lower(g, linear_attention=kernel)
    for T in (1, 70):
        xs = la_inputs(g, T)
        for a, b in zip(mod.run(*xs), ir.interpret(g, *xs)):
            assert rel_err(a, b) <= TOL, f"{kernel} T={T}: {rel_err(a, b):.2e}"
