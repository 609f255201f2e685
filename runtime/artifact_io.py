"""The on-disk artifact: a directory

    manifest.json          format version, spikec version, target, pipeline, entries
                           (graph file, graph hash, input/output signature), state
                           layout, metadata, sha256 of every other file
    graphs/<entry>.ir      the optimised IR text of each entry
    weights.safetensors    every constant the graphs use, stored once
    target/<entry>/...     the target's generated sources / modules
    extra/...              anything else the caller attaches (tokenizer files)

Saving is atomic: everything is written into a sibling temp directory, then
renamed into place, so an interrupted save never leaves a half artifact.
Loading re-checks every hash and refuses what does not match, naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import torch
from safetensors.torch import load_file, save_file

import spikec
from spikec.codegen import get_target
from spikec.codegen.errors import UnknownTargetError
from spikec.ir import SpikecError, parse, verify

from .artifact import Artifact, Entry
from .errors import ArtifactError
from .state import StateSlot

FORMAT = "spikec-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _signature(values) -> list[dict]:
    return [{"name": v.name, "type": str(v.type)} for v in values]


def _collect_weights(art: Artifact) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, str]]]:
    """One safetensors key per distinct tensor; entries map their constant names to keys."""
    stored: dict[str, torch.Tensor] = {}
    by_ptr: dict[tuple, str] = {}
    keymap: dict[str, dict[str, str]] = {}
    for ename, e in art.entries.items():
        keymap[ename] = {}
        for cname, t in e.graph.constants.items():
            if not isinstance(t, torch.Tensor):
                raise ArtifactError(f"constant {cname!r} of entry {ename!r} is a {type(t).__name__}, not a tensor")
            ident = (t.data_ptr(), tuple(t.shape), t.dtype, tuple(t.stride())) if t.numel() else None
            if ident is not None and ident in by_ptr:
                keymap[ename][cname] = by_ptr[ident]
                continue
            key = cname if cname not in stored else f"{ename}::{cname}"
            if key in stored and torch.equal(stored[key], t):
                keymap[ename][cname] = key
                continue
            stored[key] = t.detach().to("cpu").contiguous().clone()
            if ident is not None:
                by_ptr[ident] = key
            keymap[ename][cname] = key
    return stored, keymap


def _write(path: str, data: str | bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_artifact(art: Artifact, path: str, extra_files: dict[str, str | bytes] | None = None) -> str:
    """Write `art` to directory `path` (replacing an existing artifact there, atomically)."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        weights, keymap = _collect_weights(art)
        save_file(weights, os.path.join(tmp, WEIGHTS))
        entries = {}
        for name, e in art.entries.items():
            text = str(e.graph)
            _write(os.path.join(tmp, "graphs", f"{name}.ir"), text)
            srcs = {}
            for fname, src in e.module.sources().items():
                rel = os.path.join("target", name, fname)
                _write(os.path.join(tmp, rel), src)
                srcs[fname] = rel
            entries[name] = {"graph": f"graphs/{name}.ir", "graph_hash": hashlib.sha256(text.encode()).hexdigest(),
                             "inputs": _signature(e.graph.inputs), "outputs": _signature(e.graph.outputs),
                             "symbols": {k: list(v) for k, v in e.graph.symbols.items()},
                             "weights": keymap[name], "sources": srcs}
        for rel, data in (extra_files or {}).items():
            _write(os.path.join(tmp, "extra", rel), data)
        files = {}
        for root, _, names in os.walk(tmp):
            for n in names:
                full = os.path.join(root, n)
                files[os.path.relpath(full, tmp)] = _sha256(full)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "spikec_version": spikec.__version__,
                    "torch_version": torch.__version__, "target": art.target, "pipeline": art.pipeline,
                    "entries": entries, "state": [s.to_json() for s in art.state], "meta": art.meta,
                    "files": dict(sorted(files.items()))}
        _write(os.path.join(tmp, MANIFEST), json.dumps(manifest, indent=1))
        # Swap into place: the old artifact (if any) is moved aside first, then removed.
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return path
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path: str) -> dict:
    mpath = os.path.join(path, MANIFEST)
    if not os.path.isdir(path):
        raise ArtifactError(f"no artifact directory at {path}")
    if not os.path.exists(mpath):
        raise ArtifactError(f"{mpath} is missing: not a spikec artifact, or an interrupted save",
                            hint="compile it again with `spikec compile ... -o DIR`")
    try:
        with open(mpath) as f:
            m = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mpath} is not valid JSON ({e}): the manifest is damaged") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ArtifactError(f"{mpath} is not a spikec artifact manifest (format={m.get('format') if isinstance(m, dict) else None!r})")
    if m.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{mpath}: artifact format version {m.get('format_version')!r}, this spikec "
                            f"({spikec.__version__}) reads version {FORMAT_VERSION}",
                            hint="recompile the model with this spikec version")
    for key in ("target", "entries", "files", "pipeline"):
        if key not in m:
            raise ArtifactError(f"{mpath} lacks the {key!r} field: the manifest is damaged")
    _check_manifest_shape(m, mpath)
    return m


