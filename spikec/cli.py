"""The `spikec` command line."""
from __future__ import annotations

import argparse
import json
import os
import sys

from spikec import cli_runtime, spike_cli

EPILOG = """MODEL is a zoo name (spikingbrain:tiny), a Python factory (file.py:make returning
(module, example_inputs)) or an .onnx file. Errors print one message; --verbose shows the traceback."""


def _parse_dynamic(items: list[str] | None) -> dict | None:
    from spikec.ir import SpikecError
    if not items:
        return None
    out = {}
    for item in items:
        try:
            name, rng = item.split("=")
            lo, hi = rng.split(":")
            out[name] = (int(lo), int(hi))
        except ValueError:
            raise SpikecError(f"--dynamic expects NAME=LO:HI (e.g. T=2:4096), got {item!r}") from None
        if not name.isidentifier() or not 0 <= out[name][0] <= out[name][1]:
            raise SpikecError(f"--dynamic {item}: give a symbol name and a range 0 <= LO <= HI (e.g. T=2:4096)")
    return out


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", "-p", metavar="PIPELINE", default="",
                   help="passes to run, e.g. 'default,fuse-linear-attention' (see `spikec passes`)")
    p.add_argument("--print-after", action="append", metavar="PASS", default=[],
                   help="print the IR after PASS (repeatable; 'all' for every pass)")
    p.add_argument("--print-after-change", action="store_true", help="print the IR after each pass that changed it")
    p.add_argument("--dump-dir", metavar="DIR", help="write the IR of every stage into DIR")
    p.add_argument("--timing", action="store_true", help="print per-pass wall time and statistics to stderr")
    p.add_argument("--verify-each", action="store_true", help="verify the IR before and after every pass")


def _run_pipeline(g, args):
    """Run args.pipeline on g with the requested instrumentation; returns (graph, nodes_before)."""
    if not args.pipeline:
        return g, None
    from spikec.passes import PassManager
    from spikec.passes.registry import get_pass
    for name in args.print_after:
        if name != "all":
            get_pass(name)          # a misspelt --print-after would otherwise print nothing
    before = sum(1 for _ in g.walk())
    pm = PassManager(args.pipeline, verify_each=args.verify_each or None, print_after=args.print_after,
                     print_after_change=args.print_after_change, dump_dir=args.dump_dir, out=sys.stderr)
    out = pm.run(g)
    if args.timing:
        print(pm.report(), file=sys.stderr)
    return out, before


