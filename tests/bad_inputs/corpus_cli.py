"""Corpus cases for pipeline strings, pass options and command-line arguments."""
from __future__ import annotations

from pathlib import Path


import bad_makers as mk
import spikec
from corpus_case import case, static
from spikec import ir
from spikec.ir import SpikecError
from spikec.passes.errors import PipelineError


# == pipeline strings and pass options ==========================================================
def pipe_case(id, pipeline, match, error=PipelineError):
    def api(m, c):
        from spikec import passes
        return passes.PassManager(pipeline).run(ir.parse(Path(m["input"]).read_text()))
    case(id, "pipeline", match, make=lambda c: {"input": static("ir", "ok_linear.ir")}, api=api,
         cli=("opt", "{input}", "--pipeline", pipeline), error=error)


pipe_case("pipe_unknown_pass", "canonicalize,fuse-everything",
          r"unknown pass 'fuse-everything' \(hint: valid passes: canonicalize, .*cse")
pipe_case("pipe_unbalanced_open", "insert-spike-coding{k=3", r"unbalanced '\{' in pipeline 'insert-spike-coding\{k=3'")
pipe_case("pipe_unbalanced_close", "cse}", r"unbalanced '\}' in pipeline 'cse\}'")
pipe_case("pipe_unknown_option", "insert-spike-coding{level=3}",
          r"unknown option 'level' for pass 'insert-spike-coding' \(hint: valid options: coding \(str")
pipe_case("pipe_option_without_value", "insert-spike-coding{k}",
          r"option 'k' of pass 'insert-spike-coding' must be key=value")
pipe_case("pipe_float_not_a_number", "insert-spike-coding{k=three}",
          r"bad value 'three' for option 'k' of pass 'insert-spike-coding': could not convert")
pipe_case("pipe_float_nan", "insert-spike-coding{k=nan}",
          r"bad value 'nan' for option 'k' of pass 'insert-spike-coding': expected a finite number")
pipe_case("pipe_float_overflow", "insert-spike-coding{k=1e999}",
          r"bad value '1e999' for option 'k' .*expected a finite number")
pipe_case("pipe_int_not_integer", "fold-constants{max_elements=1.5}",
          r"bad value '1\.5' for option 'max_elements' of pass 'fold-constants'")
pipe_case("pipe_bool_not_boolean", "fuse-linear-attention{quadratic=maybe}",
          r"bad value 'maybe' for option 'quadratic' of pass 'fuse-linear-attention': expected true/false")
pipe_case("pipe_named_pipeline_with_options", "default{verify=1}", r"named pipeline 'default' takes no options")
pipe_case("pipe_semicolon_separator", "cse;dce", r"unknown pass 'cse;dce'")
pipe_case("pipe_unknown_coding", "insert-spike-coding{coding=quinary}",
          r"pass insert-spike-coding\{coding=quinary\} failed: PipelineError: insert-spike-coding: unknown coding "
          r"'quinary' \(at reproducer written to ", error=SpikecError)
pipe_case("pipe_zero_threshold_divisor", "insert-spike-coding{k=0}",
          r"insert-spike-coding: k must be positive \(got 0\.0\)", error=SpikecError)
case("pipe_print_after_unknown_pass", "pipeline", r"unknown pass 'fuse-everything'",
     make=lambda c: {"input": static("ir", "ok_linear.ir")},
     cli=("opt", "{input}", "--pipeline", "cse", "--print-after", "fuse-everything"))


# == command-line arguments ======================================================================
def cli_case(id, argv, match, make=lambda c: {}, api=None, error=SpikecError):
    case(id, "cli-args", match, make=make, api=api, cli=tuple(argv), error=error)


PROJ = static("export", "ok_proj.py")
cli_case("cli_dynamic_malformed", ["inspect", f"{PROJ}:make", "--dynamic", "T"],
         r"--dynamic expects NAME=LO:HI \(e\.g\. T=2:4096\), got 'T'")
cli_case("cli_dynamic_inverted", ["inspect", f"{PROJ}:make", "--dynamic", "T=64:2"],
         r"--dynamic T=64:2: give a symbol name and a range 0 <= LO <= HI")
cli_case("cli_seq_len_zero", ["inspect", "spikingbrain:tiny", "--seq-len", "0"], r"--seq-len must be >= 1, got 0")
cli_case("cli_batch_negative", ["inspect", "spikingbrain:tiny", "--batch", "-2"], r"--batch must be >= 1, got -2")
cli_case("cli_max_len_too_small", ["compile", "spikingbrain:tiny", "--max-len", "0", "-o", "{tmp}/x.spk"],
         r"--max-len must be >= 2 \(a prompt and one new token\), got 0")


def _tiny_graph(m, c):
    return spikec.compile(ir.parse(Path(static("ir", "ok_linear.ir")).read_text()), target="tpu")


cli_case("cli_unknown_target", ["compile", "spikingbrain:tiny", "--target", "tpu", "-o", "{tmp}/x.spk", "-q"],
         r"unknown target 'tpu'; valid targets: .*torch", api=_tiny_graph)
cli_case("cli_unknown_model_path", ["compile", "{tmp}/no-such-checkpoint", "-o", "{tmp}/x.spk", "-q"],
         r"unknown model '.*no-such-checkpoint': give a zoo name")
cli_case("cli_output_under_a_file", ["inspect", "{input}", "-o", "{input}/out.ir"],
         r"Not a directory: .*relu\.onnx/out\.ir",
         make=lambda c: {"input": mk.write_onnx(c.tmp / "relu.onnx", mk.relu_model())})
cli_case("cli_config_for_onnx", ["inspect", "{input}", "--config", "hidden_size=8"],
         r"config overrides apply to zoo models only",
         make=lambda c: {"input": mk.write_onnx(c.tmp / "m.onnx", mk.relu_model())})
RUN = ("run", "{art}", "--prompt", "hi", "-q")
ART = dict(make=lambda c: {"art": c.shared.artifact})
cli_case("cli_temperature_negative", [*RUN, "--temperature", "-1"],
         r"--temperature must be a finite number >= 0 \(0 = greedy\), got -1\.0", **ART)
cli_case("cli_top_p_above_one", [*RUN, "--temperature", "1", "--top-p", "1.5"],
         r"--top-p must be in \(0, 1\], got 1\.5", **ART)
cli_case("cli_top_k_zero", [*RUN, "--temperature", "1", "--top-k", "0"], r"--top-k must be >= 1, got 0", **ART)
cli_case("cli_max_new_tokens_negative", [*RUN, "--max-new-tokens", "-3"], r"--max-new-tokens must be >= 0, got -3",
         **ART)
cli_case("cli_run_forward_only_artifact", [*RUN, "--max-new-tokens", "2"],
         r"this artifact has no 'decode' entry \(it has: forward\)", **ART)

