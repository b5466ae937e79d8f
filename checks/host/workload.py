"""The one workload every executor runs: native, KVM guest, QEMU TCG (user and system), container.

A small mix of what ordinary integer code does: a load and a store to an 8-slot table, flag-setting
ALU operations whose flags are consumed (ADD's carry by ADC, CMP's by CMOVB), a branch taken every
other iteration (on n's low bit: a CPU predicts it), and the loop's own DEC/JNZ. Its loop-carried
dependency chains are 1–2 instructions long, so a CPU runs it at the speed of its instruction
throughput (~3 cycles per iteration on a modern core): whatever an emulator adds to each guest
instruction shows in the time. A loop bound by the latency of one long operation hides it: with the
multiply-xor chain this workload used to be, a wide out-of-order core ran the code TCG adds in the
multiplication's shadow, and TCG/native measured x1.0 on this host. Here every branch ends one of
QEMU's translation blocks (2.5 per iteration) and, in system mode, every memory access goes through
its software MMU: TCG/native measures x6 (user mode) and x8 (system mode).

Position independent, no call, no stack push: the table lives in the 64 bytes just below rsp (the
System V red zone, which a leaf routine may use and signal handlers leave alone), so that the same
bytes run anywhere a 64-bit x86 CPU (real or emulated) does, given an rsp with 64 writable bytes
below it. Those bytes must not share a page with code: QEMU TCG would see self-modifying code and
throw its translations away at every store. Its result is a checksum (equivalence) and its time per
iteration is the efficiency figure.

    u64 workload(u64 n)          ; rdi = n, returns rax; table t[0..7] at [rsp-64]
        mov   rax, SEED          ; x = SEED
        mov   rdx, rax
        not   rdx                ; y = ~SEED
        mov   r10, rax           ; z = SEED
        mov   ecx, 8
    fill:                        ; t[k] = rol(SEED, 8 * (7 - k)); rax back to SEED after 8 turns
        mov   [rsp+rcx*8-72], rax
        rol   rax, 8
        dec   ecx
        jnz   fill
        test  rdi, rdi
        jz    done
    loop:
        mov   ecx, edi
        and   ecx, 7             ; i = n & 7
        mov   r8, [rsp+rcx*8-64] ; v = t[i]                        (load)
        add   rax, r8            ; x += v                          (sets CF)
        adc   rdx, rdi           ; y += n + CF                     (reads CF)
        mov   r9, rdx
        xor   r9, r8
        rol   r9, 13             ; w = rol(v ^ y, 13)
        mov   [rsp+rcx*8-64], r9 ; t[i] = w                        (store)
        test  dil, 1
        jnz   odd                ; n odd?                          (branch)
        sub   r10, r9            ;   no:  z -= w
        jmp   next
    odd:
        xor   r10, rax           ;   yes: z ^= x
    next:
        cmp   r10, rdx
        cmovb r10, r8            ; if z < y (unsigned): z = v      (reads CF)
        dec   rdi
        jnz   loop
    done:
        xor   rax, rdx
        xor   rax, r10           ; return x ^ y ^ z
        ret

(Assembled with GNU as, .intel_syntax noprefix, and checked with objdump; the ARM64 version of the
same computation is emulation._A64_BODY.)
"""
from __future__ import annotations

import functools

SEED = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
#: Slots of the table (8 bytes each) below rsp, and the rotations of the routine.
SLOTS, FILL_ROTATE, MIX_ROTATE = 8, 8, 13
#: Bytes below rsp the routine writes (executors give it that much writable memory under rsp).
STACK_BYTES = 8 * SLOTS

