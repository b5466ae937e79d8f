"""x86 protection rings (claim C05): user code runs in ring 3, where the instructions that drive the
machine fault, and a system call is the (costly) gate to ring 0.

- `current_privilege_level()`: the CPL, read from CS.
- `privileged_instructions()`: the table of instructions reserved to ring 0; `run_in_ring3(i)` runs one
  in a forked child (checks/host/isolate.py) and returns the Fault the CPU raised.
- `syscall_vs_call()`: a raw SYSCALL (getppid) against a near CALL/RET, both timed in machine code.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from popek.checks.host.isolate import Fault, run_isolated
from popek.checks.host.machine import MachineCode
from popek.checks.host.timing import Ratio, iterations_for, ns_per_iteration

# mov eax, cs ; and eax, 3 ; ret   -> the current privilege level (CPL) is CS's two low bits.
# MOV r, CS is itself sensitive but unprivileged (checks/host/sensitive.py): any code can learn its ring.
READ_CPL = bytes.fromhex("8cc8" "83e003" "c3")


def current_privilege_level() -> int:
    """The CPL this process runs at, read from the CS selector (3 for user code)."""
    return int(MachineCode(READ_CPL, argtypes=())())


def loop(body: bytes) -> bytes:
    """A routine `u64 f(u64 n)` that runs `body` n times (n in RDI; body must keep RDI and be < 120 bytes).

        test rdi, rdi ; jz done ; again: <body> ; dec rdi ; jnz again ; done: ret
    """
    span = len(body) + 5  # body + dec rdi (3) + jnz (2)
    if span > 127:
        raise ValueError("body too long for a short jump")
    return (bytes.fromhex("4885ff" "74") + bytes([span]) + body
            + bytes.fromhex("48ffcf" "75") + (-span & 0xFF).to_bytes(1, "little") + b"\xc3")


@dataclass(frozen=True)
class Instruction:
    """A privileged instruction: executed at CPL > 0 the processor refuses it with #GP(0).

    mnemonic: as in the feature's table ("MOV CR3"); assembly: the exact form run (Intel syntax);
    code: the routine run (setup, the instruction, RET); at: offset of the instruction in `code`
    (where the fault must be); role: what it does in ring 0, in French (shown to students).
    """
    mnemonic: str
    assembly: str
    code: bytes
    at: int
    role: str


def _i(mnemonic: str, assembly: str, setup: str, insn: str, role: str) -> Instruction:
    setup_b, insn_b = bytes.fromhex(setup), bytes.fromhex(insn)
    return Instruction(mnemonic, assembly, setup_b + insn_b + b"\xc3", len(setup_b), role)


# Memory operands point 16 bytes below RSP (the red zone: mapped, ours), so that no page fault can
# come before the privilege check; values loaded would be harmless anyway: none of this runs in ring 0.
_PRIVILEGED = (
    _i("HLT", "hlt", "", "f4", "arrête le processeur jusqu'à la prochaine interruption"),
    _i("CLI", "cli", "", "fa", "masque les interruptions (IOPL 0 : réservé au noyau)"),
    _i("STI", "sti", "", "fb", "démasque les interruptions"),
    _i("MOV CR0", "mov rax, cr0", "", "0f20c0", "lit CR0 (mode protégé, pagination, caches)"),
    _i("MOV CR3", "xor eax, eax ; mov cr3, rax", "31c0", "0f22d8", "change de table des pages (d'espace d'adressage)"),
    _i("IN", "in al, 0x80", "", "e480", "lit un port d'entrée-sortie"),
    _i("OUT", "out 0x80, al", "", "e680", "écrit sur un port d'entrée-sortie"),
    _i("RDMSR", "mov ecx, 0x10 ; rdmsr", "b910000000", "0f32", "lit un registre spécifique au modèle (MSR 0x10, compteur TSC)"),
    _i("LGDT", "lgdt [rsp-16]", "", "0f015424f0", "charge la table globale des descripteurs (GDT)"),
    _i("LIDT", "lidt [rsp-16]", "", "0f015c24f0", "charge la table des interruptions (IDT)"),
    _i("INVD", "invd", "", "0f08", "invalide les caches sans les réécrire en mémoire"),
    _i("WBINVD", "wbinvd", "", "0f09", "réécrit puis invalide les caches"),
    _i("CLTS", "clts", "", "0f06", "efface le drapeau TS de CR0 (changement de tâche)"),
    _i("INVLPG", "invlpg [rsp-16]", "", "0f017c24f0", "invalide une entrée du TLB"),
    _i("MOV DR7", "mov rax, dr7", "", "0f21f8", "lit le registre de contrôle du débogage matériel"),
    _i("SWAPGS", "swapgs", "", "0f01f8", "échange la base GS avec celle du noyau (entrée dans le noyau)"),
)


def privileged_instructions() -> tuple[Instruction, ...]:
    """The table of privileged instructions popek runs in ring 3."""
    return _PRIVILEGED


def instruction(mnemonic: str) -> Instruction:
    """The Instruction named `mnemonic` (case-insensitive); KeyError lists the known ones."""
    for ins in _PRIVILEGED:
        if ins.mnemonic.lower() == mnemonic.strip().lower():
            return ins
    raise KeyError(f"instruction inconnue {mnemonic!r} ; connues : {', '.join(i.mnemonic for i in _PRIVILEGED)}")


def run_in_ring3(ins: Instruction, timeout: float = 5.0) -> Fault:
    """Execute `ins` in this (ring 3) process, isolated in a forked child; how the CPU answered."""
    return run_isolated(ins.code, timeout=timeout)


def probe_all(timeout: float = 5.0) -> list[tuple[Instruction, Fault]]:
    """Every privileged instruction run in ring 3, each with how the CPU answered (the measured table)."""
    return [(ins, run_in_ring3(ins, timeout)) for ins in _PRIVILEGED]


def refused_by_cpu(ins: Instruction, fault: Fault) -> bool:
    """True when `fault` is the #GP (SIGSEGV, trap 13, SI_KERNEL) raised on `ins` itself (pure)."""
    return fault.is_general_protection and fault.offset == ins.at


