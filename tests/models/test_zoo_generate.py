"""Generation: decoding with the explicit cache gives the same greedy tokens as recomputing
the whole prefix each step, for every model (windows small enough that the SWA ring wraps),
and the cached logits match the full forward (relative error <= 1e-4)."""
import pytest
import torch

import spikec.models as zoo
from spikec.models.generation import filter_logits

CASES = [
    ("spikingbrain", dict(sliding_window=6, attn_mode="chunk")),
    ("spikingbrain", dict(sliding_window=6, attn_mode="naive")),
    ("spikingbrain_moe", dict(sliding_window=6)),
    ("spikegpt", {}),
    ("transformer", {}),
]


def rel_err(a, b):
    return float(((a - b).norm() / b.norm().clamp_min(1e-30)).detach())


def sharpen(model):
    # random-init logits are nearly flat; scale the head so argmax is not decided by rounding
    with torch.no_grad():
        model.output_embeddings().weight.mul_(20)
    return model


@pytest.mark.parametrize("name,overrides", CASES)
def test_greedy_cached_equals_recompute(name, overrides):
    torch.manual_seed(0)
    model = sharpen(zoo.create(name, "tiny", **overrides)).eval()
    prompt = torch.randint(0, 256, (2, 5))
    cached = model.generate(prompt, 16)
    recomputed = model.generate(prompt, 16, use_cache=False)
    assert cached.shape == (2, 21)
    assert torch.equal(cached, recomputed)
    with torch.no_grad():   # the logits along the way agree too
        full = model(cached)
        lp, cache = model.prefill(cached[:, :5])
        ls, _ = model.step(cached[:, 5:], cache)
    assert rel_err(torch.cat([lp, ls], 1), full) <= 1e-4


def test_sampling_options():
    torch.manual_seed(0)
    model = zoo.create("transformer", "tiny").eval()
    prompt = torch.randint(0, 256, (3, 4))
    greedy = model.generate(prompt, 6)
    assert torch.equal(model.generate(prompt, 6, do_sample=True, top_k=1), greedy)
    a = model.generate(prompt, 6, do_sample=True, temperature=0.8, top_p=0.9,
                       generator=torch.Generator().manual_seed(1))
    b = model.generate(prompt, 6, do_sample=True, temperature=0.8, top_p=0.9,
                       generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (3, 10)


def test_filter_logits():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda x: torch.isfinite(x).flatten().tolist()
    assert kept(filter_logits(logits, top_k=2)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.75)) == [True, True, False, False]   # 0.5 < 0.75 <= 0.8
    assert kept(filter_logits(logits, top_p=0.8)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.81)) == [True, True, True, False]
    assert kept(filter_logits(logits, top_p=0.1)) == [True, False, False, False]


def test_eos_stops_and_pads():
    torch.manual_seed(0)
    model = zoo.create("transformer", "tiny").eval()
    prompt = torch.randint(0, 256, (1, 3))
    first = int(model.generate(prompt, 1)[0, -1])
    out = model.generate(prompt, 10, eos_token_id=first)
    assert out.shape == (1, 4) and int(out[0, -1]) == first
