"""Straight-through QAT of a spike-coded graph on the torch target: the compiled module's
gradients equal the eager model's with the STE written out by hand (x + (x̂ - x).detach(),
1e-5 relative), and a few AdamW steps on the corpus lower the training loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import spikec.passes
from spikec import models as zoo
from spikec.codegen import get_target
from spikec.frontend import from_torch
from spikec.ir import interpret

torch_target = pytest.importorskip("spikec.codegen.torch", reason="the torch target is not built yet")

PATTERNS = ("q_proj", "k_proj", "v_proj", "o_proj", "gk_proj.0", "gk_proj.1", "gate_proj", "up_proj")


def ste_hooks(model, k=3.0):
    """W8ASpike's QuantLinear input with a hand-written straight-through estimator."""
    def pre(mod, args):
        x = args[0]
        vth = (x.abs().mean(-1, keepdim=True) / k).clamp(1e-5, 1e4)
        xh = (x / vth).round() * vth
        return (x + (xh - x).detach(),)
    return [mod.register_forward_pre_hook(pre) for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and name.endswith(PATTERNS)]


@pytest.fixture(scope="module")
def spiked():
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny", num_hidden_layers=2)
    ids = torch.randint(0, 256, (2, 32))
    g = spikec.passes.run(from_torch(model.eval(), (ids,)), "insert-spike-coding")
    return model, g


def test_compiled_gradients_equal_the_hand_written_ste(spiked):
    model, g = spiked
    mod = get_target("torch").lower(g.copy(), parameters="all")
    ids = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(3))
    tgt = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(4))
    out = mod(ids)
    assert (out - interpret(g, ids)).abs().max().item() < 1e-5
    F.cross_entropy(out.flatten(0, 1), tgt.flatten()).backward()
    hs = ste_hooks(model)
    try:
        model.zero_grad()
        F.cross_entropy(model(ids).flatten(0, 1), tgt.flatten()).backward()
    finally:
        for h in hs:
            h.remove()
    got = dict(mod.named_parameters())
    checked = 0
    for name, p in model.named_parameters():
        a, b = got[name].grad, p.grad
        assert a is not None and b is not None, name
        assert (a - b).norm() <= 1e-5 * (1 + b.norm()), name
        checked += 1
    assert checked == len(list(model.parameters()))
    mod.zero_grad()
    model.zero_grad()


def test_a_few_qat_steps_lower_the_loss(spiked):
    _, g = spiked
    mod = get_target("torch").lower(g.copy(), parameters="all")
    corpus = zoo.build_corpus(max_bytes=200_000)
    gen = torch.Generator().manual_seed(0)
    batches = [zoo.random_batch(corpus["train"], 2, 32, gen) for _ in range(4)]

    def loss_on(bs):
        with torch.no_grad():
            return sum(float(F.cross_entropy(mod(x).flatten(0, 1), y.flatten())) for x, y in bs) / len(bs)

    before = loss_on(batches)
    opt = torch.optim.AdamW(mod.parameters(), lr=3e-3)
    for step in range(12):
        x, y = batches[step % len(batches)]
        loss = F.cross_entropy(mod(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_on(batches)
    assert after < before - 0.3, (before, after)
