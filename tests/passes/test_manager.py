"""The pass manager: pipelines, errors that list what is valid, instrumentation, reproducers."""
import io
import os

import pytest
import torch

from spikec import ir, passes
from spikec.passes import PassError, PassManager, PipelineError

BEFORE = """graph @main(%x: f32[4]) -> (f32[4]) {
  %0: f32[4] = exp(%x)
  %1: f32[4] = exp(%x)
  %2: f32[4] = mul(%1, 1.0)
  %3: f32[4] = add(%0, %2)
  return %3
}
"""


def test_pipeline_strings_parse_with_options_and_aliases():
    steps = passes.parse_pipeline("default,fold-constants{max_elements=8},dce")
    assert [s.name for s in steps] == ["canonicalize", "cse", "fold-constants", "dce", "propagate-shapes",
                                       "fold-constants", "dce"]
    assert steps[5].options == {"max_elements": 8}
    assert str(steps[5]) == "fold-constants{max_elements=8}"


@pytest.mark.parametrize("pipeline, message", [
    ("canonicalise", "unknown pass 'canonicalise'"),
    ("fold-constants{max_elemnts=3}", "unknown option 'max_elemnts'"),
    ("fold-constants{max_elements=many}", "bad value 'many'"),
    ("fold-constants{max_elements=3", "unbalanced"),
    ("default{x=1}", "takes no options"),
])
def test_pipeline_errors_list_what_is_valid(pipeline, message):
    with pytest.raises(PipelineError) as e:
        passes.parse_pipeline(pipeline)
    assert message in str(e.value)
    if "unknown pass" in message:
        assert "canonicalize" in str(e.value) and "default" in str(e.value)
    if "unknown option" in message:
        assert "max_elements (int, default 65536)" in str(e.value)


def test_available_lists_passes_with_docs():
    names = {p.name: p for p in passes.available()}
    assert {"canonicalize", "cse", "dce", "fold-constants", "propagate-shapes"} <= set(names)
    assert all(p.doc for p in names.values())
    assert "default" in passes.pipelines()


def test_run_leaves_the_input_graph_alone_and_reports():
    g = ir.parse(BEFORE)
    pm = PassManager("default", verify_each=True)
    out = pm.run(g)
    assert str(g) == BEFORE
    assert out.op_counts() == {"add": 1, "exp": 1}
    report = pm.report()
    assert "cse" in report and "eliminated=1" in report and "rewritten:mul-one=1" in report
    assert [r.step for r in pm.records][:2] == ["canonicalize", "cse"]


def test_print_after_and_print_after_change():
    buf = io.StringIO()
    PassManager("canonicalize,cse,dce", print_after="cse", out=buf).run(ir.parse(BEFORE))
    assert buf.getvalue().count("// ----- IR after") == 1 and "IR after cse" in buf.getvalue()
    buf = io.StringIO()
    PassManager("canonicalize,cse,dce", print_after_change=True, out=buf).run(ir.parse(BEFORE))
    text = buf.getvalue()
    assert "IR after canonicalize" in text and "IR after cse" in text and "IR after dce" not in text


def test_dump_dir_holds_every_stage(tmp_path):
    PassManager("canonicalize,cse", dump_dir=str(tmp_path)).run(ir.parse(BEFORE))
    files = sorted(os.listdir(tmp_path))
    assert files == ["00-input.ir", "01-canonicalize.ir", "02-cse.ir"]
    stage = open(tmp_path / "02-cse.ir").read()
    assert ir.parse(stage).op_counts() == {"exp": 1, "add": 1}


@passes.register("test-explode")
def _explode(graph):
    """A pass that fails, for the reproducer test."""
    raise RuntimeError("boom")


@passes.register("test-break-types")
def _break_types(graph):
    """A pass that leaves a wrong type behind."""
    graph.nodes[0].outputs[0].type = ir.TensorType((5,), "f32")


def test_failing_pass_writes_a_reproducer(tmp_path):
    with pytest.raises(PassError) as e:
        PassManager("canonicalize,test-explode", repro_dir=str(tmp_path)).run(ir.parse(BEFORE))
    msg = str(e.value)
    assert "pass test-explode failed: RuntimeError: boom" in msg
    path = msg.split("reproducer written to ")[1].split("\n")[0].strip()
    text = open(path).read()
    assert text.startswith("// PIPELINE: test-explode")
    back = ir.parse(text)              # the reproducer is valid IR: the graph the pass saw
    assert back.op_counts()["exp"] == 2


def test_verify_each_catches_a_pass_that_breaks_types(tmp_path):
    with pytest.raises(PassError) as e:
        PassManager("test-break-types", verify_each=True, repro_dir=str(tmp_path)).run(ir.parse(BEFORE))
    assert "after test-break-types" in str(e.value.__cause__) and "type mismatch" in str(e.value.__cause__)


def test_user_pass_with_options_and_stats():
    @passes.register("test-scale", replace=True)
    def scale(graph, *, factor: float = 2.0, enabled: bool = True):
        """Multiply every output by a factor."""
        if not enabled:
            return
        node = graph.make_node("mul", {"self": graph.outputs[0], "other": factor}, [graph.outputs[0].type])
        graph.nodes.append(node)
        graph.set_outputs([node.output])
        passes.stat("scaled")

    info = passes.get_pass("test-scale")
    assert info.doc == "Multiply every output by a factor." and set(info.options) == {"factor", "enabled"}
    pm = PassManager("test-scale{factor=3.0},test-scale{enabled=false}")
    out = pm.run(ir.parse(BEFORE))
    x = torch.randn(4)
    torch.testing.assert_close(ir.interpret(out, x), 3 * 2 * torch.exp(x))
    assert pm.records[0].stats == {"scaled": 1} and pm.records[1].stats == {}