# --- the price of a ring crossing ------------------------------------------------------------------
GETPPID = 110  # x86-64 syscall number: a system call that does almost nothing but cross into ring 0

# u64 f(u64 n): n times { mov eax, 110 ; syscall } ; returns the last getppid() (SYSCALL keeps RDI)
SYSCALL_LOOP = loop(bytes.fromhex("b86e000000" "0f05"))
# u64 f(u64 n): n times { mov eax, 110 ; call near_ret } ; the callee is the RET right after the loop:
# the same instruction count as the syscall loop, with a CALL/RET that stays in ring 3.
CALL_LOOP = loop(bytes.fromhex("b86e000000" "e806000000")) + b"\xc3"


@functools.cache
def _routine(code: bytes) -> MachineCode:
    return MachineCode(code)


def raw_getppid() -> int:
    """getppid() made by a SYSCALL instruction in our machine code (not through libc): proof that the
    loop timed by syscall_vs_call() really enters the kernel."""
    return int(_routine(SYSCALL_LOOP)(1))


def syscall_vs_call(target_ms: float = 0.5, samples: int = 9) -> Ratio:
    """The cost of a SYSCALL (ring 3 -> 0 -> 3) against a near CALL/RET, each timed in a machine-code loop.

    target_ms: about how long one timed run lasts (the iteration counts are calibrated for it);
    samples: timing samples per loop (medians are compared). Many short runs rather than a few long
    ones: on a shared 2-vCPU VM, runs of 2 ms were often stretched ×3–4 by preemption, enough to move
    the median of 5.
    """
    timings = {}
    for name, code in (("syscall", SYSCALL_LOOP), ("call", CALL_LOOP)):
        run = _routine(code)
        timings[name] = ns_per_iteration(run, iterations_for(run, target_ms * 1e6), samples)
    return Ratio("syscall getppid", "call/ret proche", timings["syscall"].median, timings["call"].median)
