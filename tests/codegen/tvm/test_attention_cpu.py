"""The cpu target's flash-style attention kernel (full, causal, sliding window,
grouped-query heads, decode-shaped queries) against spikec.ir.interpret.

Tolerance: max |cpu - interpret| <= 2e-5 · max |interpret| (fp32, online softmax
with a polynomial exp; ~1e-7 measured).
"""
import pytest
import torch

from spikec import ir
from spikec.codegen import get_target
from spikec.ir import sym
from la_graphs import attention_graph, rel_err

TOL = 2e-5


def _inputs(g, lengths: dict, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for v in g.inputs:
        shape = [d if isinstance(d, int) else lengths[str(d)] for d in v.type.shape]
        out.append(torch.randn(shape, generator=gen))
    return out


@pytest.fixture(scope="module")
def cpu():
    return get_target("cpu")


@pytest.mark.parametrize("window", [1, 3, 16, 40])
def test_sliding_window_matches_interpreter(cpu, window):
    g = attention_graph("sliding_window_attention", window=window)
    mod = cpu.lower(g)
    for T in (1, 5, 37, 100):
        xs = _inputs(g, {"T": T}, seed=T)
        assert rel_err(mod.run(*xs)[0], ir.interpret(g, *xs)) <= TOL, f"window={window} T={T}"


@pytest.mark.parametrize("causal", [True, False])
def test_full_attention_matches_interpreter(cpu, causal):
    g = attention_graph("attention", causal=causal, H=2, Hkv=1, D=8, Dv=24)
    mod = cpu.lower(g)
    for T in (1, 17, 50):
        xs = _inputs(g, {"T": T}, seed=T)
        assert rel_err(mod.run(*xs)[0], ir.interpret(g, *xs)) <= TOL, f"causal={causal} T={T}"


def test_decode_queries_attend_to_the_last_positions(cpu):
    # 2 new queries against a cache of S keys: query i sits at position S - 2 + i
    g = attention_graph("sliding_window_attention", window=5, q_len=2, k_len=sym("S"))
    g.symbols["S"] = (2, None)
    mod = cpu.lower(g)
    for S in (2, 9, 40):
        xs = _inputs(g, {"S": S}, seed=S)
        assert rel_err(mod.run(*xs)[0], ir.interpret(g, *xs)) <= TOL, f"S={S}"
