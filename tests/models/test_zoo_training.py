"""Training on the stdlib corpus: the tiny SpikingBrain learns (validation loss falls by >= 30%
in a short run; bench/train_tiny.py records the full 300-step run), and every model trains."""
import math

import pytest
import torch

import spikec.models as zoo


@pytest.fixture(scope="module")
def corpus():
    return zoo.build_corpus(max_bytes=600_000)


def test_tiny_spikingbrain_validation_loss_drops(corpus):
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny")
    r = zoo.train_eager(model, corpus, steps=40, batch_size=8, seq_len=64, eval_every=20,
                        eval_batches=4, progress=False)
    assert r.initial_val_loss > 5.0          # ~ln(260) at init
    assert r.final_val_loss <= 0.7 * r.initial_val_loss
    assert r.tokens == 40 * 8 * 64 and [h["step"] for h in r.history] == [0, 20, 40]


@pytest.mark.parametrize("name", ["spikingbrain_moe", "spikegpt", "transformer"])
def test_other_models_train(name, corpus):
    torch.manual_seed(0)
    model = zoo.create(name, "tiny", num_hidden_layers=2) if name != "spikingbrain_moe" else zoo.create(name, "tiny")
    r = zoo.train_eager(model, corpus, steps=8, batch_size=4, seq_len=32, eval_every=8,
                        eval_batches=2, progress=False)
    assert math.isfinite(r.final_val_loss) and r.final_val_loss < r.initial_val_loss


def test_spikegpt_surrogate_gradients_reach_embeddings():
    model = zoo.create("spikegpt", "tiny", num_hidden_layers=2)
    ids = torch.randint(0, 256, (2, 12))
    loss, _ = model.loss(ids, ids)
    loss.backward()
    assert float(model.emb.weight.grad.abs().sum()) > 0       # through the binarised embedding
    assert float(model.blocks[0].att.key.weight.grad.abs().sum()) > 0   # through the LIF neurons


def test_cosine_schedule_shape():
    from spikec.models.training import cosine_schedule
    assert cosine_schedule(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_schedule(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_schedule(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_schedule(100, 100, 10, 0.1) == pytest.approx(0.1)
