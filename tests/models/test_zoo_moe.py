"""MoE: sparse dispatch vs dense compute-all-then-mask vs a per-token loop oracle (outputs and
gradients, relative error <= 1e-4 fp32), the load-balancing loss, and the model-level switch."""
import pytest
import torch

import spikec.models as zoo
from spikec.models.moe import SparseMoE, load_balancing_loss

TOL = 1e-4


def rel_err(a, b):
    return float(((a - b).norm() / b.norm().clamp_min(1e-30)).detach())


def per_token_oracle(moe: SparseMoE, x):
    """y_n = sum_{i in topk(p_n)} w_ni E_i(x_n) + shared(x_n), token by token in float64."""
    moe = moe.double()
    h = x.double().reshape(-1, x.shape[-1])
    out = []
    for n in range(h.shape[0]):
        logits = moe.gate(h[n])
        p = logits.softmax(-1) if moe.router_activation == "softmax" else logits.sigmoid()
        w, idx = p.topk(moe.top_k)
        if moe.norm_topk_prob:
            w = w / w.sum()
        y = sum(w[j] * moe.experts[int(idx[j])](h[n]) for j in range(moe.top_k))
        if moe.shared_expert is not None:
            y = y + moe.shared_expert(h[n])
        out.append(y)
    moe.float()
    return torch.stack(out).reshape(x.shape)


@pytest.mark.parametrize("n_tokens", [1, 7, 63, 65, 200])
@pytest.mark.parametrize("router,norm,top_k", [("softmax", False, 2), ("sigmoid", True, 2), ("softmax", False, 1)])
def test_sparse_dense_oracle_agree(n_tokens, router, norm, top_k):
    torch.manual_seed(n_tokens)
    moe = SparseMoE(16, 24, num_experts=5, top_k=top_k, shared_intermediate_size=12,
                    router_activation=router, norm_topk_prob=norm)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x0 = torch.randn(1, n_tokens, 16)
    ref = per_token_oracle(moe, x0)
    grads = {}
    for impl in ("sparse", "dense"):
        moe.zero_grad()
        x = x0.clone().requires_grad_(True)
        y, aux = moe.forward_with_aux(x, impl=impl)
        assert rel_err(y.double(), ref) <= TOL, impl
        w = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
        ((y * w).sum() + aux).backward()
        grads[impl] = [x.grad] + [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                                  for p in moe.parameters()]
    for a, b in zip(grads["sparse"], grads["dense"]):
        assert rel_err(a, b) <= TOL or float(b.abs().max()) == 0.0


def test_load_balancing_loss_values():
    E = 4
    # uniform probabilities and perfectly balanced routing -> 1
    probs = torch.full((8, E), 1 / E)
    idx = torch.arange(8).remainder(E)[:, None]
    assert abs(float(load_balancing_loss(probs, idx, E)) - 1.0) < 1e-6
    # everything routed to expert 0 with certainty -> E
    probs = torch.zeros(8, E)
    probs[:, 0] = 1
    assert abs(float(load_balancing_loss(probs, torch.zeros(8, 1, dtype=torch.long), E)) - E) < 1e-6


def test_model_dense_vs_sparse_and_aux():
    torch.manual_seed(0)
    m_sparse = zoo.create("spikingbrain_moe", "tiny").eval()
    m_dense = zoo.create("spikingbrain_moe", "tiny", moe_impl="dense").eval()
    m_dense.load_state_dict(m_sparse.state_dict())
    ids = torch.randint(0, 256, (2, 33))
    assert rel_err(m_sparse(ids), m_dense(ids)) <= TOL
    logits, aux = m_sparse(ids, return_aux_loss=True)
    assert aux.ndim == 0 and float(aux.detach()) > 0
    loss, parts = m_sparse.loss(ids, ids)
    assert torch.isclose(loss, parts["ce"] + parts["aux"])


def test_moe_layer_layout_follows_config():
    cfg = zoo.config("spikingbrain_moe", "76b")
    with torch.device("meta"):
        m = zoo.create("spikingbrain_moe", "76b")
    dense = [i for i, b in enumerate(m.model.layers) if not isinstance(b.mlp, SparseMoE)]
    full = [i for i, b in enumerate(m.model.layers) if b.attn.window is None]
    assert dense == cfg.dense_layers == [0, 1, 2, 4, 6, 8, 10]
    assert full == cfg.full_attn_layers == [6, 13, 20, 27]
    moe = m.model.layers[3].mlp
    assert (moe.num_experts, moe.top_k, moe.shared_expert is not None) == (16, 1, True)
