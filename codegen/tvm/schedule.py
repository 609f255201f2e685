"""Default CPU schedules for the TensorIR that Relax legalizes generic ops into.

TVM's relax pipeline leaves legalized TIR unscheduled on CPU (serial scalar
loops). Applied after FuseTIR, to every PrimFunc not already marked
`tirx.is_scheduled` (the hand-written kernels are):

- `Injective`: elementwise/broadcast/layout functions -> the spatial loops
  fused, split into a parallel outer loop and a vectorised inner one;
- TVM's `dlight.cpu.Reduction` for softmax / norm-like reductions;
- `ParallelOuter`: anything else with a leading spatial loop -> parallel.
"""
from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

VEC = 16          # fp32 lanes of a 512-bit vector
MIN_PARALLEL = 4096


def _extent(sch, loop):
    e = sch.get(loop).extent
    return int(e) if isinstance(e, tirx.IntImm) else None


class Injective(CPUScheduleRule):
    """Every block spatial-only: inline producers, then parallel + vectorise the last block."""

    def apply(self, func, target, _tunable):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if not infos or not all(bi.is_injective() for bi in infos):
            return None
        for bi in infos[:-1]:
            if _read_once(sch, bi.block_rv):
                try:
                    sch.compute_inline(bi.block_rv)
                except Exception:    # noqa: BLE001 - a producer that cannot inline stays a loop nest
                    pass
        blocks = sch.get_child_blocks(sch.get_sblock("root")) if _has_root(sch) else [infos[-1].block_rv]
        for b in blocks:
            try:
                _parallel_vectorize(sch, b)
            except Exception:        # noqa: BLE001 - symbolic extents the fuser cannot prove: outer loop only
                _parallel_first(sch, b)
        return sch


def _read_once(sch, block) -> bool:
    """Inline only a producer its single consumer reads once: inlining a value
    read twice copies its expression, and chains of those grow exponentially."""
    try:
        consumers = sch.get_consumers(block)
        if len(consumers) != 1:
            return False
        name = _buffer(sch.get(block).writes[0]).name
        body = sch.get(consumers[0]).body.script()
        return body.count(name + "[") == 1
    except Exception:                # noqa: BLE001
        return False


def _parallel_vectorize(sch, block) -> None:
    loops = sch.get_loops(block)
    if not loops:
        return
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    n = _extent(sch, fused)
    if n is not None and n <= VEC:
        return
    outer, inner = sch.split(fused, [None, VEC])
    if n is None or n >= MIN_PARALLEL:
        sch.parallel(outer)
    if n is not None and n % VEC == 0 and not _writes_bool(sch, block):
        sch.vectorize(inner)


def _writes_bool(sch, block) -> bool:
    """TVM 0.27 cannot vectorise a store into a bool buffer (it builds an int8xN
    value for a boolxN index: BufferStore dtype mismatch)."""
    return any(str(_buffer(w).dtype) == "bool" for w in sch.get(block).writes)


def _buffer(region):
    """The buffer of a block's read/write region (TVM 0.27 calls it `source`)."""
    return region.source if hasattr(region, "source") else region.buffer


def _parallel_first(sch, block) -> None:
    try:
        loops = sch.get_loops(block)
        if loops and _extent(sch, loops[0]) != 1:
            sch.parallel(loops[0])
    except Exception:                # noqa: BLE001
        pass


class ParallelOuter(CPUScheduleRule):
    """Fallback: the leading spatial loop of every top-level block runs in parallel."""

    def apply(self, func, target, _tunable):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if not infos:
            return None
        changed = False
        for bi in infos:
            dk = bi.dom_kind()
            lead = len(dk) - len(dk.lstrip("S"))
            loops = sch.get_loops(bi.block_rv)
            if lead == 0 or len(loops) < lead:
                continue
            try:
                fused = sch.fuse(*loops[:lead]) if lead > 1 else loops[0]
                n = _extent(sch, fused)
                if n is None or n > 1:
                    sch.parallel(fused)
                    changed = True
            except Exception:        # noqa: BLE001 - a loop nest that cannot be reshaped stays serial
                continue
        return sch if changed else None


def _has_root(sch) -> bool:
    try:
        sch.get_sblock("root")
        return True
    except Exception:                # noqa: BLE001
        return False


def default_schedule_pass():
    return dl.ApplyDefaultSchedule(Injective(), dl.cpu.Reduction(), ParallelOuter())
