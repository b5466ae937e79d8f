"""The one workload every executor runs: native, KVM guest, QEMU TCG (user and system), container.

A multiply-xor hash loop, position independent, no memory access, no stack use, so that the same bytes
run anywhere a 64-bit x86 CPU (real or emulated) does. Its result is a checksum (equivalence) and its
time per iteration is the efficiency figure.

    u64 workload(u64 n)          ; rdi = n, returns rax
        mov   rax, 0x9E3779B97F4A7C15
        test  rdi, rdi
        jz    done
    loop:
        imul  rax, rax, 0x2545F491
        xor   rax, rdi
        dec   rdi
        jnz   loop
    done:
        ret
"""
from __future__ import annotations

import functools

SEED = 0x9E3779B97F4A7C15
MULTIPLIER = 0x2545F491
MASK = (1 << 64) - 1

#: The routine's body without the final RET (executors that embed it append their own ending).
BODY = (bytes.fromhex("48b8") + SEED.to_bytes(8, "little")
        + bytes.fromhex("4885ff" "740f")
        + bytes.fromhex("4869c0") + MULTIPLIER.to_bytes(4, "little")
        + bytes.fromhex("4831f8" "48ffcf" "75f1"))
#: The routine as a callable function (System V: n in rdi, result in rax).
CODE = BODY + b"\xc3"


@functools.lru_cache(maxsize=64)
def reference(n: int) -> int:
    """What the routine returns for `n`, computed in Python (for equivalence checks)."""
    x = SEED
    while n:
        x = ((x * MULTIPLIER) & MASK) ^ n
        n -= 1
    return x


from dataclasses import dataclass, field  # noqa: E402

from popek.checks.timing import Timing  # noqa: E402


@dataclass(frozen=True)
class WorkloadRun:
    """One executor's run of the workload: what it computed and how fast.

    executor: e.g. "natif", "conteneur", "KVM invité ring 3", "KVM invité ring 0", "TCG utilisateur",
        "TCG système" (French: it is shown to students).
    iterations: the n the result was computed for; result: the routine's return value for n
        (compare with reference(n) for equivalence).
    timing: ns per iteration (None if the executor could not be timed); note: why, or context.
    """
    executor: str
    iterations: int
    result: int
    timing: Timing | None = None
    note: str = ""
    details: dict = field(default_factory=dict)

    @property
    def equivalent(self) -> bool:
        return self.result == reference(self.iterations)


def run_native(iterations: int, samples: int = 5, timed: bool = True, clock=None) -> WorkloadRun:
    """The workload on this CPU, called through MachineCode (executor "natif"): the reference of
    every efficiency ratio.

    iterations: n (and the large count of the timing); samples: timing samples; timed: False to
    compute the result only; clock: a nanosecond clock for the timing (default: wall clock,
    time.perf_counter_ns); time.thread_time_ns counts only the CPU time this thread got, which is
    what to compare with another process's CPU time on a machine whose cores are shared.
    """
    import time

    from popek.checks.machine import MachineCode
    from popek.checks.timing import ns_per_iteration
    routine = MachineCode(CODE)
    result = int(routine(iterations))
    return WorkloadRun("natif", iterations, result,
                       ns_per_iteration(routine, iterations, samples, clock=clock or time.perf_counter_ns)
                       if timed else None)