def _parse_overrides(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            from spikec.ir import SpikecError
            raise SpikecError(f"--config expects KEY=VALUE (e.g. attn_mode=naive), got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value          # a bare string such as naive
    return out


def cmd_passes(args) -> int:
    """List the registered passes, their options and named pipelines."""
    from spikec.passes import available, pipelines
    infos = available()
    width = max(len(p.name) for p in infos)
    print("passes:")
    for p in infos:
        print(f"  {p.name:<{width}}  {p.doc}")
        for o in p.options.values():
            print(f"  {'':<{width}}    {o.name}={o.default!r} ({o.type.__name__})")
    print("named pipelines:")
    for name, (text, doc) in sorted(pipelines().items()):
        print(f"  {name:<{width}}  {doc}\n  {'':<{width}}    = {text}")
    return 0


def cmd_opt(args) -> int:
    """Read IR text, run a pipeline on it, print the result (like mlir-opt)."""
    from spikec import ir
    if args.file == "-":
        text = sys.stdin.read()
    else:
        text = _read_text(args.file, "IR text")
    pipeline = args.pipeline
    if not pipeline:
        for line in text.splitlines():
            if line.strip().startswith("// PIPELINE:"):
                pipeline = line.split(":", 1)[1].strip()   # a reproducer names its pipeline
                break
    args.pipeline = pipeline
    g = ir.parse(text)
    if args.verify:
        ir.verify(g)          # like mlir-opt: a type error in the input is named before any pass runs
    out, _ = _run_pipeline(g, args)
    result = str(out)
    if args.output:
        with open(args.output, "w") as f:
            f.write(result)
    else:
        sys.stdout.write(result)
    return 0


def _read_text(path: str, what: str) -> str:
    from spikec.ir import SpikecError
    if not os.path.exists(path):
        raise SpikecError(f"no such file: {path}")
    if os.path.isdir(path):
        raise SpikecError(f"{path} is a directory, not a file of {what}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise SpikecError(f"{path} is not UTF-8 text (byte {e.start}): not a file of {what}") from None


def _check_sizes(args) -> None:
    from spikec.ir import SpikecError
    for flag in ("seq_len", "batch"):
        if getattr(args, flag) < 1:
            raise SpikecError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")


def cmd_inspect(args) -> int:
    from spikec import ir
    from spikec.model_spec import load
    from spikec.stats import format_stats, human
    _check_sizes(args)
    meta = args.meta or any(args.model.endswith(":" + p) for p in ("1b", "7b", "76b"))
    loaded = load(args.model, seq_len=args.seq_len, batch=args.batch,
                  dynamic=_parse_dynamic(args.dynamic), meta=meta, overrides=_parse_overrides(args.config))
    g = loaded.graph
    if args.verify:
        ir.verify(g)
    g, nodes_before = _run_pipeline(g, args)
    if args.spike_report:
        return spike_cli.print_spike_report(g, loaded, args)
    if args.stats:
        print(f"model: {loaded.description or args.model}" + ("  (meta device: no weights allocated)" if meta else ""))
        if loaded.model is not None:
            try:
                from spikec.models import param_counts
                pc = param_counts(loaded.model)
                print(f"parameters: {pc['total']:,} total ({human(pc['total'])}), "
                      f"{pc['active']:,} active per token ({human(pc['active'])})")
            except ImportError:
                pass
        if nodes_before is not None:
            print(f"pipeline: {args.pipeline}: {nodes_before} -> {sum(1 for _ in g.walk())} nodes")
        print(format_stats(g))
    else:
        text = str(g)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
            print(f"wrote IR text to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    if args.svg:
        from spikec.ir.draw_svg import write_svg
        write_svg(g, args.svg, title=loaded.description or args.model)
        print(f"wrote drawing to {args.svg}", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    """The main job: train (or load) a tiny SpikingBrain, compile it for a target, save the
    artifact, load it and generate text, checking the result against eager PyTorch.
    With --ir: the IR walkthrough (trace, verify, fuse, interpret) instead."""
    if args.ir:
        from spikec.demo_ir import run_ir_demo
        return 0 if run_ir_demo(args.model, args.seq_len, args.pipeline) else 1
    from spikec.demo import run_demo
    return 0 if run_demo(args.target, args.prompt, args.max_new_tokens, args.out_dir, args.train_seconds,
                         args.pipeline) else 1


def build_parser() -> argparse.ArgumentParser:
    from spikec import __version__
    p = argparse.ArgumentParser(prog="spikec", description="spikec: a compiler for brain-inspired language models.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"spikec {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ins = sub.add_parser("inspect", help="trace or import MODEL and print its IR",
                         description="Trace or import MODEL and print its IR text (or statistics, or a drawing).",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ins.add_argument("model", metavar="MODEL")
    ins.add_argument("--stats", action="store_true", help="print parameter and op counts instead of the IR text")
    ins.add_argument("--svg", metavar="FILE", help="also draw the graph as SVG into FILE")
    ins.add_argument("-o", "--output", metavar="FILE", help="write the IR text to FILE instead of stdout")
    ins.add_argument("--seq-len", type=int, default=16, help="sequence length of the example input (default 16)")
    ins.add_argument("--batch", type=int, default=1, help="batch size of the example input (default 1)")
    ins.add_argument("--dynamic", action="append", metavar="NAME=LO:HI",
                     help="keep the sequence axis symbolic, e.g. T=2:4096 (repeatable)")
    ins.add_argument("--config", action="append", metavar="KEY=VALUE",
                     help="override a zoo model's config field, e.g. attn_mode=naive (repeatable)")
    ins.add_argument("--meta", action="store_true",
                     help="build the model on the meta device (no weights; automatic for 1b/7b/76b presets)")
    ins.add_argument("--no-verify", dest="verify", action="store_false", help="skip the IR verifier")
    _add_pipeline_args(ins)
    spike_cli.add_inspect_args(ins)
    ins.set_defaults(func=cmd_inspect)
    spike_cli.add_calibrate_command(sub, _add_pipeline_args)

    ps = sub.add_parser("passes", help="list passes, their options and named pipelines",
                        description=cmd_passes.__doc__)
    ps.set_defaults(func=cmd_passes)

    opt = sub.add_parser("opt", help="run a pipeline on IR text (e.g. a reproducer)", description=cmd_opt.__doc__)
    opt.add_argument("file", metavar="FILE", help="IR text file, or - for stdin")
    opt.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE instead of stdout")
    opt.add_argument("--no-verify", dest="verify", action="store_false", help="skip verifying the input IR")
    _add_pipeline_args(opt)
    opt.set_defaults(func=cmd_opt)

    cli_runtime.add_commands(sub, _add_pipeline_args)

    demo = sub.add_parser("demo", help="train, compile, save, load and run the default tiny model",
                          description=cmd_demo.__doc__)
    demo.add_argument("--target", default="cpu", help="codegen target (default cpu: TVM llvm; `spikec targets` lists the others)")
    demo.add_argument("--prompt", default="def ", help="text to continue")
    demo.add_argument("--max-new-tokens", type=int, default=80)
    demo.add_argument("--out-dir", default="demo-out", help="checkpoint and artifact directory (default demo-out)")
    demo.add_argument("--train-seconds", type=float, default=60.0, help="training budget without a checkpoint")
    demo.add_argument("--ir", action="store_true", help="the IR walkthrough instead (trace, fuse, interpret)")
    demo.add_argument("--model", default="spikingbrain:tiny", help="zoo model of the IR walkthrough")
    demo.add_argument("--seq-len", type=int, default=40, help="sequence length of the IR walkthrough")
    demo.add_argument("--pipeline", default="default,fuse-linear-attention,fuse-attention",
                      help="passes to run")
    demo.set_defaults(func=cmd_demo)
    return p


def one_line(e) -> str:
    """A SpikecError as one line: message (at where; hint: hint), inner line breaks folded."""
    fold = lambda text: " ".join(str(text).split())  # noqa: E731
    where, hint = getattr(e, "where", None), getattr(e, "hint", None)
    extra = "; ".join(x for x in ((f"at {fold(where)}" if where else ""), (f"hint: {fold(hint)}" if hint else "")) if x)
    return fold(getattr(e, "message", None) or e) + (f" ({extra})" if extra else "")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    verbose = args.verbose or os.environ.get("SPIKEC_LOG", "").lower() == "debug"
    from spikec.ir import SpikecError
    try:
        return args.func(args)
    except SpikecError as e:
        if verbose:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:            # a path the user gave: missing folder, no permission, disk full
        if verbose:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
