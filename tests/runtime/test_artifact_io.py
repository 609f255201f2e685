"""Saving and loading artifacts: round trip, refusal of damaged ones, atomic save."""
from __future__ import annotations

import json
import os

import pytest
import torch

import spikec
from spikec.runtime import ArtifactError, artifact_io

from lm_cache import compiled


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    art = compiled("spikingbrain")
    return art, art.save(str(tmp_path_factory.mktemp("art") / "sb.spk"))


def test_layout_and_manifest(saved):
    art, path = saved
    m = json.load(open(os.path.join(path, "manifest.json")))
    assert m["format_version"] == artifact_io.FORMAT_VERSION and m["target"] == "torch"
    assert set(m["entries"]) == {"forward", "prefill", "decode"}
    assert m["entries"]["forward"]["inputs"][0]["type"] == "i64[B, T]"
    kinds = {s["kind"] for s in m["state"]}
    assert kinds == {"position", "recurrent", "ring"}
    # every file but the manifest is hashed, and weights are stored once for three entries
    on_disk = {os.path.relpath(os.path.join(r, n), path) for r, _, ns in os.walk(path) for n in ns}
    assert on_disk - {"manifest.json"} == set(m["files"])
    from safetensors.torch import load_file
    n_params = sum(t.numel() for t in load_file(os.path.join(path, "weights.safetensors")).values())
    assert n_params < 1.2 * sum(p.numel() for p in spikec.models.create("spikingbrain", "tiny").parameters())


def test_load_runs_like_the_original(saved):
    art, path = saved
    sess = spikec.load(path)
    ids = torch.randint(0, 260, (2, 23), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sess.forward(ids), art.forward(ids), rtol=0, atol=0)
    assert torch.equal(sess.generate(ids, 6), art.session().generate(ids, 6))


def _copy(path, tmp_path):
    import shutil
    dst = tmp_path / "copy.spk"
    shutil.copytree(path, dst)
    return str(dst)


def test_flipped_weight_byte_is_refused(saved, tmp_path):
    p = _copy(saved[1], tmp_path)
    w = os.path.join(p, "weights.safetensors")
    data = bytearray(open(w, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(w, "wb").write(bytes(data))
    with pytest.raises(ArtifactError, match=r"weights\.safetensors does not match its sha256"):
        spikec.load(p)


def test_deleted_file_is_refused(saved, tmp_path):
    p = _copy(saved[1], tmp_path)
    os.remove(os.path.join(p, "graphs", "decode.ir"))
    with pytest.raises(ArtifactError, match=r"decode\.ir is missing"):
        spikec.load(p)


def test_other_format_version_is_refused(saved, tmp_path):
    p = _copy(saved[1], tmp_path)
    mp = os.path.join(p, "manifest.json")
    m = json.load(open(mp))
    m["format_version"] = 99
    json.dump(m, open(mp, "w"))
    with pytest.raises(ArtifactError, match="format version 99"):
        spikec.load(p)


def test_truncated_manifest_and_wrong_target_are_refused(saved, tmp_path):
    p = _copy(saved[1], tmp_path)
    with pytest.raises(ArtifactError, match="compiled for target 'torch', not 'onnx'"):
        spikec.load(p, target="onnx")
    mp = os.path.join(p, "manifest.json")
    text = open(mp).read()
    open(mp, "w").write(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match="not valid JSON"):
        spikec.load(p)
    with pytest.raises(ArtifactError, match="no artifact directory"):
        spikec.load(str(tmp_path / "nothing-here"))


def test_interrupted_save_leaves_the_old_artifact(saved, tmp_path, monkeypatch):
    art, path = saved
    dst = _copy(path, tmp_path)
    before = open(os.path.join(dst, "manifest.json")).read()

    def boom(*a, **k):
        raise KeyboardInterrupt("killed while writing weights")
    monkeypatch.setattr(artifact_io, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        art.save(dst)
    with pytest.raises(KeyboardInterrupt):
        art.save(str(tmp_path / "fresh.spk"))
    assert open(os.path.join(dst, "manifest.json")).read() == before
    assert not os.path.exists(tmp_path / "fresh.spk")
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]     # temp dirs cleaned up
    spikec.load(dst)
