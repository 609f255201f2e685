"""Training through the torch target: tiny spikingbrain (GLA written chunked and as
a loop, both fused to linear_attention, SWA fused to sliding_window_attention).

- Gradients of the compiled module's Parameters equal the eager model's:
  max |g_compiled - g_eager| / max |g_eager| <= 1e-4 per parameter (fp32).
- 30 AdamW steps through the compiled module lower the loss, and follow the
  eager model's loss curve within a relative 1e-3.
"""
import os
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikec

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import zoo_graphs  # noqa: E402

GRAD_REL = 1e-4
CURVE_REL = 1e-3
LENGTHS = {"spikingbrain-chunk": 80, "spikingbrain-naive": 12}   # the chunk graph's T is symbolic: two chunks


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def batch(traced, T, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 256, (traced.recipe.batch, T + 1), generator=gen)
    return ids[:, :-1], ids[:, 1:]


def loss_of(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def own_copy(graph):
    """The graph with its own weights, so training it leaves the shared traced model alone."""
    g = graph.copy()
    g.constants = {n: nn.Parameter(t.detach().clone()) if isinstance(t, nn.Parameter) else t.clone()
                   for n, t in g.constants.items()}
    return g


@pytest.mark.parametrize("name", sorted(LENGTHS))
def test_gradients_match_eager(name):
    traced = zoo_graphs.traced(name)
    graph = traced.graphs["fused"]
    assert graph.op_counts().get("linear_attention") == 2
    module = spikec.compile(graph, target="torch", pipeline="").module
    eager = traced.model
    ids, targets = batch(traced, LENGTHS[name], seed=0)

    eager.zero_grad()
    loss_of(eager(ids), targets).backward()
    out = module(ids)
    assert out.requires_grad                                  # outputs carry the graph of the Parameters
    loss_of(out, targets).backward()

    eager_params = dict(eager.named_parameters())
    names = [n for n, _ in module.named_parameters()]
    assert sorted(names) == sorted(eager_params)              # every weight trains, under its eager name
    errs = {n: rel_err(p.grad, eager_params[n].grad) for n, p in module.named_parameters()}
    worst = max(errs, key=errs.get)
    assert errs[worst] <= GRAD_REL, (worst, errs[worst])


@pytest.mark.parametrize("name", sorted(LENGTHS))
def test_adamw_steps_lower_the_loss_like_eager(name):
    traced = zoo_graphs.traced(name)
    module = spikec.compile(own_copy(traced.graphs["fused"]), target="torch", pipeline="").module
    eager = zoo_graphs.zoo.create(traced.recipe.model, "tiny", **dict(traced.recipe.overrides))
    eager.load_state_dict(traced.model.state_dict())
    ids, targets = batch(traced, LENGTHS[name], seed=1)

    def train(model):
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
        losses = []
        for _ in range(30):
            loss = loss_of(model(ids), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    compiled, reference = train(module), train(eager)
    assert compiled[-1] < 0.7 * compiled[0], compiled
    assert max(abs(a - b) / b for a, b in zip(compiled, reference)) <= CURVE_REL, (compiled, reference)
