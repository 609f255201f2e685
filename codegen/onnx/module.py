"""The compiled ONNX model: run by an onnxruntime InferenceSession (CPU by default)."""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import ModelProto, TensorProto

from spikec.codegen.module import CompiledModule
from spikec.ir import Graph, InterpretError

TEXT_MAX_ELEMENTS = 16     # initializers larger than this print as declarations, not data


class OnnxModule(CompiledModule):
    target = "onnx"

    def __init__(self, graph: Graph, model: ModelProto, *, intra_op_threads: int | None = None,
                 providers: list[str] | None = None):
        super().__init__(graph)
        self.model = model
        self.intra_op_threads = intra_op_threads
        self.providers = providers or ["CPUExecutionProvider"]
        self._session = None

    @property
    def session(self):
        """The onnxruntime session, created on first use."""
        if self._session is None:
            import onnxruntime as ort
            opts = ort.SessionOptions()
            if self.intra_op_threads:
                opts.intra_op_num_threads = int(self.intra_op_threads)
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3          # errors only
            # idle workers sleep instead of spinning: onnxruntime's spin-wait after each run
            # takes the cores from whatever runs next in the process (torch, TVM)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(self.model.SerializeToString(), opts, providers=self.providers)
        return self._session

    def run(self, *inputs) -> list:
        sess = self.session
        names = [i.name for i in sess.get_inputs()]
        if len(inputs) != len(names):
            raise InterpretError(f"the ONNX model takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}")
        feed = {n: _to_numpy(x) for n, x in zip(names, inputs)}
        return [torch.from_numpy(np.asarray(o)) for o in sess.run(None, feed)]

    def text(self) -> str:
        """onnx.printer's text form, with the weights shown as declarations."""
        m = ModelProto()
        m.CopyFrom(self.model)
        for t in m.graph.initializer:
            n = int(np.prod(t.dims)) if len(t.dims) else 1
            if n > TEXT_MAX_ELEMENTS:
                t.ClearField("raw_data")
                for f in ("float_data", "int64_data", "int32_data", "double_data"):
                    t.ClearField(f)
                t.data_location = TensorProto.EXTERNAL
                e = t.external_data.add()
                e.key, e.value = "location", "model.onnx"
        return onnx.printer.to_text(m)

    def sources(self) -> dict:
        return {"model.onnx": self.model.SerializeToString(), "model.onnx.txt": self.text()}


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().contiguous().numpy()
    return np.asarray(x)
