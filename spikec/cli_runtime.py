"""CLI commands around compiled artifacts: `compile`, `run`, `train`, `targets`."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

EXAMPLES = """examples:
  spikec compile spikingbrain:tiny --target torch -o out/sb.spk
  spikec compile ckpt/ --target cpu --pipeline default,fuse-linear-attention,fuse-attention -o out/sb.spk
  spikec run out/sb.spk --prompt "def main(" --max-new-tokens 64
  spikec train spikingbrain:tiny --data file1.py file2.txt --steps 300 --ckpt-dir runs/1
"""


def _zoo_model(spec: str, overrides: dict, checkpoint: str | None = None):
    """(model, tokenizer) from a zoo spec `name:preset` or a saved checkpoint directory."""
    import spikec.models as zoo
    from spikec.ir import FrontendError
    if os.path.isdir(spec):
        if overrides:
            raise FrontendError(f"--config overrides apply to zoo names, not to the checkpoint {spec}",
                                hint="edit its config.json instead")
        try:
            model = zoo.from_pretrained(spec)
        except (zoo.ConfigError, zoo.CheckpointError, OSError) as e:
            raise FrontendError(f"cannot load the checkpoint {spec}: {e}") from e
        return model.eval(), load_tokenizer_from(spec, FrontendError)
    name, _, preset = spec.partition(":")
    if name not in zoo.names():
        raise FrontendError(f"unknown model {spec!r}: give a zoo name ({', '.join(zoo.names())}) "
                            f"with an optional :preset, or a checkpoint directory")
    try:
        model = zoo.create(name, preset or "tiny", **overrides)
    except KeyError as e:               # unknown preset
        raise FrontendError(str(e.args[0]) if e.args else f"unknown preset in {spec!r}") from None
    except zoo.ConfigError as e:
        raise FrontendError(f"bad config for {spec}: {e}") from e
    return model.eval(), zoo.ByteTokenizer()


def load_tokenizer_from(directory: str, error: type):
    """The tokenizer saved in `directory` (tokenizer.json, else bytes); a damaged file raises `error`."""
    import spikec.models as zoo
    try:
        return zoo.load_tokenizer(directory)
    except Exception as e:          # the tokenizers library reports a bad file as a bare Exception
        raise error(f"cannot read the tokenizer in {directory}: {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}") from e


def _tokenizer_files(tok) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        tok.save(d)
        out = {}
        for n in os.listdir(d):
            with open(os.path.join(d, n), "rb") as f:
                out[f"tokenizer/{n}"] = f.read()
        return out


def compile_zoo(spec: str, target: str, pipeline: str, overrides: dict | None = None, progress: bool = True,
                max_len: int = 65536):
    """Compile a zoo model / checkpoint into an Artifact with its tokenizer attached."""
    import spikec
    model, tok = _zoo_model(spec, overrides or {})
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=6, desc="compile", unit="stage", dynamic_ncols=True, file=sys.stderr)

    def stage(msg: str) -> None:
        if bar is not None:
            bar.set_description(msg[:60])
            bar.update(1)
    art = spikec.compile(model, target=target, pipeline=pipeline, progress=stage, max_len=max_len)
    if bar is not None:
        bar.close()
    art.extra_files.update(_tokenizer_files(tok))
    art.meta["source"] = spec
    return art


def cmd_compile(args) -> int:
    """Compile MODEL (a zoo name like spikingbrain:tiny, or a checkpoint directory) for a target
    and save the artifact directory."""
    from spikec.cli import _parse_overrides
    from spikec.ir import SpikecError
    if args.max_len < 2:
        raise SpikecError(f"--max-len must be >= 2 (a prompt and one new token), got {args.max_len}")
    t0 = time.perf_counter()
    art = compile_zoo(args.model, args.target, args.pipeline, _parse_overrides(args.config), not args.quiet,
                      args.max_len)
    path = art.save(args.output)
    secs = art.meta.get("compile_seconds", {})
    print(f"compiled {args.model} for {art.target} in {time.perf_counter() - t0:.1f}s -> {path}")
    for k, v in secs.items():
        print(f"  {k:<24} {v:8.2f}s")
    return 0


def _load_tokenizer(path: str):
    from spikec.runtime import ArtifactError
    from spikec.runtime.artifact_io import extra_file
    return load_tokenizer_from(extra_file(path, "tokenizer"), ArtifactError)


def _check_sampling(args) -> None:
    """Refuse sampling settings that have no meaning, before the artifact is loaded."""
    from spikec.ir import SpikecError
    import math
    if args.max_new_tokens < 0:
        raise SpikecError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise SpikecError(f"--temperature must be a finite number >= 0 (0 = greedy), got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise SpikecError(f"--top-k must be >= 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise SpikecError(f"--top-p must be in (0, 1], got {args.top_p}")


def cmd_run(args) -> int:
    """Load a compiled artifact and continue a prompt, streaming the tokens as they come."""
    import spikec
    _check_sampling(args)
    sess = spikec.load(args.artifact)
    tok = _load_tokenizer(args.artifact)
    ids = tok.encode(args.prompt)
    if not ids:
        ids = [tok.eos_token_id]
    t0 = time.perf_counter()
    import torch
    stream = sess.generate(torch.tensor([ids]), args.max_new_tokens, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, stop=tok.eos_token_id, seed=args.seed, stream=True)
    out: list[int] = []
    printed = ""
    sys.stdout.write(args.prompt)
    first = None
    for t in stream:
        if first is None:
            first = time.perf_counter() - t0
        out.append(int(t[0]))
        text = tok.decode(out)
        sys.stdout.write(text[len(printed):])
        sys.stdout.flush()
        printed = text
    total = time.perf_counter() - t0
    n = len(out)
    print()
    if not args.quiet:
        rate = (n - 1) / (total - first) if n > 1 and first is not None and total > first else float("nan")
        print(f"[{sess.target}] prompt {len(ids)} tokens, {n} new; first token {first or 0:.3f}s, "
              f"decode {rate:.1f} tok/s", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    """Train MODEL (zoo name or checkpoint directory) compiled for the torch target on text files,
    with checkpoints that resume exactly."""
    import torch

    import spikec
    from spikec.cli import _parse_overrides
    from spikec.runtime.trainer import TrainConfig, Trainer
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
                      warmup_steps=args.warmup, grad_accum=args.grad_accum, precision=args.precision,
                      ckpt_every=args.ckpt_every, seed=args.seed)
    cfg.validate()                  # before the model is loaded or compiled
    is_artifact = os.path.exists(os.path.join(args.model, "manifest.json"))
    model = None
    if is_artifact:
        from spikec.runtime import load_artifact
        art = load_artifact(args.model)
        tok = _load_tokenizer(args.model)
    else:
        model, tok = _zoo_model(args.model, _parse_overrides(args.config))
    data = []
    for path in args.data or []:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                data += tok.encode(f.read(), add_eos=True)
        except OSError as e:
            from spikec.ir import SpikecError
            raise SpikecError(f"cannot read training data {path}: {e.strerror}") from e
    if not args.data:
        import spikec.models as zoo
        data = zoo.build_corpus(max_bytes=args.corpus_bytes, tokenizer=tok)["train"].tolist()
    torch.manual_seed(args.seed)
    if not is_artifact:
        art = spikec.compile(model, (torch.zeros(1, 16, dtype=torch.long),), target=args.target,
                             pipeline=args.pipeline, dynamic={"T": (2, 65536)})
    module = art.module
    if not any(p.requires_grad for p in getattr(module, "parameters", lambda: [])()):
        from spikec.ir import SpikecError
        raise SpikecError(f"target {args.target!r} has no trainable module; train with --target torch")
    if args.dist:
        import torch.distributed as dist
        dist.init_process_group("gloo")
    vocab = art.meta.get("vocab_size") or getattr(getattr(model, "config", None), "vocab_size", None)
    losses = Trainer(module, torch.tensor(data), cfg, ckpt_dir=args.ckpt_dir, progress=not args.quiet,
                     vocab_size=vocab).fit()
    if not args.quiet:
        print(f"trained {len(losses)} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0


BENCHES = ("kernels", "prefill", "decode", "train", "compile", "spike", "moe")


def _bench_dir() -> str:
    # bench/ lives in the source tree next to the package folders (editable installs);
    # it is not part of a wheel.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    d = os.path.join(here, "bench")
    if not os.path.isdir(d):
        from spikec.ir import SpikecError
        raise SpikecError(f"the benchmark scripts are not installed (looked for {d})",
                          hint="run from a source checkout: git clone ... && make bench")
    return d


def cmd_bench(args) -> int:
    """Run benchmark scripts from bench/ (each prints a table and writes JSON + PNG under
    bench/results/). NAME is one of the scripts or `all`."""
    import subprocess
    d = _bench_dir()
    names = [n for n in BENCHES if os.path.exists(os.path.join(d, f"{n}.py"))] if args.name == "all" else [args.name]
    flags = ["--quick"] if args.quick else ["--smoke"] if args.smoke else []
    # One process per benchmark: no thread pool (TVM, onnxruntime, OpenMP) left over from one
    # benchmark competes with the next; idle workers sleep instead of spinning (on 2 shared
    # cores a spinning pool made torch rows up to 10x slower). Both settings are overridable.
    env = {**os.environ}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
    failed = []
    for n in names:
        path = os.path.join(d, f"{n}.py")
        if not os.path.exists(path):
            from spikec.ir import SpikecError
            raise SpikecError(f"no benchmark {n!r}; available: {', '.join(BENCHES)} or all")
        print(f"== bench {n} {' '.join(flags)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, path, *flags, *args.extra], env=env)
        if rc != 0:                  # one broken benchmark must not hide the others
            print(f"bench {n} failed (exit code {rc})", file=sys.stderr)
            failed.append(n)
        print(f"== bench {n}: {time.perf_counter() - t0:.1f}s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_targets(args) -> int:
    """List the codegen targets, whether they run on this machine, and the ops each lowers natively."""
    from spikec.codegen import describe_targets
    print(describe_targets(args.ops))
    return 0


def add_commands(sub, add_pipeline_args) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    c = sub.add_parser("compile", help="compile a model for a target and save the artifact",
                       description=cmd_compile.__doc__, epilog=EXAMPLES, formatter_class=fmt)
    c.add_argument("model", metavar="MODEL", help="zoo name[:preset] (e.g. spikingbrain:tiny) or checkpoint directory")
    c.add_argument("--target", default="torch", help="codegen target (see `spikec targets`; default torch)")
    c.add_argument("--pipeline", default="default,fuse-linear-attention,fuse-attention",
                   help="pass pipeline (default: default,fuse-linear-attention,fuse-attention)")
    c.add_argument("--config", action="append", metavar="KEY=VALUE", help="override a zoo config field (repeatable)")
    c.add_argument("--max-len", type=int, default=65536, help="longest sequence the artifact accepts (default 65536)")
    c.add_argument("-o", "--output", required=True, metavar="DIR", help="artifact directory to write")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_compile)

    r = sub.add_parser("run", help="generate text with a compiled artifact", description=cmd_run.__doc__,
                       epilog=EXAMPLES, formatter_class=fmt)
    r.add_argument("artifact", metavar="DIR")
    r.add_argument("--prompt", required=True, help="text to continue")
    r.add_argument("--max-new-tokens", type=int, default=64)
    r.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    r.add_argument("--top-k", type=int, default=None)
    r.add_argument("--top-p", type=float, default=None)
    r.add_argument("--seed", type=int, default=None, help="sampling seed")
    r.add_argument("-q", "--quiet", action="store_true", help="no timing line")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("train", help="train a model through the torch target, with exact resume",
                       description=cmd_train.__doc__, epilog=EXAMPLES, formatter_class=fmt)
    t.add_argument("model", metavar="MODEL",
                   help="zoo name[:preset], checkpoint directory, or compiled artifact directory (torch target)")
    t.add_argument("--data", nargs="+", metavar="FILE", help="text files to train on (default: a Python-stdlib corpus)")
    t.add_argument("--corpus-bytes", type=int, default=2_000_000, help="size of the default corpus")
    t.add_argument("--target", default="torch")
    t.add_argument("--pipeline", default="default,fuse-linear-attention,fuse-attention")
    t.add_argument("--config", action="append", metavar="KEY=VALUE")
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--seq-len", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--warmup", type=int, default=20)
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    t.add_argument("--ckpt-every", type=int, default=50)
    t.add_argument("--ckpt-dir", default=None, help="checkpoint directory; an existing checkpoint is resumed")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dist", action="store_true", help="data parallel under torchrun (gloo)")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="run the benchmarks (tables, JSON and PNG under bench/results/)",
                       description=cmd_bench.__doc__)
    b.add_argument("name", metavar="NAME", help=f"one of {', '.join(BENCHES)}, or all")
    size = b.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the sizes `make bench` uses")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, to check the scripts run")
    b.add_argument("extra", nargs=argparse.REMAINDER, help="further arguments for the script")
    b.set_defaults(func=cmd_bench)

    g = sub.add_parser("targets", help="list codegen targets and the ops they lower natively",
                       description=cmd_targets.__doc__)
    g.add_argument("--ops", action="store_true", help="list every native op, not only the fused ones")
    g.set_defaults(func=cmd_targets)
