"""`spikec demo` (and `make demo`): the main job, end to end.

1. a trained tiny SpikingBrain: loaded from demo-out/ckpt, or trained for about
   a minute on a Python-stdlib corpus when there is none;
2. spikec.compile for the target (cpu, through TVM, by default): capture forward /
   prefill / decode with torch.export, fuse, lower; save the artifact;
3. load the artifact (versions and hashes checked) and generate text from a
   prompt, streaming, with time to first token and decode tokens/s;
4. check: the compiled forward equals eager PyTorch, and greedy tokens equal the
   eager model's generate.
"""
from __future__ import annotations

import os
import sys
import time

import torch


class _Clock:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)


def _trained_model(ckpt: str, train_seconds: float, step):
    import spikec.models as zoo
    if os.path.exists(os.path.join(ckpt, "config.json")):
        step(f"1. loading the trained tiny SpikingBrain from {ckpt}")
        return zoo.from_pretrained(ckpt)
    step(f"1. no checkpoint at {ckpt}: training spikingbrain:tiny for ~{train_seconds:.0f}s on the stdlib corpus")
    corpus = zoo.build_corpus(max_bytes=1_500_000)
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny")
    # step time from a short probe run (its elapsed time excludes the initial evaluation)
    probe = zoo.train_eager(model, corpus, steps=4, batch_size=16, seq_len=128, eval_every=100,
                            eval_batches=1, progress=False)
    per_step = max(1e-3, probe.elapsed_s / 4)
    steps = max(10, min(400, int(train_seconds / per_step)))
    torch.manual_seed(0)
    model = zoo.create("spikingbrain", "tiny")
    res = zoo.train_eager(model, corpus, steps=steps, batch_size=16, seq_len=128, eval_every=max(10, steps // 4))
    step(f"   {steps} steps: validation loss {res.history[0]['val_loss']:.3f} -> {res.history[-1]['val_loss']:.3f}")
    model.save_pretrained(ckpt)
    zoo.ByteTokenizer().save(ckpt)
    return model.eval()


def run_demo(target: str = "cpu", prompt: str = "def ", max_new_tokens: int = 80, out_dir: str = "demo-out",
             train_seconds: float = 60.0, pipeline: str = "default,fuse-linear-attention,fuse-attention") -> bool:
    import spikec
    import spikec.models as zoo
    from spikec.cli_runtime import _tokenizer_files

    step = _Clock()
    model = _trained_model(os.path.join(out_dir, "ckpt"), train_seconds, step).eval()
    step(f"2. spikec.compile(spikingbrain:tiny, target={target!r}, pipeline={pipeline!r})")
    art = spikec.compile(model, target=target, pipeline=pipeline, progress=lambda m: step(f"   {m}"))
    fused = {k: v for k, v in art.graph.op_counts().items() if spikec.ir.get_op(k).category == "fused"}
    step(f"   forward graph: {len(art.graph.nodes)} nodes, fused ops {fused}")
    for k, v in art.meta["compile_seconds"].items():
        print(f"     {k:<18} {v:7.2f}s")
    art.extra_files.update(_tokenizer_files(zoo.ByteTokenizer()))
    path = art.save(os.path.join(out_dir, f"spikingbrain-tiny.{target}.spk"))
    step(f"   saved {path}")

    sess = spikec.load(path)
    tok = zoo.ByteTokenizer()
    ids = torch.tensor([tok.encode(prompt)])
    step(f"3. loaded; generating {max_new_tokens} tokens from {prompt!r}:")
    t0, first, out = time.perf_counter(), None, []
    sys.stdout.write(prompt)
    for t in sess.generate(ids, max_new_tokens, stream=True):
        first = first if first is not None else time.perf_counter() - t0
        out.append(int(t[0]))
        sys.stdout.write(tok.decode(out[-1:]) if out[-1] < 256 else "")
        sys.stdout.flush()
    total = time.perf_counter() - t0
    print()
    rate = (len(out) - 1) / max(1e-9, total - first)
    step(f"   time to first token {first * 1e3:.1f} ms, decode {rate:.1f} tokens/s ({sess.target})")

    step("4. checks against eager PyTorch")
    worst = 0.0
    with torch.no_grad():
        for T in (40, 83):
            x = torch.randint(0, 256, (1, T), generator=torch.Generator().manual_seed(T))
            err = (sess.forward(x) - model(x)).abs().max().item()
            worst = max(worst, err)
            step(f"   compiled forward vs eager at T={T}: max |diff| = {err:.2e}")
        same = torch.equal(sess.generate(ids, 24), model.generate(ids, max_new_tokens=24))
    step(f"   greedy tokens equal eager generate: {same}")
    ok = worst <= 1e-3 and same
    step("OK: the compiled artifact reproduces the eager model" if ok else "MISMATCH")
    return ok
