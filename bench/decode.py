"""decode: tokens/s and decode-state bytes vs context length.

spikingbrain `small` compiled by spikec (prefill + decode entries) against the
`transformer` `small` baseline in eager PyTorch with its growing KV cache. The
spikingbrain context is a real compiled prefill of the prompt; the transformer's
KV cache is filled with random keys/values of the context length instead of a
prefill (an O(T^2) prefill at 64K would take many minutes; decode time does not
depend on the cached values).

    python bench/decode.py [--quick | --smoke] [--targets torch,cpu]
"""
from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import parser, setup, table, write  # noqa: E402


def _tokens_per_s(step, first_token, state, n: int) -> float:
    tok, t0 = first_token, time.perf_counter()
    for _ in range(n):
        tok, state = step(tok, state)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    p = parser(__doc__)
    p.add_argument("--targets", default="torch,cpu")
    args = p.parse_args(argv)
    setup(args)
    import spikec
    import spikec.models as zoo
    from spikec.lm_capture import capture_lm
    from spikec.runtime import Session

    preset = "tiny" if args.smoke else "small"
    contexts = [64, 256] if args.smoke else [1024, 8192, 32768] if args.quick else \
        [1024, 4096, 16384, 32768, 65536]
    n_tokens = 4 if args.smoke else 32
    sb = zoo.create("spikingbrain", preset).eval()
    tf = zoo.create("transformer", preset, attn_implementation="sdpa").eval()
    lm = capture_lm(sb, sb.config.vocab_size, entries=("prefill", "decode"))
    sessions = {}
    for t in [t for t in args.targets.split(",") if t]:
        try:
            art = spikec.compile(lm, target=t, pipeline="default,fuse-linear-attention,fuse-attention")
            sessions[f"spikec {t}"] = Session(art)
        except spikec.SpikecError as e:
            print(f"target {t}: not benchmarked ({e.message})")

    def tf_step(tok, cache):
        logits, cache = tf.step(tok.reshape(1, 1), cache)
        return logits[:, -1].argmax(-1), cache

    rows = []
    with torch.no_grad():
        for ctx in contexts:
            ids = torch.randint(0, 256, (1, ctx), generator=torch.Generator().manual_seed(ctx))
            row = {"context": ctx}
            for name, sess in sessions.items():
                logits, state = sess.prefill(ids)
                row[f"{name} tok/s"] = _tokens_per_s(
                    lambda tok, st, s=sess: (lambda lg, st2: (lg.argmax(-1), st2))(*s.decode(tok, st)),
                    logits[:, -1].argmax(-1), state, n_tokens)
                row[f"{name} state bytes"] = state.nbytes()
            cache = tf.init_cache(1)
            for layer in cache["layers"]:
                for k in ("k", "v"):
                    shape = list(layer[k].shape)
                    shape[2] = ctx
                    layer[k] = torch.randn(shape)
            cache["pos"] = torch.tensor(ctx)
            row["transformer tok/s"] = _tokens_per_s(tf_step, torch.tensor([1]), cache, n_tokens)
            row["transformer state bytes"] = sum(t.numel() * t.element_size() for layer in cache["layers"]
                                                 for t in layer.values()) + 8
            rows.append(row)
            print(table([row], list(row)), flush=True)
    print(table(rows, list(rows[0])))
    summary = {}
    for name in sessions:
        summary[name] = {"speedup_at_max_context": rows[-1][f"{name} tok/s"] / rows[-1]["transformer tok/s"],
                         "state_bytes_constant": len({r[f"{name} state bytes"] for r in rows}) == 1}
    print("summary:", summary)

    def plot(ax):
        for name in [*sessions, "transformer"]:
            ax.loglog([r["context"] for r in rows], [r[f"{name} tok/s"] for r in rows], marker="o", label=name)
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel("decode tokens/s (batch 1)")
        ax.set_title(f"decode, {preset} models, {args.threads} threads")
    write("decode", {"preset": preset, "tokens_per_point": n_tokens, "rows": rows, "summary": summary}, args, plot)
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
