"""fuse-moe: every MoE layer of the zoo's spikingbrain_moe (tiny; sparse `torch.where`
dispatch and moe_impl="dense"), zoo-style layers with other router settings, a
Mixtral-style block (one-hot expert mask, torch.where, index_add_) and a GShard-style
one-hot einsum block become one `moe` node each; dense FFNs are untouched; near misses
are left alone.
Fused graph vs eager: relative error <= 1e-5 (fp32), at the traced and another length."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikec
import spikec.models as zoo
from spikec import ir
from spikec.frontend import from_torch
from spikec.models.moe import SparseMoE

TOL = 1e-5


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def fuse(model, x, pipeline="default,fuse-moe", dynamic=True):
    g = from_torch(model.eval(), (x,), dynamic={"T": (2, 4096)} if dynamic else None)
    pm = spikec.passes.PassManager(pipeline)
    return pm.run(g), pm.records[-1].stats


def expect_equal_to_eager(g, model, shape, lengths=(9, 23), vocab=None):
    for T in lengths:
        gen = torch.Generator().manual_seed(T)
        x = (torch.randint(0, vocab, (shape[0], T), generator=gen) if vocab
             else torch.randn(shape[0], T, *shape[2:], generator=gen))
        with torch.no_grad():
            want = model(x)
        assert rel(ir.interpret(g, x), want) <= TOL, T


# -- the zoo model ------------------------------------------------------------------
@pytest.mark.parametrize("impl,dynamic", [("sparse", True), ("dense", False)])   # static T: half the trace time
def test_zoo_spikingbrain_moe_every_moe_layer_fused(impl, dynamic):
    torch.manual_seed(0)
    model = zoo.create("spikingbrain_moe", "tiny", moe_impl=impl).eval()
    cfg = model.config
    g, stats = fuse(model, torch.randint(0, 256, (1, 12)), dynamic=dynamic)
    moe_layers = [i for i in range(cfg.num_hidden_layers) if i not in cfg.dense_layers]
    moes = [n for n in g.nodes if n.op == "moe"]
    assert len(moes) == len(moe_layers) == 3 and stats["fused"] == 3
    for i, node in zip(moe_layers, moes):
        mlp = model.model.layers[i].mlp
        assert node.arg("top_k") == cfg.num_experts_per_tok and node.arg("activation") == cfg.router_activation
        assert node.arg("renormalize") is False
        assert torch.equal(g.constants[node.arg("router_weight").producer.args["name"]], mlp.gate.weight)
        w_gate = g.constants[node.arg("w_gate").producer.args["name"]]
        assert torch.equal(w_gate, torch.stack([e.gate_proj.weight for e in mlp.experts]))
        assert node.arg("shared_gate") is not None
    # the dense layer's FFN is still three linears and a silu over its own weights
    dense = {f"model.layers.0.mlp.{p}.weight" for p in ("gate_proj", "up_proj", "down_proj")}
    read = {n.arg("weight").producer.args["name"] for n in g.nodes if n.op == "linear"
            and n.arg("weight").producer is not None and n.arg("weight").producer.op == "constant"}
    assert dense <= read and g.op_counts()["silu"] == 1
    assert not any(n.op in ("nonzero", "index_put", "scatter") for n in g.nodes)
    assert not [s for s in g.symbols if s.startswith("u")]          # the dispatch's data-dependent sizes are gone
    assert not any(".experts.0." in name for name in g.constants)   # per-expert weights dropped for the stacks
    expect_equal_to_eager(g, model, (1, 12), lengths=(12, 29) if dynamic else (12,), vocab=256)


# -- zoo-style layers with other router settings --------------------------------------
@pytest.mark.parametrize("impl,router,norm,top_k,shared", [
    ("sparse", "sigmoid", True, 2, 0), ("dense", "sigmoid", True, 2, 0),
    ("sparse", "softmax", False, 1, 8), ("dense", "softmax", True, 3, 8)])
def test_zoo_layer_variants(impl, router, norm, top_k, shared):
    torch.manual_seed(1)
    layer = SparseMoE(16, 24, 5, top_k, shared, router, norm, impl)
    g, _ = fuse(layer, torch.randn(1, 9, 16))
    (node,) = [n for n in g.nodes if n.op == "moe"]
    assert (node.arg("activation"), node.arg("renormalize"), node.arg("top_k")) == (router, norm, top_k)
    assert (node.arg("shared_gate") is not None) == bool(shared)
    expect_equal_to_eager(g, layer, (1, 9, 16))


# -- a second, differently written block: Mixtral ----------------------------------------
class MixtralExpert(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.w1, self.w3 = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MixtralBlock(nn.Module):
    """HF Mixtral's sparse MoE block: softmax in fp32, top-k renormalised, one-hot expert
    mask permuted to [E, k, N], torch.where per expert, in-place index_add_."""

    def __init__(self, d=16, f=24, num_experts=4, top_k=2):
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k
        self.gate = nn.Linear(d, num_experts, bias=False)
        self.experts = nn.ModuleList(MixtralExpert(d, f) for _ in range(num_experts))

    def forward(self, hidden_states):
        B, T, D = hidden_states.shape
        h = hidden_states.view(-1, D)
        routing_weights = F.softmax(self.gate(h), dim=1, dtype=torch.float)
        routing_weights, selected = torch.topk(routing_weights, self.top_k, dim=-1)
        routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
        routing_weights = routing_weights.to(h.dtype)
        final = torch.zeros((B * T, D), dtype=h.dtype, device=h.device)
        expert_mask = F.one_hot(selected, num_classes=self.num_experts).permute(2, 1, 0)
        for e in range(self.num_experts):
            idx, top_x = torch.where(expert_mask[e])
            current = h[None, top_x].reshape(-1, D)
            current = self.experts[e](current) * routing_weights[top_x, idx, None]
            final.index_add_(0, top_x, current.to(h.dtype))
        return final.reshape(B, T, D)


def test_mixtral_block_fused():
    torch.manual_seed(2)
    block = MixtralBlock()
    g, _ = fuse(block, torch.randn(1, 9, 16))
    assert g.op_counts().get("moe") == 1 and "index_put" not in g.op_counts()
    (node,) = [n for n in g.nodes if n.op == "moe"]
    assert node.arg("renormalize") is True and node.arg("top_k") == 2 and node.arg("shared_gate") is None
    w_down = g.constants[node.arg("w_down").producer.args["name"]]
    assert torch.equal(w_down, torch.stack([e.w2.weight for e in block.experts]))
    expect_equal_to_eager(g, block, (1, 9, 16))


class OneHotEinsum(SparseMoE):
    """GShard-style dense dispatch: combine weights from a one-hot einsum, every expert on
    every token, stacked, contracted with another einsum."""

    def dispatch_dense(self, h, weights, idx):
        combine = torch.einsum("nk,nke->ne", weights, F.one_hot(idx, self.num_experts).to(h.dtype))
        outs = torch.stack([expert(h) for expert in self.experts], dim=1)
        return torch.einsum("ne,ned->nd", combine, outs)


def test_one_hot_einsum_block_fused():
    torch.manual_seed(5)
    layer = OneHotEinsum(16, 24, 4, 2, 12, impl="dense")
    g, _ = fuse(layer, torch.randn(1, 9, 16))
    assert g.op_counts().get("moe") == 1 and "einsum" not in g.op_counts()
    (node,) = [n for n in g.nodes if n.op == "moe"]
    assert node.arg("shared_gate") is not None and node.arg("renormalize") is False
    expect_equal_to_eager(g, layer, (1, 9, 16))


# -- near misses: not an MoE layer, or not this one ----------------------------------------
class SoftMixture(SparseMoE):
    """Every expert weighted by its full softmax probability: top-k computed, then not used."""

    def dispatch_dense(self, h, weights, idx):
        probs = self.gate(h).softmax(-1)
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            out = out + probs[:, e:e + 1] * expert(h)
        return out


class UnweightedTopK(SparseMoE):
    """Dense dispatch whose combine forgot the router weights: a 0/1 mask of the top-k."""

    def dispatch_dense(self, h, weights, idx):
        mask = torch.zeros(h.shape[0], self.num_experts, dtype=h.dtype).scatter(1, idx, 1.0)
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            out = out + mask[:, e:e + 1] * expert(h)
        return out


class FirstSlotWeight(SparseMoE):
    """Sparse dispatch that weights every routed token by its first choice's weight."""

    def dispatch_sparse(self, h, weights, idx):
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(idx == e)
            out = out.index_add(0, rows, expert(h[rows]) * weights[rows, 0].unsqueeze(-1))
        return out


