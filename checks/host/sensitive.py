"""Sensitive but unprivileged x86 instructions (claim C02): why x86 could not meet Popek and Goldberg
before VT-x/AMD-V (2004).

Popek and Goldberg (1974): a machine can host an efficient VMM if every *sensitive* instruction (one that
reads or changes the machine's state) is *privileged* (traps when run outside the most privileged mode),
so that the VMM gets control. Robin and Irvine (USENIX Security 2000) listed 17 x86 instructions that are
sensitive yet run in ring 3 without trapping. Two families are measured here:

- SGDT, SIDT, SLDT, STR, SMSW read system registers (descriptor tables, task register, CR0). Since UMIP
  (User-Mode Instruction Prevention: Intel 2017, AMD Zen 2), the kernel may set CR4.UMIP so that they
  raise #GP in ring 3; Linux then *emulates* them and returns dummy values (arch/x86/kernel/umip.c).
  Either way the program sees no fault: the instruction is "trapped and emulated" (what P&G ask for,
  done by the kernel) or "native" (the real value leaks to ring 3). Which one holds is measured here:
  the UMIP flags, the value returned and the instruction's cost (a trap costs ~1 µs, a native SGDT ns).
  For SLDT, STR and SMSW, Linux chose dummies equal to what it really uses (0, 0x40, 0x33), so only the
  UMIP flag and the cost tell the two cases apart.
- POPF in ring 3 silently ignores a change of IF (interrupt flag) or IOPL: no trap, so a VMM running a
  guest kernel in ring 3 never learns that the guest tried to mask interrupts. No hardware fixes that
  without VT-x/AMD-V.
- MOV r, CS tells any code the ring it runs in: a guest kernel moved to ring 3 can see it is not in ring 0.
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from popek.checks.host import cpuid
from popek.checks.host.isolate import Fault, run_isolated
from popek.checks.host.rings import READ_CPL, loop
from popek.checks.host.machine import MachineCode
from popek.checks.host.timing import Timing, iterations_for, ns_per_iteration

EMULATED, NATIVE, FAULTED = "emulated", "native", "faulted"
FILL = 0x5A  # the scratch area is filled with this byte, so that bytes the instruction did not store show
KERNEL_HALF = 0xFFFF800000000000  # canonical kernel addresses on x86-64 (4-level paging) start here
#: A trap to the kernel and back (#GP, UMIP emulation, return) costs 0.8–1 µs on the machines measured;
#: the same instruction run natively costs a few ns. Between the two, this bound tells them apart.
TRAP_NS = 200.0


@dataclass(frozen=True)
class Umip:
    """Whether UMIP is in force. cpuid: the processor (or the hypervisor under us) offers it,
    CPUID.(EAX=7,ECX=0):ECX[2]; kernel: the kernel lists `umip` in /proc/cpuinfo (it set CR4.UMIP)."""
    cpuid: bool
    kernel: bool

    @property
    def active(self) -> bool:
        return self.cpuid and self.kernel

    def describe(self) -> str:
        if self.active:
            return "UMIP actif : processeur (CPUID 7 ECX[2]) et noyau (/proc/cpuinfo)"
        if self.cpuid:
            return "UMIP offert par le processeur mais non activé par le noyau"
        return "pas d'UMIP sur ce processeur" + (" (mais annoncé par le noyau ?)" if self.kernel else "")


def decode_umip(cpuinfo_flags: set[str], max_leaf: int, leaf7_ecx: int) -> Umip:
    """Umip from /proc/cpuinfo's flags, CPUID leaf 0's EAX (highest leaf) and leaf 7's ECX (pure):
    leaf 7 means nothing on a CPU whose highest leaf is below 7."""
    return Umip(cpuid=max_leaf >= 7 and bool(leaf7_ecx & (1 << 2)), kernel="umip" in cpuinfo_flags)


def umip_state(cpuinfo_path: str = "/proc/cpuinfo") -> Umip:
    """Read UMIP from CPUID, executed here, and from the flags in `cpuinfo_path`."""
    with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
        flags = cpuid.cpuinfo_flags(f.read())
    max_leaf = cpuid.cpuid(0)[0]
    return decode_umip(flags, max_leaf, cpuid.cpuid(7, 0)[2] if max_leaf >= 7 else 0)


@dataclass(frozen=True)
class SensitiveInstruction:
    """A sensitive but unprivileged instruction that stores a system register to memory.

    mnemonic: as in the feature's table; assembly: the form run (Intel syntax); code: `f(scratch)`
    storing to [RDI]; stored: how many bytes it stores (10 = limit + 64-bit base, 2 = a 16-bit value);
    body: the same instruction storing to [RSP-16] (red zone), for the timing loop;
    reveals: what it reads, in French; dummy: the value Linux's UMIP emulation returns to a 64-bit
    process (the base for SGDT/SIDT); distinctive: the dummy differs from anything real (SGDT/SIDT only).
    """
    mnemonic: str
    assembly: str
    code: bytes
    stored: int
    body: bytes
    reveals: str
    dummy: int
    distinctive: bool

    def value(self, scratch: bytes) -> tuple[int, int | None]:
        """(value, limit) decoded from the scratch area: (base, limit) for SGDT/SIDT, (16-bit value, None)."""
        if self.stored == 10:
            limit, base = struct.unpack_from("<HQ", scratch, 0)
            return base, limit
        return struct.unpack_from("<H", scratch, 0)[0], None

    def plausible(self, value: int) -> bool:
        """Whether `value` is something this register can hold on x86-64 Linux (pure): a kernel address
        for the tables, a GDT selector (TI = 0) for LDTR, a non-null one for TR, PE = 1 for the MSW."""
        if self.stored == 10:
            return value >= KERNEL_HALF
        if self.mnemonic == "SLDT":
            return value & 0b100 == 0
        if self.mnemonic == "STR":
            return value & 0b100 == 0 and value >= 8
        return bool(value & 1)  # SMSW: CR0.PE, protected mode


def _s(mnemonic, assembly, insn, body, stored, reveals, dummy, distinctive=False):
    return SensitiveInstruction(mnemonic, assembly, bytes.fromhex(insn) + b"\xc3", stored,
                                bytes.fromhex(body), reveals, dummy, distinctive)


# Dummies: UMIP_DUMMY_GDT_BASE, UMIP_DUMMY_IDT_BASE, SLDT 0, STR = GDT_ENTRY_TSS * 8, SMSW = CR0_STATE & 0xffff.
_SENSITIVE = (
    _s("SGDT", "sgdt [rdi]", "0f0107", "0f014424f0", 10,
       "l'adresse et la taille de la table globale des descripteurs (GDT)", 0xFFFFFFFFFFFE0000, True),
    _s("SIDT", "sidt [rdi]", "0f010f", "0f014c24f0", 10,
       "l'adresse et la taille de la table des interruptions (IDT)", 0xFFFFFFFFFFFF0000, True),
    _s("SLDT", "sldt [rdi]", "0f0007", "0f004424f0", 2,
       "le sélecteur de la table locale des descripteurs (LDT)", 0x0),
    _s("STR", "str [rdi]", "0f000f", "0f004c24f0", 2,
       "le sélecteur du segment d'état de tâche (TSS)", 0x40),
    _s("SMSW", "smsw [rdi]", "0f0127", "0f016424f0", 2,
       "les 16 bits bas de CR0 (mode protégé, FPU…)", 0x33),
)


def sensitive_instructions() -> tuple[SensitiveInstruction, ...]:
    """The table of sensitive, unprivileged system-register reads popek runs in ring 3."""
    return _SENSITIVE


def instruction(mnemonic: str) -> SensitiveInstruction:
    """The SensitiveInstruction named `mnemonic` (case-insensitive)."""
    for ins in _SENSITIVE:
        if ins.mnemonic.lower() == mnemonic.strip().lower():
            return ins
    raise KeyError(f"instruction inconnue {mnemonic!r} ; connues : {', '.join(i.mnemonic for i in _SENSITIVE)}")


def interpret(fault: Fault, umip: Umip) -> str:
    """EMULATED, NATIVE or FAULTED for an instruction that ran with `fault` under `umip` (pure).

    With CR4.UMIP set the CPU cannot run these instructions at CPL 3 (#GP), so a run without a visible
    fault means the kernel trapped and emulated it; without UMIP they run natively.
    """
    if fault.outcome != "returned":
        return FAULTED
    return EMULATED if umip.active else NATIVE


@dataclass(frozen=True)
class Reading:
    """What one sensitive instruction gave in ring 3.

    instruction; umip; fault: how the isolated run ended; value/limit: what it stored (None if it
    faulted); written: it stored something (the fill pattern is gone); cost: ns per execution
    (None if it faulted: it is not timed); outcome: EMULATED, NATIVE or FAULTED.
    """
    instruction: SensitiveInstruction
    umip: Umip
    fault: Fault
    value: int | None
    limit: int | None
    written: bool
    cost: Timing | None
    outcome: str

    @property
    def dummy_match(self) -> bool:
        return self.value == self.instruction.dummy

    def problems(self) -> list[str]:
        """Why this reading contradicts its outcome (empty when consistent; pure). Cost is reported only."""
        ins, out = self.instruction, []
        if self.outcome == FAULTED:
            return out
        if not self.written:
            out.append(f"{ins.mnemonic} n'a rien écrit en mémoire")
        elif not ins.plausible(self.value):
            out.append(f"{ins.mnemonic} a rendu {self.value:#x}, valeur impossible pour ce registre")
        if self.outcome == EMULATED and not self.dummy_match:
            out.append(f"UMIP actif mais {ins.mnemonic} a rendu {self.value:#x}, pas la valeur factice de Linux "
                       f"{ins.dummy:#x}")
        if self.outcome == NATIVE and ins.distinctive and self.dummy_match:
            out.append(f"UMIP inactif mais {ins.mnemonic} a rendu {self.value:#x}, la valeur factice de Linux : "
                       "la vraie valeur n'a pas fui")
        # The cost is the measured trace of a trap: UMIP's flags say what should happen, the cost what did.
        if self.cost and self.outcome == EMULATED and self.cost.median < TRAP_NS:
            out.append(f"UMIP annoncé actif mais {ins.mnemonic} coûte {self.cost.median:.0f} ns par exécution : "
                       f"aucune trappe vers le noyau (une trappe coûte au moins {TRAP_NS:.0f} ns)")
        if self.cost and self.outcome == NATIVE and self.cost.median >= TRAP_NS:
            out.append(f"UMIP inactif mais {ins.mnemonic} coûte {self.cost.median:.0f} ns par exécution, le prix "
                       f"d'une trappe (au moins {TRAP_NS:.0f} ns) : elle n'a pas tourné nativement")
        return out

    def describe(self) -> str:
        """One French line for the report."""
        ins = self.instruction
        if self.outcome == FAULTED:
            return f"{ins.mnemonic} : faute visible du programme, {self.fault.describe()}"
        shown = f"{self.value:#x}" + (f", limite {self.limit:#x}" if self.limit is not None else "")
        cost = f"{self.cost.median:.0f} ns" if self.cost else "non chronométrée"
        if self.outcome == EMULATED:
            dummy = "la valeur factice de Linux" if self.dummy_match else f"valeur factice attendue {ins.dummy:#x}"
            return f"piégée (#GP, UMIP) et émulée par le noyau : {shown} ({dummy}), {cost} par exécution"
        return f"exécutée nativement en ring 3, la vraie valeur fuit : {shown}, {cost} par exécution"

    def as_dict(self) -> dict:
        return {"instruction": self.instruction.mnemonic, "assembleur": self.instruction.assembly,
                "octets": self.instruction.code.hex(" "), "résultat": self.describe(), "outcome": self.outcome,
                "umip": self.umip.describe(), "valeur": None if self.value is None else hex(self.value),
                "limite": None if self.limit is None else hex(self.limit),
                "valeur factice de Linux": hex(self.instruction.dummy),
                "coût (ns)": self.cost.as_dict() if self.cost else None, "faute": self.fault.as_dict()}


@functools.cache
def _timing_routine(body: bytes) -> MachineCode:
    return MachineCode(loop(body))


def cost(ins: SensitiveInstruction, target_ms: float = 0.3, samples: int = 9) -> Timing:
    """ns per execution of `ins`, in a machine-code loop in this process. Call it only once the
    instruction ran without fault in a child (a fault here would kill the harness)."""
    run = _timing_routine(ins.body)
    return ns_per_iteration(run, iterations_for(run, target_ms * 1e6), samples)


def read(ins: SensitiveInstruction, umip: Umip, timed: bool = True) -> Reading:
    """Run `ins` in ring 3 in an isolated child, decode what it stored, time it if it did not fault.

    ins: the instruction; umip: umip_state(); timed: measure its cost as well.
    """
    fault = run_isolated(ins.code, scratch=bytes([FILL]) * 16)
    outcome = interpret(fault, umip)
    if outcome == FAULTED:
        return Reading(ins, umip, fault, None, None, False, None, outcome)
    value, limit = ins.value(fault.scratch)
    written = fault.scratch[:ins.stored] != bytes([FILL]) * ins.stored
    return Reading(ins, umip, fault, value, limit, written, cost(ins) if timed else None, outcome)


def probe_all(umip: Umip | None = None, timed: bool = True) -> list[Reading]:
    """Every sensitive system-register read run in ring 3 (the measured table); umip: umip_state() if None."""
    umip = umip or umip_state()
    return [read(ins, umip, timed) for ins in _SENSITIVE]


def cs_reveals_ring() -> Fault:
    """MOV EAX, CS in ring 3, isolated: no trap, and `.returned` is the CPL (CS & 3). A guest kernel
    deprivileged to ring 3 would read 3 where real hardware says 0: equivalence is broken without a trap
    the VMM could catch (Robin and Irvine list MOV from CS and PUSH CS)."""
    return run_isolated(READ_CPL)


# --- POPF ------------------------------------------------------------------------------------------
#: RFLAGS bits POPF is asked to flip: IF and IOPL are sensitive (ring 0 only), DF is not (the witness).
FLAGS = {"IF": 1 << 9, "IOPL": 3 << 12, "DF": 1 << 10}


def _popf_code(mask: int) -> bytes:
    """f(u64 out[2]): out[0] = RFLAGS; POPF(RFLAGS ^ mask); out[1] = RFLAGS; restore; return out[1]."""
    return (bytes.fromhex("9c" "58" "488907")              # pushfq ; pop rax ; mov [rdi], rax
            + bytes.fromhex("4835") + mask.to_bytes(4, "little")  # xor rax, mask
            + bytes.fromhex("50" "9d")                     # push rax ; popfq        <- the change asked
            + bytes.fromhex("9c" "58" "48894708")          # pushfq ; pop rax ; mov [rdi+8], rax
            + bytes.fromhex("ff37" "9d" "c3"))             # push qword [rdi] ; popfq (DF must be 0 on return) ; ret


@dataclass(frozen=True)
class FlagsChange:
    """POPF asked to flip `flag` (bits `mask`) in ring 3: RFLAGS `before` and `after`, and the run's fault."""
    flag: str
    mask: int
    before: int
    after: int
    fault: Fault

    @property
    def requested(self) -> int:
        return self.before ^ self.mask

    @property
    def applied(self) -> bool:
        return self.fault.outcome == "returned" and self.after & self.mask == self.requested & self.mask

    @property
    def dropped(self) -> bool:
        """The change was silently ignored: no fault, the bits kept their value."""
        return self.fault.outcome == "returned" and self.after & self.mask == self.before & self.mask

    def describe(self) -> str:
        if self.fault.outcome != "returned":
            return f"POPF ({self.flag}) : {self.fault.describe()}"
        verdict = "ignoré en silence" if self.dropped else "appliqué" if self.applied else "partiel"
        return (f"{self.flag} : RFLAGS {self.before:#x} → demandé {self.requested:#x} → obtenu {self.after:#x} "
                f"({verdict}, aucune faute)")

    def as_dict(self) -> dict:
        return {"drapeau": self.flag, "masque": hex(self.mask), "avant": hex(self.before),
                "demandé": hex(self.requested), "après": hex(self.after), "ignoré": self.dropped,
                "appliqué": self.applied, "faute": self.fault.as_dict(), "résultat": self.describe()}


def popf_change(flag: str) -> FlagsChange:
    """Ask POPF to flip `flag` ("IF", "IOPL" or "DF") in ring 3, in an isolated child."""
    mask = FLAGS[flag.upper()]
    fault = run_isolated(_popf_code(mask))
    before, after = struct.unpack_from("<QQ", fault.scratch, 0)
    return FlagsChange(flag.upper(), mask, before, after, fault)


def popf_if_dropped() -> FlagsChange:
    """POPF asked to flip IF in ring 3 (its `.dropped` is the measured Popek–Goldberg violation)."""
    return popf_change("IF")


def popf_iopl_dropped() -> FlagsChange:
    """POPF asked to change IOPL in ring 3."""
    return popf_change("IOPL")
