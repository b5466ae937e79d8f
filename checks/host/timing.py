"""The one timing helper: time a loop, turn two timings into a ratio.

Code that times machine code runs the loop *in* machine code and calls it once per sample with the
iteration count as argument: the call's own cost (a ctypes call costs ~100 ns) is removed by timing
two counts and taking the difference.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Timing:
    """Nanoseconds per iteration over several samples."""
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict:
        return {"median_ns": self.median, "min_ns": self.min, "max_ns": self.max, "samples": len(self.samples)}


def ns_per_iteration(run: Callable[[int], object], iterations: int, samples: int = 5,
                     clock: Callable[[], int] = time.perf_counter_ns) -> Timing:
    """Time `run(n)` (which performs n iterations) and return ns per iteration.

    run: performs exactly n iterations of the thing being timed (the loop is inside it).
    iterations: the large count; the small count is iterations // 10, and the difference of the two
        timings cancels the fixed cost of calling `run`.
    samples: how many (large, small) pairs to time; the median is the figure reported.
    clock: a nanosecond clock (for another process's CPU time, pass a different clock).
    """
    small = max(1, iterations // 10)
    run(small)  # warm-up: page in the code, settle caches
    out = []
    for _ in range(samples):
        t0 = clock(); run(iterations); t1 = clock()
        run(small); t2 = clock()
        out.append(max(0.0, ((t1 - t0) - (t2 - t1)) / (iterations - small)))
    return Timing(tuple(out))


@dataclass(frozen=True)
class Ratio:
    """`subject` against `reference` (e.g. KVM guest ring 3 against native): subject / reference."""
    subject: str
    reference: str
    subject_ns: float
    reference_ns: float

    @property
    def value(self) -> float:
        return self.subject_ns / self.reference_ns if self.reference_ns else float("inf")

    def __str__(self) -> str:
        return f"{self.subject} / {self.reference} = ×{self.value:.2f} ({self.subject_ns:.2f} ns / {self.reference_ns:.2f} ns)"


def iterations_for(run: Callable[[int], object], target_ns: float, start: int = 1000,
                   limit: int = 1 << 40, clock: Callable[[], int] = time.perf_counter_ns) -> int:
    """An iteration count for which `run(n)` lasts about `target_ns`, so that one measurement fits
    executors a thousand times apart (a guest kernel emulated by PVM, the same code on VT-x).

    run: as for ns_per_iteration; start: the first count tried; limit: the largest count returned.
    """
    n = start
    while True:
        t0 = clock(); run(n); elapsed = clock() - t0
        if elapsed >= target_ns / 4 or n >= limit:
            return int(min(limit, max(start, n * target_ns / max(elapsed, 1))))
        n *= 8
