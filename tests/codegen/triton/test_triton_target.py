"""The cuda and rocm targets on graphs of fused ops, against spikec.ir.interpret.

With no GPU the cuda target runs its Triton kernels in the interpreter on CPU
tensors; the rest of the graph is the torch target's generated code. fp32,
atol = rtol = 1e-4 unless stated. The rocm target is compile-only: it must
produce hsaco for the kernels a graph uses and refuse to run.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import spikec.codegen as cg
from spikec import ir
from spikec.codegen.errors import TargetUnavailableError
from spikec.ir import TensorType, sym
from spikec.ir.ops_fused import linear_attention_reference

TOL = dict(atol=1e-4, rtol=1e-4)
T = sym("T")


def _run(mod, *inputs):
    """The module's outputs, on the CPU (the cuda module moves CPU inputs to its device)."""
    return [t.cpu() for t in mod.run(*inputs)]


def _attention_graph(gate_kind="channel"):
    g = ir.Graph("fused")
    g.symbols["T"] = (1, 4096)
    q = g.add_input(TensorType((1, 4, T, 16), "f32"), "q")
    k = g.add_input(TensorType((1, 2, T, 16), "f32"), "k")
    v = g.add_input(TensorType((1, 2, T, 16), "f32"), "v")
    gate = g.add_input(TensorType((1, 2, T, 16), "f32"), "g")
    h0 = g.add_constant("h0", torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)))
    la = g.add_node("linear_attention", {"q": q, "k": k, "v": v, "gate": gate, "initial_state": h0,
                                         "gate_kind": gate_kind, "scale": 0.25, "output_final_state": True},
                    [TensorType((1, 4, T, 16), "f32"), TensorType((1, 4, 16, 16), "f32")], loc=ir.Loc("model.py", 7))
    swa = g.add_node("sliding_window_attention", {"q": q, "k": k, "v": v, "window": 5, "scale": 0.25},
                     [TensorType((1, 4, T, 16), "f32")], loc=ir.Loc("model.py", 8))
    full = g.add_node("attention", {"q": q, "k": k, "v": v, "scale": 0.25, "causal": False},
                      [TensorType((1, 4, T, 16), "f32")], loc=ir.Loc("model.py", 9))
    g.set_outputs([la.outputs[0], la.outputs[1], swa.output, full.output])
    return g


def _attention_inputs(T_, gate_kind="channel", seed=1):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(1, 4, T_, 16, generator=gen), torch.randn(1, 2, T_, 16, generator=gen), \
        torch.randn(1, 2, T_, 16, generator=gen)
    if gate_kind == "key_tied":
        k = torch.rand(1, 2, T_, 16, generator=gen) * 0.5          # decays 1 - k in (0.5, 1]
    return [q, k, v, F.logsigmoid(torch.randn(1, 2, T_, 16, generator=gen))]


@pytest.mark.parametrize("T_", [1, 21])          # 1: the fused recurrent decode kernel; 21: the chunked kernels
def test_fused_attention_ops_match_interpreter(T_):
    g = _attention_graph()
    mod = cg.get_target("cuda").lower(g)
    src = mod.sources()["model.py"]
    assert "from spikec.codegen.triton.ops import linear_attention" in src
    assert "sliding_window_attention(q, k, v, window=5, scale=0.25)" in src
    inputs = _attention_inputs(T_)
    with torch.no_grad():
        out = _run(mod, *inputs)
    for got, want in zip(out, ir.interpret(g, *inputs)):
        torch.testing.assert_close(got, want, **TOL)


def test_key_tied_gate_runs_on_the_torch_kernel():
    g = _attention_graph("key_tied")
    inputs = _attention_inputs(12, "key_tied")
    with torch.no_grad():
        out = _run(cg.get_target("cuda").lower(g), *inputs)
    for got, want in zip(out, ir.interpret(g, *inputs)):
        torch.testing.assert_close(got, want, **TOL)


def test_heads_wider_than_the_kernels_run_on_the_torch_kernels():
    from spikec.codegen.triton import mode, ops
    from spikec.ir.ops_fused import _softmax_attention
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 6, 160, generator=gen).to(mode.device()) for _ in range(3))
    torch.testing.assert_close(ops.linear_attention(q, k, v, scale=0.1), linear_attention_reference(q, k, v, scale=0.1),
                               **TOL)
    torch.testing.assert_close(ops.sliding_window_attention(q, k, v, 3, 0.1),
                               _softmax_attention(q, k, v, 0.1, True, 3), **TOL)


def test_gradients_flow_through_the_triton_backward():
    """The initial state is a trainable parameter of the module, q an input that
    requires grad; both gradients must equal autograd through the reference."""
    g = _attention_graph()
    mod = cg.get_target("cuda").lower(g, parameters="all")
    q, k, v, gate = _attention_inputs(21)
    q.requires_grad_()
    o, ht, _, _ = _run(mod, q, k, v, gate)
    w_o, w_h = torch.randn_like(o), torch.randn_like(ht)
    ((o * w_o).sum() + (ht * w_h).sum()).backward()

    q_ref = q.detach().clone().requires_grad_()
    h0_ref = g.constants["h0"].detach().clone().requires_grad_()
    o_r, ht_r = linear_attention_reference(q_ref, k, v, gate, h0_ref, gate_kind="channel", scale=0.25,
                                           output_final_state=True)
    ((o_r * w_o).sum() + (ht_r * w_h).sum()).backward()
    torch.testing.assert_close(q.grad, q_ref.grad, **TOL)
    torch.testing.assert_close(mod.const("h0").grad.cpu(), h0_ref.grad, **TOL)


