"""spikec.codegen.torch: the `torch` target, and the code generator other
Python-hosted targets reuse.

What it makes
-------------
`TorchTarget().lower(graph)` writes one readable Python file (`sources()["model.py"]`):
one function for the graph, one nested function per region of scan / while_loop /
cond, one statement per node with the node's source line as a comment, locals
named after the IR values. It is compiled with `exec` into a `TorchModule`, an
`nn.Module` (and a CompiledModule) whose floating model weights are Parameters
under their graph names (`state_dict()` matches the eager model's) and whose
other constants are buffers. Autograd runs through everything: the fused ops
call the kernels in `kernels/` (chunked linear attention with a handwritten
backward, banded sliding-window attention, SDPA).

Rules
-----
One rule per op in a `TorchRuleTable` (TORCH_RULES). A rule is

    def rule(node: spikec.ir.Node, e: NodeEmitter) -> str | None

returning the Python expression that computes the node's output(s) (a tuple
or list for several), or None after assigning `e.out(i)` itself. `e` writes
source text:

    e.arg("q")          the argument as source (a local, a literal, `(T + 15) // 16`)
    e.has("gate")       does the node pass a non-None `gate`
    e.lit(x)            any literal or Value as source
    e.out(i)            the local of output i;  e.tmp("hint") a fresh local
    e.stmt("x = ...")   emit a statement before the result
    e.use(obj)          a module-level name for a kernel/helper (imported when importable)
    e.region(i)         write region i as a nested function, returns its name
    e.device            the local holding the module's device (for factory ops)
    e.call("f", a, k=b) "f(a, k=b)";  e.error(msg) a LoweringError naming op, target, line
    e.unpack_one = True when the expression returns a 1-sequence for a 1-output node

Adding rules for new ops (e.g. spike ops): create `codegen/torch/rules_spike.py`

    from .table import TORCH_RULES
    from .kernels.spike import spike_encode          # your torch kernel

    @TORCH_RULES.rule("spike_encode")
    def _spike_encode(node, e):
        return e.call(e.use(spike_encode), e.arg("x"), k=e.arg("k"), axis=e.arg("axis"))

and add "rules_spike" to RULE_MODULES in `table.py` (the one list of rule modules).

Deriving a target that replaces some rules (e.g. cuda = torch + Triton fused ops):

    from spikec.codegen.torch import TORCH_RULES, TorchTarget, load_rules
    CUDA_RULES = load_rules().copy("cuda")            # same rules, own table

    @CUDA_RULES.override("linear_attention")
    def _la(node, e):
        return e.call(e.use(triton_linear_attention), e.arg("q"), e.arg("k"), e.arg("v"), ...)

    class CudaTarget(TorchTarget):
        name, device, description = "cuda", "cuda", "..."
        def __init__(self):
            super().__init__(CUDA_RULES)

Helpers for derived targets: `rules_fused.kernel_call(node, e, kernel, tensors, attrs)`
writes `kernel(t1, t2, ..., attr=value)` for a fused op; `generate(graph, rules, target)`
(codegen.py) returns the source, the compiled function `fn(module, *inputs)` and the
constants, for a target that builds its own module (a TorchModule subclass, with
`nn_module.trainable_names(constants, parameters)` for the Parameter policy).

Rules for every core aten op are generated from the registry (rules_aten.py);
torch.library custom ops are called directly (rules_custom.py, a category rule).
"""
from .codegen import GeneratedCode, generate
from .emitter import NodeEmitter
from .nn_module import TorchModule
from .table import RULE_MODULES, TORCH_RULES, TorchRuleTable, load_rules
from .target import TorchTarget

__all__ = ["TorchTarget", "TorchModule", "TORCH_RULES", "TorchRuleTable", "RULE_MODULES", "load_rules",
           "NodeEmitter", "generate", "GeneratedCode"]
