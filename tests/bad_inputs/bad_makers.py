"""Makers of the corpus's generated inputs: small ONNX models, and damaged copies of
artifacts and checkpoints. Binary inputs are made at test time (none is committed);
the valid originals they damage are built once per test process (`Shared`)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import cached_property
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper

HERE = Path(__file__).parent
CASES = HERE / "cases"

# -- ONNX ---------------------------------------------------------------------------------


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def onnx_model(nodes, inputs, outputs, inits=(), opset=18, domains=(), functions=()) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits)),
                             opset_imports=opsets, functions=list(functions))


def relu_model() -> onnx.ModelProto:
    """The valid model the truncation cases cut up: x[2, 8] -> relu -> matmul W -> y[2, 4]."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 4], [0.5] * 32)
    return onnx_model([helper.make_node("Relu", ["x"], ["r"], name="relu0"),
                       helper.make_node("MatMul", ["r", "w"], ["y"], name="proj")],
                      [vi("x", [2, 8])], [vi("y", [2, 4])], inits=[w])


def write_onnx(path: Path, model_or_bytes) -> str:
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    path.write_bytes(data)
    return str(path)


# -- artifacts and checkpoints -------------------------------------------------------------


class ByteLM(torch.nn.Module):
    """The smallest language model over the byte tokenizer: embedding -> linear head."""

    def __init__(self, vocab: int = 260, dim: int = 8):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.head = torch.nn.Linear(dim, vocab)

    def forward(self, ids):
        return self.head(self.emb(ids))


TRAIN_ARGS = dict(steps=2, batch_size=2, seq_len=8)   # the CLI's other train defaults are TrainConfig's


def _compile_byte_lm(vocab: int):
    import spikec
    import spikec.models as zoo
    from spikec.cli_runtime import _tokenizer_files
    torch.manual_seed(0)
    art = spikec.compile(ByteLM(vocab), (torch.zeros(2, 8, dtype=torch.long),), target="torch",
                         pipeline="default", dynamic={"B": (1, 64, {0: 0}), "T": (2, 4096)})
    art.meta["vocab_size"] = vocab          # what compile_zoo records for a zoo model
    art.extra_files.update(_tokenizer_files(zoo.ByteTokenizer()))
    return art


class Shared:
    """Valid inputs built once per process (lazily), copied by the cases that damage them."""

    def __init__(self, root: Path):
        self.root = root

    @cached_property
    def artifact(self) -> str:
        """A saved torch-target artifact of ByteLM (forward entry, tokenizer attached)."""
        return _compile_byte_lm(260).save(str(self.root / "tiny.spk"))

    @cached_property
    def artifact_vocab100(self) -> str:
        """The same with a 100-token vocabulary but the byte tokenizer: ids from text can exceed it."""
        return _compile_byte_lm(100).save(str(self.root / "tiny100.spk"))

    @cached_property
    def session(self):
        import spikec
        return spikec.load(self.artifact)

    @cached_property
    def data_file(self) -> str:
        path = self.root / "data.txt"
        path.write_text("def add(a, b):\n    return a + b\n" * 4)
        return str(path)

    @cached_property
    def zoo_checkpoint(self) -> str:
        """A tiny spikingbrain checkpoint directory (config.json + model.safetensors)."""
        import spikec.models as zoo
        torch.manual_seed(0)
        m = zoo.create("spikingbrain", "tiny", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, intermediate_size=64, gate_low_rank_dim=4)
        path = self.root / "sb-ckpt"
        m.save_pretrained(str(path))
        return str(path)

    @cached_property
    def train_checkpoint(self) -> str:
        """A training checkpoint directory of the artifact's module, written by two real steps."""
        from spikec.runtime import load_artifact
        from spikec.runtime.trainer import TrainConfig, Trainer
        path = self.root / "train-ckpt"
        module = load_artifact(self.artifact).module
        Trainer(module, self.train_data(), TrainConfig(**TRAIN_ARGS), ckpt_dir=str(path), progress=False).fit()
        return str(path)

    def train_data(self) -> torch.Tensor:
        import spikec.models as zoo
        return torch.tensor(zoo.ByteTokenizer().encode(Path(self.data_file).read_text(), add_eos=True))

    def trainer(self, ckpt_dir: str):
        """A fresh trainer over the artifact's module with the checkpoint's own config."""
        from spikec.runtime import load_artifact
        from spikec.runtime.trainer import TrainConfig, Trainer
        module = load_artifact(self.artifact).module
        return Trainer(module, self.train_data(), TrainConfig(**TRAIN_ARGS), ckpt_dir=ckpt_dir, progress=False)


def copy_dir(src: str, dst: Path) -> str:
    shutil.copytree(src, dst)
    return str(dst)


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def edit_manifest(art: str, fn, rehash: bool = False) -> str:
    """Apply fn to the manifest dict; with rehash, record the files' current sha256 first
    (a damage the hashes cannot see, so a deeper check has to)."""
    mpath = Path(art) / "manifest.json"
    m = json.loads(mpath.read_text())
    if rehash:
        for rel in m["files"]:
            if (Path(art) / rel).exists():
                m["files"][rel] = sha256(str(Path(art) / rel))
        for name, em in m["entries"].items():
            g = Path(art) / em["graph"]
            if g.exists():
                em["graph_hash"] = hashlib.sha256(g.read_text().encode()).hexdigest()
    fn(m)
    mpath.write_text(json.dumps(m, indent=1))
    return art


def flip_byte(path: str, at: float = 0.5) -> None:
    data = bytearray(Path(path).read_bytes())
    data[int(len(data) * at)] ^= 0x01
    Path(path).write_bytes(bytes(data))


def truncate(path: str, keep: float = 0.5) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])


def edit_safetensors(path: str, fn) -> None:
    from safetensors.torch import load_file, save_file
    tensors = load_file(path)
    fn(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def edit_train_checkpoint(ckpt_dir: str, fn) -> str:
    path = os.path.join(ckpt_dir, "checkpoint.pt")
    state = torch.load(path, weights_only=True)
    state = fn(state)
    torch.save(state, path)
    return ckpt_dir


class Planted:
    """Unpickling this creates a file: proof that a checkpoint ran code while being read."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))