def _spike_moe_graph():
    gen = torch.Generator().manual_seed(2)
    E, D, Fh, N = 4, 16, 24, 10
    g = ir.Graph("spike_moe")
    x = g.add_input(TensorType((N, D), "f32"), "x")
    sizes = g.add_input(TensorType((1, E), "i64"), "sizes")
    enc = g.add_node("spike_encode", {"x": x, "k": 2.0}, [TensorType((N, D), "i32"), TensorType((N, 1), "f32")])
    c = {n: g.add_constant(n, t) for n, t in {
        "router": torch.randn(E, D, generator=gen), "w_gate": torch.randn(E, Fh, D, generator=gen) * 0.3,
        "w_up": torch.randn(E, Fh, D, generator=gen) * 0.3, "w_down": torch.randn(E, D, Fh, generator=gen) * 0.3,
        "w_seg": torch.randn(E, 8, D, generator=gen)}.items()}
    moe = g.add_node("moe", {"x": x, "router_weight": c["router"], "w_gate": c["w_gate"], "w_up": c["w_up"],
                             "w_down": c["w_down"], "top_k": 2}, [TensorType((N, D), "f32")])
    gmm = g.add_node("grouped_matmul", {"x": x, "group_sizes": sizes, "weight": c["w_seg"]},
                     [TensorType((N, 8), "f32")])
    g.set_outputs([enc.outputs[0], enc.outputs[1], moe.output, gmm.output])
    x_in = torch.randint(-40, 41, (N, D), generator=gen) / 16.0    # dyadic: spike thresholds are exact
    return g, [x_in, torch.tensor([[3, 0, 6, 1]])]


def test_spike_encode_moe_and_grouped_matmul_match_interpreter():
    g, inputs = _spike_moe_graph()
    mod = cg.get_target("cuda").lower(g)
    assert "from spikec.codegen.triton.ops import moe" in mod.sources()["model.py"]
    with torch.no_grad():
        counts, v_th, y_moe, y_gmm = _run(mod, *inputs)
    c_ref, v_ref, moe_ref, gmm_ref = ir.interpret(g, *inputs)
    assert torch.equal(counts, c_ref) and torch.equal(v_th, v_ref)
    torch.testing.assert_close(y_moe, moe_ref, **TOL)
    torch.testing.assert_close(y_gmm, gmm_ref, **TOL)


def test_moe_expert_weights_get_the_gradients_of_the_reference():
    g, inputs = _spike_moe_graph()
    mod = cg.get_target("cuda").lower(g, parameters="all")
    _run(mod, *inputs)[2].square().sum().backward()
    refs = {n: g.constants[n].detach().clone().requires_grad_() for n in ("router", "w_gate", "w_up", "w_down")}
    from spikec.ir.ops_moe import moe_reference
    moe_reference(inputs[0], refs["router"], refs["w_gate"], refs["w_up"], refs["w_down"], top_k=2) \
        .square().sum().backward()
    for n in ("w_gate", "w_up", "w_down", "router"):
        torch.testing.assert_close(mod.const(n).grad.cpu(), refs[n].grad, **TOL)


def test_rocm_is_compile_only_and_ships_hsaco():
    g = ir.Graph("swa")
    q = g.add_input(TensorType((1, 2, 8, 16), "f32"), "q")
    k = g.add_input(TensorType((1, 1, 8, 16), "f32"), "k")
    n = g.add_node("sliding_window_attention", {"q": q, "k": k, "v": k, "window": 4},
                   [TensorType((1, 2, 8, 16), "f32")])
    g.set_outputs([n.output])
    target = cg.get_target("rocm")
    assert "compile-only" in target.unavailable_reason()
    mod = target.lower(g)
    files = mod.sources()
    hsaco = [f for f in files if f.endswith(".hsaco")]
    assert hsaco == ["kernels/gfx942/swa_fwd_fp32_h2x1_d16v16_causal.hsaco"]
    assert files[hsaco[0]][:4] == b"\x7fELF"
    assert "gfx942" in files["kernels/gfx942/swa_fwd_fp32_h2x1_d16v16_causal.amdgcn"]
    with pytest.raises(TargetUnavailableError, match="compile-only"):
        mod.run(torch.zeros(1, 2, 8, 16), torch.zeros(1, 1, 8, 16))


def test_cuda_target_reports_interpreter_mode_and_rejects_unknown_options():
    target = cg.get_target("cuda")
    if not torch.cuda.is_available():
        assert "interpreter" in target.unavailable_reason()
    from spikec import SpikecError
    with pytest.raises(SpikecError, match="no option 'tile'"):
        target.lower(_attention_graph(), tile=4)
