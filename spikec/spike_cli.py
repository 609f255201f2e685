"""The spike-coding pieces of the command line.

    spikec calibrate spikingbrain:tiny --sparsity 0.7 -o calib.json
    spikec inspect spikingbrain:tiny -p insert-spike-coding{calibration=calib.json} --spike-report --spike-json r.json

Sample text: `--text FILE` (tokenised with the model's byte tokenizer), else the validation
split of the zoo corpus (Python stdlib sources). A model given as a checkpoint directory
(`save_pretrained` output) is loaded with `spikec.models.from_pretrained` and traced.
"""
from __future__ import annotations

import argparse
import os
import sys


def _add_sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=int, default=4, help="number of sample windows of text (default 4)")
    p.add_argument("--text", metavar="FILE", help="sample text (default: the zoo corpus validation split)")


def add_inspect_args(p: argparse.ArgumentParser) -> None:
    """`spikec inspect ... --spike-report`: measure the spike coding the pipeline inserted."""
    p.add_argument("--spike-report", action="store_true",
                   help="run sample text through the spike-coded graph and print sparsity, time steps and energy")
    p.add_argument("--spike-json", metavar="FILE", help="with --spike-report: also write the report as JSON")
    p.add_argument("--spike-coding", default=None, choices=("binary", "ternary", "bitwise"),
                   help="coding to summarise (default: the pipeline's, else bitwise)")
    _add_sample_args(p)


def add_calibrate_command(sub, add_pipeline_args) -> None:
    c = sub.add_parser("calibrate", help="pick k per spiked projection for a target sparsity or maximum error",
                       description=cmd_calibrate.__doc__)
    c.add_argument("model", metavar="MODEL", help="zoo name (spikingbrain:tiny), factory file.py:make, "
                                                  "or a checkpoint directory")
    c.add_argument("--sparsity", type=float, help="target 3-step-window sparsity per projection, e.g. 0.7")
    c.add_argument("--max-error", type=float, help="largest relative output error per projection, e.g. 0.05")
    c.add_argument("--targets", default="default", help="projection patterns (default: W8ASpike's set; 'all')")
    c.add_argument("--candidates", default=None, help="k values to try, comma separated (default 1..8)")
    c.add_argument("--seq-len", type=int, default=128, help="tokens per sample window (default 128)")
    c.add_argument("--batch", type=int, default=1, help="windows per sample (default 1)")
    c.add_argument("--config", action="append", metavar="KEY=VALUE", help="override a zoo model's config field")
    c.add_argument("-o", "--output", metavar="FILE", help="write the calibration JSON (for "
                                                         "insert-spike-coding{calibration=FILE})")
    _add_sample_args(c)
    add_pipeline_args(c)
    c.set_defaults(func=cmd_calibrate)


def load_model(spec: str, *, seq_len: int, batch: int, overrides: dict | None = None):
    """model_spec.load, plus checkpoint directories."""
    import torch
    from spikec.model_spec import Loaded, load
    if os.path.isdir(spec) and os.path.exists(os.path.join(spec, "config.json")):
        from spikec import models
        from spikec.frontend import from_torch
        model = models.from_pretrained(spec).eval()
        ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(0))
        return Loaded(from_torch(model, (ids,)), model, (ids,), spec)
    return load(spec, seq_len=seq_len, batch=batch, overrides=overrides or {})


def sample_inputs(graph, loaded, *, samples: int, text: str | None = None) -> list[tuple]:
    """Windows of token ids shaped like the graph's one integer input; otherwise the
    loaded example inputs (a model that does not read tokens)."""
    import torch
    ins = graph.inputs
    if len(ins) != 1 or not ins[0].type.dtype.startswith("i") or ins[0].type.rank != 2:
        if loaded is None or loaded.inputs is None:
            from spikec.ir import FrontendError
            raise FrontendError("the spike report needs sample inputs: the model reads no token ids and has no "
                                "example inputs")
        return [tuple(loaded.inputs)]
    B, T = ins[0].type.shape
    B = B if isinstance(B, int) else 1
    T = T if isinstance(T, int) else 128
    from spikec import models
    if text:
        with open(text, encoding="utf-8") as f:
            ids = torch.tensor(models.ByteTokenizer().encode(f.read()), dtype=torch.long)
    else:
        ids = models.build_corpus(max_bytes=1_000_000)["val"]
    need = B * T
    if ids.numel() < need:
        raise SystemExit(f"error: the sample text has {ids.numel()} tokens, a sample needs {need}")
    stride = max((ids.numel() - need) // max(samples, 1), 1)
    return [(ids[i * stride:i * stride + need].view(B, T),) for i in range(samples)]


def _pipeline_coding(pipeline: str) -> str:
    from spikec.passes import parse_pipeline
    for step in parse_pipeline(pipeline or ""):
        if step.name == "insert-spike-coding":
            return step.options.get("coding", "bitwise")
    return "bitwise"


def print_spike_report(g, loaded, args) -> int:
    from spikec.passes.spike_report import spike_report
    coding = args.spike_coding or _pipeline_coding(args.pipeline)
    rep = spike_report(g, sample_inputs(g, loaded, samples=args.samples, text=args.text), coding=coding)
    print(rep.format())
    if args.spike_json:
        rep.save(args.spike_json)
        print(f"wrote spike report to {args.spike_json}", file=sys.stderr)
    return 0


def cmd_calibrate(args) -> int:
    """Run sample text through MODEL and pick k per spike-coded projection: the k whose
    3-step-window sparsity reaches --sparsity with the least error, or the sparsest k whose
    relative output error stays under --max-error. Writes JSON that
    insert-spike-coding{calibration=FILE} reads."""
    from spikec.cli import _parse_overrides, _run_pipeline
    from spikec.passes.spike_calibration import DEFAULT_KS, calibrate
    if args.sparsity is None and args.max_error is None:
        raise SystemExit("error: give --sparsity and/or --max-error")
    loaded = load_model(args.model, seq_len=args.seq_len, batch=args.batch, overrides=_parse_overrides(args.config))
    g, _ = _run_pipeline(loaded.graph, args)
    ks = tuple(float(k) for k in args.candidates.split(",")) if args.candidates else DEFAULT_KS
    cal = calibrate(g, sample_inputs(g, loaded, samples=args.samples, text=args.text), targets=args.targets,
                    sparsity=args.sparsity, max_error=args.max_error, candidates=ks)
    print(cal.format())
    if args.output:
        cal.save(args.output)
        print(f"wrote calibration to {args.output}", file=sys.stderr)
    return 0