def _check_manifest_shape(m: dict, mpath: str) -> None:
    """Field types and file names, so a damaged manifest is named instead of failing later."""
    def bad(what: str):
        raise ArtifactError(f"{mpath}: {what}: the manifest is damaged", hint="recompile the artifact")

    def inside(rel) -> bool:
        return isinstance(rel, str) and bool(rel) and not os.path.isabs(rel) and \
            os.path.normpath(rel).split(os.sep)[0] != ".."
    if not isinstance(m["target"], str) or not isinstance(m["pipeline"], str):
        bad("'target' and 'pipeline' must be strings")
    if not isinstance(m["files"], dict) or not all(inside(k) and isinstance(v, str) for k, v in m["files"].items()):
        bad("'files' must map relative paths inside the artifact to sha256 strings")
    if not isinstance(m["entries"], dict) or not m["entries"]:
        bad("'entries' must be a non-empty object")
    for name, em in m["entries"].items():
        if not isinstance(em, dict):
            bad(f"entry {name!r} is a {type(em).__name__}, not an object")
        for key, typ in (("graph", str), ("graph_hash", str), ("weights", dict)):
            if not isinstance(em.get(key), typ):
                bad(f"entry {name!r} lacks a {typ.__name__} {key!r} field")
        if not inside(em["graph"]):
            bad(f"entry {name!r} names the graph file {em['graph']!r}, outside the artifact")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in em["weights"].items()):
            bad(f"entry {name!r} has a 'weights' map that is not names to names")
    if not isinstance(m.get("state", []), list) or not isinstance(m.get("meta", {}), dict):
        bad("'state' must be a list and 'meta' an object")


def verify_files(path: str, manifest: dict) -> None:
    """Every listed file present with its recorded sha256; nothing else unlisted but the manifest."""
    for rel, digest in manifest["files"].items():
        full = os.path.join(path, rel)
        if not os.path.isfile(full):
            raise ArtifactError(f"{full} is missing from the artifact", hint="the artifact is incomplete; recompile it")
        if _sha256(full) != digest:
            raise ArtifactError(f"{full} does not match its sha256 in the manifest: the file was modified or damaged",
                                hint="recompile the artifact; do not edit its files")
    # A file nobody hashed would be read unchecked (a tokenizer.json dropped into extra/).
    listed = {os.path.normpath(rel) for rel in manifest["files"]} | {MANIFEST}
    for root, _, names in os.walk(path):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), path)
            if rel not in listed:
                raise ArtifactError(f"{os.path.join(path, rel)} is not listed in the manifest: the artifact was "
                                    "modified after it was saved", hint="remove the file, or recompile the artifact")


def load_artifact(path: str, target: str | None = None) -> Artifact:
    """Read, verify and lower an artifact. `target`, when given, must be the one it was compiled for."""
    path = os.path.abspath(path)
    m = read_manifest(path)
    if target is not None and target != m["target"]:
        raise ArtifactError(f"{path} was compiled for target {m['target']!r}, not {target!r}",
                            hint=f"compile it again with --target {target}")
    try:
        tgt = get_target(m["target"])
    except UnknownTargetError as e:
        raise ArtifactError(f"{path} was compiled for target {m['target']!r}, which this spikec does not have") from e
    verify_files(path, m)
    try:
        weights = load_file(os.path.join(path, WEIGHTS))
    except Exception as e:
        raise ArtifactError(f"{os.path.join(path, WEIGHTS)} cannot be read: {e}") from e
    entries = {}
    for name, em in m["entries"].items():
        gpath = os.path.join(path, em["graph"])
        try:
            with open(gpath, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ArtifactError(f"{gpath} cannot be read as IR text: {e}") from e
        if hashlib.sha256(text.encode()).hexdigest() != em["graph_hash"]:
            raise ArtifactError(f"{gpath}: graph hash differs from the manifest")
        missing = [k for k in em["weights"].values() if k not in weights]
        if missing:
            raise ArtifactError(f"{os.path.join(path, WEIGHTS)} lacks tensor(s) {missing[:3]} used by entry {name!r}")
        consts = {c: weights[k] for c, k in em["weights"].items()}
        try:
            g = parse(text, constants=consts)
            verify(g)           # an edited graph is named here, not deep inside the target's lowering
        except SpikecError as e:
            raise ArtifactError(f"{gpath} is not a valid graph: {e.message}", where=e.where) from e
        entries[name] = Entry(g, tgt.lower(g))
    try:
        state = [StateSlot.from_json(s) for s in m.get("state", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ArtifactError(f"{os.path.join(path, MANIFEST)}: the 'state' layout is damaged "
                            f"({type(e).__name__}: {e})", hint="recompile the artifact") from e
    return Artifact(entries, m["target"], m["pipeline"], state, dict(m.get("meta", {})))


def extra_file(path: str, rel: str) -> str:
    return os.path.join(os.path.abspath(path), "extra", rel)
