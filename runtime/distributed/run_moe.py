"""Compile an MoE model for N devices, then run it expert-parallel with torchrun.

    python -m spikec.runtime.distributed.run_moe compile --model spikingbrain_moe:tiny --devices 2 --out out/moe2
    torchrun --nproc_per_node 2 -m spikec.runtime.distributed.run_moe run --program out/moe2 --prompt-len 16 --check

`compile` traces the model, runs `default,fuse-moe,partition-moe{devices=N,...}` and
writes out/moe2/program (the SPMD graph, expert weights stacked per device) and
out/moe2/reference (the same model unpartitioned, for --check). `run` is one rank: it
loads only its experts, runs its own prompt (seed + rank, or row `rank` of --inputs),
and rank 0 prints every rank's result, its kept parameters and the expert load. The
same command runs across machines (torchrun --nnodes ... --rdzv-endpoint ...).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch


def compile_program(model_spec: str, devices: int, out: str, *, capacity_factor: str = "dropless",
                    placement: str = "contiguous", replicate: str = "", seq_len: int = 16, seed: int = 0,
                    checkpoint: str | None = None) -> dict:
    import spikec
    import spikec.models as zoo
    from spikec.frontend import from_torch

    from .program import save_program

    torch.manual_seed(seed)
    model = zoo.from_pretrained(checkpoint) if checkpoint else zoo.create(*zoo.parse_spec(model_spec))
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (1, seq_len))
    graph = from_torch(model, (ids,), dynamic={"T": (2, 4096)})
    fused = spikec.passes.run(graph, "default,fuse-moe")
    opts = f"devices={devices},capacity_factor={capacity_factor},placement={placement}"
    if replicate:
        opts += f",replicate={replicate}"
    program = spikec.passes.run(fused, f"partition-moe{{{opts}}}")
    save_program(program, os.path.join(out, "program"))
    save_program(fused, os.path.join(out, "reference"))
    info = {"model": model_spec, "devices": devices, "moe_layers": fused.op_counts().get("moe", 0),
            "vocab_size": model.config.vocab_size}
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    return info


def _inputs(args, rank: int, vocab: int) -> torch.Tensor:
    if args.inputs:
        return torch.load(args.inputs)[rank:rank + 1]
    g = torch.Generator().manual_seed(args.seed + rank)
    return torch.randint(0, vocab, (1, args.prompt_len), generator=g)


def run_main(args) -> int:
    import torch.distributed as dist

    from .program import load_program
    from .worker import executor, run_rank

    root = args.program
    with open(os.path.join(root, "info.json")) as f:
        info = json.load(f)
    rank = int(os.environ.get("RANK", 0))
    ids = _inputs(args, rank, info["vocab_size"])
    res = run_rank(os.path.join(root, "program"), [ids], target=args.target)
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {"rank": res.rank, "ids": ids, "logits": res.outputs[0],
                                      "parameters": res.parameters, "load": res.load})
    if rank == 0:
        worst = 0.0
        ref = executor(load_program(os.path.join(root, "reference")), args.target) if args.check else None
        for r in gathered:
            line = f"rank {r['rank']}: logits {tuple(r['logits'].shape)}, parameters kept {r['parameters']:,}"
            if ref is not None:
                with torch.no_grad():
                    want = ref(r["ids"])
                want = want[0] if isinstance(want, (list, tuple)) else want
                err = float((r["logits"] - want).norm() / want.norm())
                worst = max(worst, err)
                line += f", rel. error vs one process {err:.2e}"
            print(line)
            for rec in r["load"]:
                print(f"    {rec['layer']}: tokens {rec['tokens']}, per expert {rec['expert_counts']}, "
                      f"dropped {rec['dropped']}")
        if args.out:
            torch.save(gathered, args.out)
        if ref is not None and worst > args.tolerance:
            print(f"FAILED: relative error {worst:.2e} > {args.tolerance}", file=sys.stderr)
            dist.destroy_process_group()
            return 1
    dist.destroy_process_group()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m spikec.runtime.distributed.run_moe", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="trace, fuse and partition a zoo model for N devices")
    c.add_argument("--model", default="spikingbrain_moe:tiny")
    c.add_argument("--checkpoint", help="a from_pretrained directory instead of a fresh model")
    c.add_argument("--devices", type=int, required=True)
    c.add_argument("--capacity-factor", default="dropless")
    c.add_argument("--placement", default="contiguous")
    c.add_argument("--replicate", default="", help="hot experts copied to every device, e.g. 3|5")
    c.add_argument("--seq-len", type=int, default=16, help="length of the example used for tracing")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True)
    r = sub.add_parser("run", help="one rank (launch with torchrun --nproc_per_node N)")
    r.add_argument("--program", required=True, help="the --out directory of compile")
    r.add_argument("--prompt-len", type=int, default=16)
    r.add_argument("--inputs", help="a .pt tensor of token ids [N, T]; rank r runs row r")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--target", default="torch", help="a spikec target, or 'interpret'")
    r.add_argument("--check", action="store_true", help="rank 0 compares every rank with the unpartitioned model")
    r.add_argument("--tolerance", type=float, default=1e-4)
    r.add_argument("--out", help="rank 0 saves every rank's ids, logits and load here")
    args = p.parse_args(argv)
    if args.cmd == "compile":
        info = compile_program(args.model, args.devices, args.out, capacity_factor=args.capacity_factor,
                               placement=args.placement, replicate=args.replicate, seq_len=args.seq_len,
                               seed=args.seed, checkpoint=args.checkpoint)
        print(f"wrote {args.out}: {info['moe_layers']} MoE layer(s) partitioned over {args.devices} device(s)")
        return 0
    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
