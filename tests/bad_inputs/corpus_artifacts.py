"""Corpus cases for saved artifacts: tampered, truncated, of another version or target."""
from __future__ import annotations

import os
from pathlib import Path


import bad_makers as mk
import spikec
from corpus_case import case
from spikec.runtime import ArtifactError


# == artifacts: tampered, truncated, wrong version ============================================
def art_case(id, damage, match, api_only=False, cli_only=False, category="artifact"):
    def make(c):
        d = mk.copy_dir(c.shared.artifact, c.tmp / "a.spk")
        damage(d)
        return {"input": d}

    def api(m, c):
        return spikec.load(m["input"])
    case(id, category, match, make=make, api=None if cli_only else api,
         cli=None if api_only else ("run", "{input}", "--prompt", "hi", "--max-new-tokens", "1", "-q"),
         error=ArtifactError)


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


def _drop(key):
    return lambda m: m.pop(key)


MF = "manifest.json"
case("art_missing_directory", "artifact", r"no artifact directory at .*nowhere\.spk",
     make=lambda c: {"input": str(c.tmp / "nowhere.spk")}, api=lambda m, c: spikec.load(m["input"]),
     cli=("run", "{input}", "--prompt", "hi"), error=ArtifactError)
art_case("art_no_manifest", lambda d: os.remove(f"{d}/{MF}"),
         r"manifest\.json is missing: not a spikec artifact, or an interrupted save")
art_case("art_manifest_truncated", lambda d: mk.truncate(f"{d}/{MF}", 0.5),
         r"manifest\.json is not valid JSON \(.*\): the manifest is damaged")
art_case("art_manifest_not_an_object", lambda d: Path(f"{d}/{MF}").write_text("[1, 2]"),
         r"manifest\.json is not a spikec artifact manifest")
art_case("art_newer_format_version", lambda d: mk.edit_manifest(d, _set("format_version", 99)),
         r"manifest\.json: artifact format version 99, this spikec \(.*\) reads version 1 \(hint: recompile")
art_case("art_other_format", lambda d: mk.edit_manifest(d, _set("format", "onnx-bundle")),
         r"is not a spikec artifact manifest \(format='onnx-bundle'\)")
art_case("art_manifest_missing_field", lambda d: mk.edit_manifest(d, _drop("files")),
         r"manifest\.json lacks the 'files' field: the manifest is damaged")
art_case("art_entries_not_an_object", lambda d: mk.edit_manifest(d, _set("entries", [])),
         r"manifest\.json: 'entries' must be a non-empty object: the manifest is damaged")
art_case("art_entry_lacks_graph", lambda d: mk.edit_manifest(d, lambda m: m["entries"]["forward"].pop("graph")),
         r"entry 'forward' lacks a str 'graph' field")
art_case("art_file_outside_artifact",
         lambda d: mk.edit_manifest(d, lambda m: m["files"].update({"../../etc/passwd": "0" * 64})),
         r"'files' must map relative paths inside the artifact to sha256 strings")
art_case("art_unknown_target", lambda d: mk.edit_manifest(d, _set("target", "tpu")),
         r"was compiled for target 'tpu', which this spikec does not have")
art_case("art_weights_flipped_byte", lambda d: mk.flip_byte(f"{d}/weights.safetensors", 0.9),
         r"weights\.safetensors does not match its sha256 in the manifest: the file was modified or damaged")
art_case("art_weights_truncated", lambda d: mk.truncate(f"{d}/weights.safetensors", 0.5),
         r"weights\.safetensors does not match its sha256")
art_case("art_graph_deleted", lambda d: os.remove(f"{d}/graphs/forward.ir"),
         r"graphs/forward\.ir is missing from the artifact")
art_case("art_graph_edited", lambda d: Path(f"{d}/graphs/forward.ir").write_text(
    Path(f"{d}/graphs/forward.ir").read_text().replace("f32", "f16", 1)),
    r"graphs/forward\.ir does not match its sha256 in the manifest")
art_case("art_unlisted_file", lambda d: Path(f"{d}/extra/tokenizer/tokenizer.json").write_text("{}"),
         r"extra/tokenizer/tokenizer\.json is not listed in the manifest: the artifact was modified after it was saved")


def _rehashed(fn):
    def damage(d):
        fn(d)
        mk.edit_manifest(d, lambda m: None, rehash=True)
    return damage


art_case("art_graph_garbage_rehashed", _rehashed(lambda d: Path(f"{d}/graphs/forward.ir").write_text("not IR\n")),
         r"graphs/forward\.ir is not a valid graph: expected 'graph', found 'not' \(at line 1, column 1")
art_case("art_graph_type_error_rehashed", _rehashed(lambda d: Path(f"{d}/graphs/forward.ir").write_text(
    Path(f"{d}/graphs/forward.ir").read_text().replace("i64[B, T]", "f32[B, T]", 1))),
    r"graphs/forward\.ir is not a valid graph: .*(embedding|does not fit|mismatch)")
art_case("art_weight_removed_rehashed", _rehashed(lambda d: mk.edit_safetensors(
    f"{d}/weights.safetensors", lambda t: t.pop(sorted(t)[0]))),
    r"weights\.safetensors lacks tensor\(s\) \['.*'\] used by entry 'forward'")
art_case("art_weights_garbage_rehashed",
         _rehashed(lambda d: Path(f"{d}/weights.safetensors").write_bytes(b"\x00" * 64)),
         r"weights\.safetensors cannot be read: ")
art_case("art_state_damaged", lambda d: mk.edit_manifest(d, _set("state", [{"name": "s0"}])),
         r"manifest\.json: the 'state' layout is damaged \(KeyError: 'shape'\)")
art_case("art_tokenizer_damaged_rehashed", _rehashed(lambda d: (
    Path(f"{d}/extra/tokenizer/tokenizer.json").write_text('{"model": '),
    mk.edit_manifest(d, lambda m: m["files"].update({"extra/tokenizer/tokenizer.json": ""})))),
    r"cannot read the tokenizer in .*extra/tokenizer: Exception: ", cli_only=True)
case("art_wrong_target_requested", "artifact", r"was compiled for target 'torch', not 'cpu' \(hint: compile it again "
     r"with --target cpu\)", make=lambda c: {"input": c.shared.artifact},
     api=lambda m, c: spikec.load(m["input"], target="cpu"), error=ArtifactError)
