"""Relax IRModule -> VM executable for the host CPU.

The pipeline is TVM's CPU default (dispatch, legalize, fuse, lower, finalize)
with one addition after FuseTIR: the default CPU schedules of schedule.py for
the generic ops. Hand-written kernels are marked scheduled and kept as written.
"""
from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_generic

from .schedule import default_schedule_pass


def cpu_pipeline(target):
    @tvm.transform.module_pass(opt_level=0, name="SpikecCpuPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        with target:
            seq = tvm.transform.Sequential(
                cpu_generic.library_dispatch_passes(target)
                + cpu_generic.legalize_passes(target)
                + [default_schedule_pass()]
                + cpu_generic.dataflow_lower_passes(target)
                + cpu_generic.finalize_passes(target))
            return seq(mod)
    return _pipeline


def compile_module(mod: tvm.IRModule, target) -> relax.VMExecutable:
    return tvm.compile(mod, target=target, relax_pipeline=cpu_pipeline(target))