class ScatterElsewhere(SparseMoE):
    """Gathers the routed rows but adds the results to the tokens in reverse order."""

    def dispatch_sparse(self, h, weights, idx):
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(idx == e)
            out = out.index_add(0, rows.flip(0), expert(h[rows]) * weights[rows, slot].unsqueeze(-1))
        return out


class SkipsAnExpert(SparseMoE):
    def dispatch_sparse(self, h, weights, idx):
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts[:-1]):
            rows, slot = torch.where(idx == e)
            out = out.index_add(0, rows, expert(h[rows]) * weights[rows, slot].unsqueeze(-1))
        return out


@pytest.mark.parametrize("cls,impl,reason", [(SoftMixture, "dense", None),      # top-k unused: no router left
                                             (UnweightedTopK, "dense", "rejected:dispatch"),
                                             (FirstSlotWeight, "sparse", "rejected:dispatch"),
                                             (ScatterElsewhere, "sparse", "rejected:dispatch"),
                                             (SkipsAnExpert, "sparse", "rejected:expert-count")])
def test_near_misses_are_not_fused(cls, impl, reason):
    torch.manual_seed(3)
    layer = cls(16, 24, 4, 2, 0, impl=impl)
    g, stats = fuse(layer, torch.randn(1, 9, 16))
    assert "moe" not in g.op_counts() and (reason is None or stats.get(reason, 0) >= 1), stats
    expect_equal_to_eager(g, layer, (1, 9, 16))


class GatedShared(SparseMoE):
    """Qwen2-MoE's sigmoid-gated shared expert: the routed part is an MoE layer, the
    gated shared expert is not the op's (ungated) shared expert and stays outside."""

    def __init__(self):
        super().__init__(16, 24, 4, 2, 8)
        self.shared_gate = nn.Linear(16, 1, bias=False)

    def forward_with_aux(self, x, impl=None):
        h = x.reshape(-1, x.shape[-1])
        _, weights, idx = self.route(h)
        y = self.dispatch_sparse(h, weights, idx)
        y = y + torch.sigmoid(self.shared_gate(h)) * self.shared_expert(h)
        return y.reshape(x.shape), None


def test_gated_shared_expert_stays_outside():
    torch.manual_seed(4)
    layer = GatedShared()
    g, _ = fuse(layer, torch.randn(1, 9, 16))
    (node,) = [n for n in g.nodes if n.op == "moe"]
    assert node.arg("shared_gate") is None and g.op_counts()["sigmoid"] == 1
    expect_equal_to_eager(g, layer, (1, 9, 16))


def test_option_and_check():
    layer = SparseMoE(16, 24, 4, 2, 0).eval()
    g, stats = fuse(layer, torch.randn(1, 9, 16), "default,fuse-moe{check=false}")
    assert g.op_counts().get("moe") == 1 and stats["fused"] == 1
