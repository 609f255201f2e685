"""Session: compiled generation equals the zoo's eager generate; state size; threads."""
from __future__ import annotations

import threading

import pytest
import torch

from spikec.runtime import RuntimeInputError

from lm_cache import ZOO, compiled, model

TARGETS = ("torch", "cpu", "onnx", "mlir", "cuda")   # cuda: Triton interpreter without a GPU


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ZOO)
def test_greedy_tokens_equal_eager_generate(name, target, tmp_path):
    import spikec
    path = compiled(name, target).save(str(tmp_path / "a.spk"))
    sess = spikec.load(path)
    ids = torch.randint(0, 256, (2, 11), generator=torch.Generator().manual_seed(3))
    want = model(name).generate(ids, max_new_tokens=8)
    got = sess.generate(ids, 8)
    assert torch.equal(got, want), f"{name} on {target}: {got[:, 11:]} vs eager {want[:, 11:]}"


def test_streaming_sampling_and_stop():
    sess = compiled("spikingbrain").session()
    ids = torch.randint(0, 256, (1, 9), generator=torch.Generator().manual_seed(4))
    full = sess.generate(ids, 6)
    assert torch.equal(torch.stack(list(sess.generate(ids, 6, stream=True)), 1), full[:, 9:])
    a = sess.generate(ids, 6, temperature=0.8, top_k=20, top_p=0.9, seed=7)
    assert torch.equal(a, sess.generate(ids, 6, temperature=0.8, top_k=20, top_p=0.9, seed=7))
    stop = int(full[0, 11])                 # the third new token: generation ends there
    out = sess.generate(ids, 6, stop=stop)
    assert out.shape[1] <= 9 + 3 and int(out[0, -1]) == stop


def test_ragged_batch_equals_one_by_one():
    sess = compiled("spikingbrain").session()
    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(0, 256, (n,), generator=g) for n in (7, 12, 7, 3)]
    batch = sess.generate(prompts, 5)
    for p, got in zip(prompts, batch):
        assert torch.equal(got, sess.generate(p[None], 5)[0])


def test_state_is_constant_for_linear_attention_and_grows_for_full_attention():
    sb, tf = compiled("spikingbrain").session(), compiled("transformer").session()
    sizes = {}
    # spikingbrain at 1K and 64K context (a 4.7 s prefill); the transformer's cache at 256
    # and 1K (its prefill materialises T x T scores, so 64K is out of reach here)
    for name, sess, lengths in (("sb", sb, (1024, 65536)), ("tf", tf, (256, 1024))):
        for n in lengths:
            ids = torch.randint(0, 256, (1, n), generator=torch.Generator().manual_seed(n))
            _, state = sess.prefill(ids)
            sizes[name, n] = state.nbytes()
    assert sizes["sb", 1024] == sizes["sb", 65536]
    assert sizes["tf", 1024] == 4 * sizes["tf", 256] - 3 * 8      # linear in context (8 bytes: position)


def test_threads_give_the_serial_results():
    sess = compiled("spikingbrain").session()
    prompts = [torch.randint(0, 256, (1, 5 + i), generator=torch.Generator().manual_seed(i)) for i in range(8)]
    serial = [sess.generate(p, 6) for p in prompts]
    results: list = [None] * 8

    def work(i):
        results[i] = sess.generate(prompts[i], 6)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        assert torch.equal(a, b)


def test_bad_inputs_are_named():
    sess = compiled("spikingbrain").session()
    with pytest.raises(RuntimeInputError, match="token id 999, outside the vocabulary"):
        sess.generate(torch.tensor([[1, 999]]), 2)
    with pytest.raises(RuntimeInputError, match="integer token ids"):
        sess.prefill(torch.zeros(1, 4))
    with pytest.raises(RuntimeInputError, match="empty"):
        sess.prefill(torch.zeros(1, 0, dtype=torch.long))
