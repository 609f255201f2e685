"""torch.export of the default forward (no cache): static T for every model, dynamic T for the
chunked / mask-only paths. The exported program must reproduce the eager logits."""
import warnings

import pytest
import torch

import spikec.models as zoo

warnings.filterwarnings("ignore", category=UserWarning)

STATIC = [("spikingbrain", {"attn_mode": "naive"}), ("spikingbrain", {"attn_mode": "chunk"}),
          ("spikingbrain_moe", {"attn_mode": "naive"}), ("spikingbrain_moe", {"attn_mode": "chunk"}),
          ("spikegpt", {}), ("transformer", {})]
DYNAMIC = [("spikingbrain", {"attn_mode": "chunk"}), ("spikingbrain_moe", {"attn_mode": "chunk"}),
           ("transformer", {})]


@pytest.mark.parametrize("name,overrides", STATIC)
def test_static_export(name, overrides):
    torch.manual_seed(0)
    model = zoo.create(name, "tiny", num_hidden_layers=2 if name != "spikingbrain_moe" else 4, **overrides).eval()
    ids = torch.randint(0, 256, (2, 6))
    ep = torch.export.export(model, (ids,))
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(ids), model(ids), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,overrides", DYNAMIC)
def test_dynamic_sequence_length_export(name, overrides):
    torch.manual_seed(0)
    model = zoo.create(name, "tiny", **overrides).eval()
    T = torch.export.Dim("T", min=2, max=4096)
    ep = torch.export.export(model, (torch.randint(0, 256, (2, 24)),), dynamic_shapes=({1: T},))
    for length in (2, 17, 40):      # below, at odd offsets from, and above the chunk size
        ids = torch.randint(0, 256, (2, length))
        with torch.no_grad():
            torch.testing.assert_close(ep.module()(ids), model(ids), rtol=1e-5, atol=1e-5)
