"""The native executor: the workload's machine code called directly on the host CPU (the reference of
every efficiency ratio: KVM guest, QEMU TCG, container)."""
from __future__ import annotations

import time
from typing import Callable

from popek.checks.host import workload
from popek.checks.machine import MachineCode
from popek.checks.timing import ns_per_iteration


def run_workload_native(iterations: int, samples: int = 5,
                        clock: Callable[[], int] = time.perf_counter_ns) -> workload.WorkloadRun:
    """workload.CODE mapped executable in this process and called through ctypes.

    iterations: n for the result and the large count of the timing (the small one is n // 10);
    samples: timing samples (median reported);
    clock: nanosecond clock; pass time.thread_time_ns to count only the CPU time this thread got
        (what to compare with another process's CPU time, on a machine whose cores are shared).
    """
    code = MachineCode(workload.CODE)
    result = int(code(iterations))
    timing = ns_per_iteration(code, iterations, samples=samples, clock=clock)
    return workload.WorkloadRun("natif", iterations, result, timing,
                                details={"clock": getattr(clock, "__name__", str(clock))})
