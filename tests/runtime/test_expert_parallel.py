"""Expert parallelism over torch.distributed: a 2-process and a 4-process gloo run on
localhost (torch.multiprocessing.spawn) of the zoo's spikingbrain_moe (tiny preset, 3 MoE
layers), compiled for the torch target. Each rank runs its own prompt; its logits equal
the one-process eager model's (relative error <= 1e-5, fp32) and its memory holds only
its own experts (parameter counts per rank, and which experts)."""
import os

import pytest
import torch
import torch.multiprocessing as mp

import spikec
import spikec.models as zoo
from spikec.frontend import from_torch
from spikec.runtime.distributed import load_program, parameter_count, save_program
from spikec.runtime.distributed.worker import spawn_entry

TOL = 1e-5
T = 12


@pytest.fixture(scope="module")
def model_and_fused():
    torch.manual_seed(0)
    model = zoo.create("spikingbrain_moe", "tiny").eval()
    g = from_torch(model, (torch.randint(0, 256, (1, T)),))      # static T: every rank runs a length-12 prompt
    return model, spikec.passes.run(g, "default,fuse-moe")


def expected_parameters(model, fused, devices):
    """The one-process graph's tensors (weights, buffers, folded constants) less the
    routed experts a rank does not hold: (E - E/devices) experts per MoE layer."""
    cfg = model.config
    moe_layers = [b.mlp for b in model.model.layers if hasattr(b.mlp, "experts")]
    experts = sum(sum(p.numel() for p in e.parameters()) for m in moe_layers for e in m.experts)
    return parameter_count(fused) - experts + experts * (cfg.num_experts // devices) // cfg.num_experts


@pytest.mark.parametrize("devices", [2, 4])
def test_gloo_ranks_match_one_process(model_and_fused, devices, tmp_path):
    model, fused = model_and_fused
    program = spikec.passes.run(fused, f"partition-moe{{devices={devices}}}")
    save_program(program, str(tmp_path / "prog"))
    prompts = [torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(r)) for r in range(devices)]
    mp.spawn(spawn_entry, nprocs=devices, join=True,
             args=(devices, str(tmp_path / "prog"), [[p] for p in prompts], f"file://{tmp_path}/rendezvous",
                   str(tmp_path), "torch"))
    want_params = expected_parameters(model, fused, devices)
    per_layer = model.config.num_experts // devices
    for r in range(devices):
        res = torch.load(os.path.join(tmp_path, f"rank{r}.pt"))
        with torch.no_grad():
            want = model(prompts[r])
        got = res["outputs"][0]
        assert float((got - want).norm() / want.norm()) <= TOL, r
        assert res["parameters"] == want_params, r
        stacks = {k: v for k, v in res["constants"].items() if k.endswith(".by_device")}
        assert len(stacks) == 3 * 3 and all(s[0] == per_layer for s in stacks.values())   # 3 layers x gate/up/down
        assert len(res["load"]) == 3 and all(sum(rec["expert_counts"]) == T * 2 for rec in res["load"])
    # the rank graph a process loads holds exactly its own experts' rows of the stacked weights
    local = load_program(str(tmp_path / "prog"), devices - 1)
    name = next(k for k in local.constants if k.endswith("w_up.by_device"))
    layer = int(name.split(".")[2])
    experts = model.model.layers[layer].mlp.experts[-per_layer:]
    assert torch.equal(local.constants[name], torch.stack([e.up_proj.weight for e in experts]))
    assert parameter_count(local) == want_params
