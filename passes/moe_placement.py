"""Expert placement: which device holds which expert, in which local slot.

Every device gets the same number L of expert slots (a padded slot holds -1), so the
stacked per-device weights of all ranks have one type [L, ...]. The table is the
device-major list `slots` (slot d*L + l holds global expert slots[d*L + l]); the
inverse, vLLM's `expert_map`, gives per device the local slot of each global
expert or -1.

    placement = make_placement(num_experts=4, devices=2, spec="contiguous", replicate=[3])
    placement.slots          # (0, 1, 3, 2, 3, -1): device 0 holds 0, 1 and a copy of 3
    placement.expert_map(0)  # [0, 1, -1, 2]

Specs: "contiguous" (device d takes the d-th run of experts), "round_robin" (expert e on
device e mod N), or an explicit list per device, "0+1|2+3". `replicate` adds copies of
hot experts on every device that lacks one; a token slot then goes to one of the
replicas (moe_permute alternates them).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import PipelineError


@dataclass(frozen=True)
class Placement:
    num_experts: int
    devices: int
    slots: tuple[int, ...]

    @property
    def local_slots(self) -> int:
        return len(self.slots) // self.devices

    def device_experts(self, device: int) -> list[int]:
        L = self.local_slots
        return [e for e in self.slots[device * L:(device + 1) * L] if e >= 0]

    def expert_map(self, device: int) -> list[int]:
        """Global expert -> local slot on `device` (-1 where the device does not hold it)."""
        L = self.local_slots
        out = [-1] * self.num_experts
        for l, e in enumerate(self.slots[device * L:(device + 1) * L]):
            if e >= 0 and out[e] < 0:
                out[e] = l
        return out

    def replicas(self, expert: int) -> list[tuple[int, int]]:
        """(device, local slot) of every copy of `expert`."""
        L = self.local_slots
        return [(s // L, s % L) for s, e in enumerate(self.slots) if e == expert]

    def table(self) -> str:
        lines = [f"expert placement over {self.devices} device(s), {self.local_slots} slot(s) each"]
        for d in range(self.devices):
            lines.append(f"  device {d}: experts {self.device_experts(d)}")
        return "\n".join(lines)


def _runs(num_experts: int, devices: int) -> list[list[int]]:
    base, extra = divmod(num_experts, devices)
    out, start = [], 0
    for d in range(devices):
        n = base + (d < extra)
        out.append(list(range(start, start + n)))
        start += n
    return out


def _explicit(spec: str, num_experts: int, devices: int) -> list[list[int]]:
    groups = spec.split("|")
    if len(groups) != devices:
        raise PipelineError(f"placement {spec!r} names {len(groups)} device(s), the pass partitions over {devices}",
                            hint="write one '+'-separated expert list per device, devices separated by '|'")
    try:
        return [[int(e) for e in g.split("+") if e != ""] for g in groups]
    except ValueError:
        raise PipelineError(f"placement {spec!r} is not a list of expert ids",
                            hint="e.g. placement=0+1|2+3 for 4 experts on 2 devices") from None


def make_placement(num_experts: int, devices: int, spec: str = "contiguous",
                   replicate: list[int] | tuple = ()) -> Placement:
    if devices < 1:
        raise PipelineError(f"devices must be >= 1, got {devices}")
    if spec == "contiguous":
        per_device = _runs(num_experts, devices)
    elif spec == "round_robin":
        per_device = [list(range(d, num_experts, devices)) for d in range(devices)]
    else:
        per_device = _explicit(spec, num_experts, devices)
    for e in replicate:
        e = int(e)
        for held in per_device:
            if e not in held:
                held.append(e)
    flat = [e for held in per_device for e in held]
    bad = [e for e in flat if not 0 <= e < num_experts]
    if bad:
        raise PipelineError(f"placement names expert {bad[0]}, outside [0, {num_experts})")
    missing = sorted(set(range(num_experts)) - set(flat))
    if missing:
        raise PipelineError(f"placement leaves expert {missing[0]} on no device",
                            hint="every expert needs at least one device")
    L = max(len(h) for h in per_device)
    slots = tuple(e for held in per_device for e in held + [-1] * (L - len(held)))
    return Placement(num_experts, devices, slots)