#: The routine's body without the final RET (executors that embed it append their own ending).
BODY = (bytes.fromhex("48b8") + SEED.to_bytes(8, "little")
        + bytes.fromhex(
            "4889c2"        # mov   rdx, rax
            "48f7d2"        # not   rdx
            "4989c2"        # mov   r10, rax
            "b908000000"    # mov   ecx, 8
            "488944ccb8"    # fill: mov [rsp+rcx*8-72], rax
            "48c1c008"      # rol   rax, 8
            "ffc9"          # dec   ecx
            "75f3"          # jnz   fill
            "4885ff"        # test  rdi, rdi
            "7439"          # jz    done
            "89f9"          # loop: mov ecx, edi
            "83e107"        # and   ecx, 7
            "4c8b44ccc0"    # mov   r8, [rsp+rcx*8-64]
            "4c01c0"        # add   rax, r8
            "4811fa"        # adc   rdx, rdi
            "4989d1"        # mov   r9, rdx
            "4d31c1"        # xor   r9, r8
            "49c1c10d"      # rol   r9, 13
            "4c894cccc0"    # mov   [rsp+rcx*8-64], r9
            "40f6c701"      # test  dil, 1
            "7505"          # jnz   odd
            "4d29ca"        # sub   r10, r9
            "eb03"          # jmp   next
            "4931c2"        # odd:  xor r10, rax
            "4939d2"        # next: cmp r10, rdx
            "4d0f42d0"      # cmovb r10, r8
            "48ffcf"        # dec   rdi
            "75c7"          # jnz   loop
            "4831d0"        # done: xor rax, rdx
            "4c31d0"))      # xor   rax, r10
#: The routine as a callable function (System V: n in rdi, result in rax).
CODE = BODY + b"\xc3"


def _rol(v: int, k: int) -> int:
    return ((v << k) | (v >> (64 - k))) & MASK


@functools.lru_cache(maxsize=64)
def reference(n: int) -> int:
    """What the routine returns for `n`, computed in Python (for equivalence checks; ~0.3 µs per
    iteration, so keep n to a few million)."""
    x = z = SEED
    y = SEED ^ MASK
    t = [_rol(SEED, FILL_ROTATE * (SLOTS - 1 - k)) for k in range(SLOTS)]
    while n:
        i = n & (SLOTS - 1)
        v = t[i]
        x += v
        carry = x >> 64
        x &= MASK
        y = (y + n + carry) & MASK
        w = v ^ y
        w = ((w << MIX_ROTATE) | (w >> (64 - MIX_ROTATE))) & MASK
        t[i] = w
        if n & 1:
            z ^= x
        else:
            z = (z - w) & MASK
        if z < y:
            z = v
        n -= 1
    return x ^ y ^ z


from dataclasses import dataclass, field  # noqa: E402

from popek.checks.host.timing import Ratio, Timing  # noqa: E402

#: One threshold for every time ratio against native (scenarios, Popek–Goldberg table, chart): below
#: it an executor runs the guest's instructions at the CPU's speed (efficiency OK: container, KVM guest
#: user code, ≈x1 measured); at or above it, markedly slower (emulation's heavy overhead, C07: TCG
#: x6–x8 measured on this host). A factor of 2 leaves room for noise on both sides.
EFFICIENCY_LIMIT = 2.0


def not_near_native(ratio: Ratio, bound: float = EFFICIENCY_LIMIT) -> str | None:
    """Why `ratio` (executor / native) is not within `bound` of native, in French; None if it is."""
    if ratio.value < bound:
        return None
    return (f"{ratio.subject} : ×{ratio.value:.2f} par rapport au natif ({ratio.subject_ns:.2f} contre "
            f"{ratio.reference_ns:.2f} ns par itération), pas moins de ×{bound:g} : ce n'est pas la vitesse "
            "du processeur")


def not_heavy_overhead(ratio: Ratio, bound: float = EFFICIENCY_LIMIT) -> str | None:
    """Why `ratio` (emulated / native) does not show a heavy overhead (ratio < bound), in French; None
    if it does."""
    if ratio.value >= bound:
        return None
    return (f"{ratio.subject} : seulement ×{ratio.value:.2f} par rapport au natif ({ratio.subject_ns:.2f} "
            f"contre {ratio.reference_ns:.2f} ns par itération), moins que ×{bound:g} : le surcoût lourd "
            "de l'émulation n'est pas mesuré ici")


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

    from popek.checks.host.machine import MachineCode
    from popek.checks.host.timing import ns_per_iteration
    routine = MachineCode(CODE)
    result = int(routine(iterations))
    return WorkloadRun("natif", iterations, result,
                       ns_per_iteration(routine, iterations, samples, clock=clock or time.perf_counter_ns)
                       if timed else None)
