"""Spike-coding ops: properties against naive element-by-element oracles written here."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikec.ir import Graph, TensorType, get_op, interpret, parse, verify
from spikec.ir.ops_spike import (SpikeCodingError, int8_fake_quant_reference, name_steps, spike_decode_reference,
                                 spike_encode_reference, spike_linear_events, spike_train_reference)
from spikec.passes.rewrite import Builder

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- naive oracles: one element at a time, the way Int2Spike's neurons emit ------------------

def naive_train(values: list[int], coding: str) -> list[list[int]]:
    if coding == "binary":
        T = max(values, default=0)
    elif coding == "ternary":
        T = max((abs(v) for v in values), default=0)
    else:
        m = max((abs(v) for v in values), default=0)
        T = max(1, len(bin(m)) - 2 if m else 0)
    trains = [[0] * len(values) for _ in range(T)]
    for i, v in enumerate(values):
        rem = v
        for t in range(T):
            if coding == "bitwise":
                bit = (abs(v) >> (T - 1 - t)) & 1
                trains[t][i] = -bit if v < 0 else bit
            else:                                  # fire sign(remainder), subtract (soft reset)
                s = (rem > 0) - (rem < 0)
                trains[t][i] = s
                rem -= s
    return trains


def counts_strategy(lo: int, hi: int):
    return st.lists(st.integers(lo, hi), min_size=1, max_size=12)


CASES = {
    # coding: (small range, "very large" magnitude the coding can still expand)
    "binary": (0, 2000),
    "ternary": (-2000, 2000),
    "bitwise": (-(2 ** 30), 2 ** 30),
}


@pytest.mark.parametrize("coding", list(CASES))
@SETTINGS
@given(data=st.data())
def test_train_decode_round_trip_matches_naive_neurons(coding, data):
    lo, hi = CASES[coding]
    kind = data.draw(st.sampled_from(["mixed", "zero", "positive", "negative", "large"]))
    if kind == "zero":
        values = [0] * data.draw(st.integers(1, 8))
    elif kind == "positive":
        values = data.draw(counts_strategy(1, 40))
    elif kind == "negative":
        if coding == "binary":
            return                                  # covered by test_binary_rejects_negative_counts
        values = data.draw(counts_strategy(-40, -1))
    elif kind == "large":
        values = data.draw(counts_strategy(max(lo, -hi), hi))
    else:
        values = data.draw(counts_strategy(max(lo, -20), 20))
    c = torch.tensor(values, dtype=torch.int32)
    trains = spike_train_reference(c, coding)
    assert trains.dtype == torch.int8
    assert trains.tolist() == naive_train(values, coding)
    assert torch.equal(spike_decode_reference(trains, coding), c)
    allowed = {0, 1} if coding == "binary" else {-1, 0, 1}
    assert set(trains.unique().tolist()) <= allowed


@pytest.mark.parametrize("coding", ["ternary", "bitwise"])
def test_fixed_steps_pad_and_reject_overflow(coding):
    c = torch.tensor([[3, -2], [0, 1]], dtype=torch.int32)
    trains = spike_train_reference(c, coding, steps=4)
    assert trains.shape == (4, 2, 2)
    assert torch.equal(spike_decode_reference(trains, coding), c)
    with pytest.raises(SpikeCodingError, match="does not fit"):
        spike_train_reference(torch.tensor([4 if coding == "ternary" else 8]), coding, steps=3 if coding == "ternary" else 3)


def test_binary_rejects_negative_counts():
    with pytest.raises(SpikeCodingError, match="counts >= 0"):
        spike_train_reference(torch.tensor([1, -1]), "binary")


def test_bitwise_paper_example_256_needs_9_steps_and_255_needs_8():
    # T = ceil(log2(max|c| + 1)); the paper's "7 steps for 256" counts without the sign.
    assert spike_train_reference(torch.tensor([255]), "bitwise").shape[0] == 8
    assert spike_train_reference(torch.tensor([-256]), "bitwise").shape[0] == 9


@SETTINGS
@given(rows=st.integers(1, 4), cols=st.integers(1, 16), k=st.sampled_from([1.0, 2.0, 3.0, 4.5]),
       scale=st.sampled_from([1e-3, 1.0, 50.0]), seed=st.integers(0, 2 ** 16))
def test_encode_matches_float64_oracle(rows, cols, k, scale, seed):
    x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * scale
    counts, vth = spike_encode_reference(x, k)
    assert counts.dtype == torch.int32 and vth.shape == (rows, 1)
    for r in range(rows):
        v = min(max(sum(abs(float(a)) for a in x[r]) / cols / k, 1e-5), 1e4)
        assert abs(float(vth[r, 0]) - v) <= 1e-5 * v
        for j in range(cols):
            exact = float(x[r, j]) / v
            # equal to round(x / v_th) except within float error of a .5 boundary
            assert abs(int(counts[r, j]) - exact) <= 0.5 + 1e-4 * (1 + abs(exact))


def test_encode_axis_and_reconstruction_error():
    x = torch.randn(3, 5, 7)
    counts, vth = spike_encode_reference(x, 3.0, axis=1)
    assert vth.shape == (3, 1, 7)
    assert torch.allclose(vth[:, 0], x.abs().mean(1) / 3)
    assert ((counts * vth - x).abs() <= vth / 2 + 1e-6).all()       # round-to-nearest: error ≤ v_th / 2
    zero_c, zero_v = spike_encode_reference(torch.zeros(2, 4))
    assert not zero_c.any() and torch.all(zero_v == 1e-5)            # the clamp keeps v_th > 0


@pytest.mark.parametrize("coding", ["binary", "ternary", "bitwise"])
@SETTINGS
@given(tokens=st.integers(1, 6), in_f=st.integers(1, 24), out_f=st.integers(1, 9), seed=st.integers(0, 2 ** 16),
       signed=st.booleans(), with_bias=st.booleans())
def test_spike_linear_equals_dense_matmul_of_decoded(coding, tokens, in_f, out_f, seed, signed, with_bias):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, tokens, in_f, generator=g)
    x = x if signed else x.abs()
    counts, vth = spike_encode_reference(x, 3.0)
    W = torch.randn(out_f, in_f, generator=g)
    b = torch.randn(out_f, generator=g) if with_bias else None
    dense = F.linear((counts.double() * vth.double()), W.double(), None if b is None else b.double())
    y, acc = spike_linear_events(counts, vth, W, b, coding)
    tol = 1e-4 * (1 + dense.abs().max().item())
    assert y.shape == dense.shape and (y.double() - dense).abs().max().item() <= tol
    # the same through explicit trains (binary: of the zero-point-shifted counts)
    if coding != "binary" or signed is False:
        y2, acc2 = spike_linear_events(spike_train_reference(counts, coding), vth, W, b, coding, trains=True)
        assert (y2.double() - dense).abs().max().item() <= tol and acc2 == acc


@pytest.mark.parametrize("coding", ["binary", "ternary", "bitwise"])
def test_event_driven_work_is_proportional_to_spikes(coding):
    W = torch.randn(5, 32)
    dense_counts = torch.randint(0, 9, (4, 32), dtype=torch.int32)
    vth = torch.ones(4, 1)
    for keep in (0.0, 0.1, 0.5, 1.0):
        mask = torch.rand(4, 32, generator=torch.Generator().manual_seed(1)) < keep
        c = torch.where(mask, dense_counts, torch.zeros_like(dense_counts))
        trains = spike_train_reference(c, coding)
        _, acc = spike_linear_events(c, vth, W, None, coding)
        assert acc == int((trains != 0).sum()) * W.shape[0]     # one accumulate per spike per output
        if keep == 0.0:
            assert acc == 0


def test_int8_fake_quant_matches_per_group_loop():
    x = torch.randn(3, 16) * torch.tensor([1.0, 100.0, 0.01])[:, None]
    out = int8_fake_quant_reference(x, axis=-1, group_size=4)
    for r in range(3):
        for g0 in range(0, 16, 4):
            grp = x[r, g0:g0 + 4]
            s = float(grp.abs().max()) / 127
            for j in range(4):
                q = max(-128, min(127, round(float(grp[j]) / s)))
                assert abs(float(out[r, g0 + j]) - q * s) <= 1e-6 * max(1.0, abs(q * s))
    with pytest.raises(SpikeCodingError, match="group_size"):
        int8_fake_quant_reference(x, group_size=5)


def _build(coding: str) -> Graph:
    g = Graph("spikes")
    g.symbols["T"] = (1, None)
    x = g.add_input(TensorType((2, "T", 8), "f32"), "x")
    anchor = g.add_node("clone", {"self": x}, [x.type])
    b = Builder(g, anchor)
    counts, vth = b.op("spike_encode", {"x": x, "k": 2.0})
    trains = b.op("spike_train", {"counts": b.op("abs", {"self": counts}), "coding": coding})
    name_steps(g, trains, coding)
    back = b.op("spike_decode", {"trains": trains, "coding": coding})
    w = g.add_input(TensorType((3, 8), "f32"), "w")
    y = b.op("spike_linear", {"s": trains, "v_th": vth, "weight": w, "coding": coding, "trains": True})
    g.nodes.remove(anchor)
    g.set_outputs([back, y])
    return g


@pytest.mark.parametrize("coding", ["binary", "ternary", "bitwise"])
def test_ops_type_verify_round_trip_and_interpret(coding):
    g = _build(coding)
    verify(g)
    text = str(g)
    assert "spike_train(" in text and "S: [" in text
    again = parse(text)
    verify(again)
    x, w = torch.randn(2, 5, 8), torch.randn(3, 8)
    back, y = interpret(again, x, w)
    counts, vth = spike_encode_reference(x, 2.0)
    assert torch.equal(back, counts.abs())
    assert torch.allclose(y, F.linear(counts.abs() * vth, w), atol=1e-4)
    assert get_op("spike_linear").doc and get_op("straight_through").doc
