"""Run a few bytes of machine code in a forked child and report how the processor answered.

A privileged instruction executed in ring 3 raises an exception (#GP, #UD, …) that the kernel turns
into a signal. To observe *which* exception, a handler must read the trap number the kernel saved in
the signal frame (`uc_mcontext.gregs[REG_TRAPNO]`). That handler cannot be Python: a Python signal
handler only runs between bytecodes, after the C-level handler has returned, and returning from a
fault handler re-executes the faulting instruction forever. So the handler is machine code too: it
copies the signal number, `si_code`, the trap number, the error code and the faulting RIP into a
shared page and calls exit_group. The child is forked so that whatever the code does, the harness
survives (like kvm-unit-tests runs each test in its own guest).

Offsets (x86-64 Linux, glibc): `siginfo_t.si_code` at 8, `si_addr` at 16; `ucontext_t.uc_mcontext`
at 40 (after uc_flags, uc_link and the 24-byte stack_t), whose `gregs[]` are 8 bytes each with
REG_RIP = 16, REG_ERR = 19, REG_TRAPNO = 20. They are checked empirically by `calibration()`
against faults whose answer is known (a page fault at a fixed address, UD2, INT3).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import signal
import struct
import time
from dataclasses import dataclass

from popek.checks.host.machine import MachineCode

SI_KERNEL = 0x80  # si_code of a signal sent by the kernel for a CPU exception without a finer code
SA_SIGINFO = 0x4
SA_RESETHAND = 0x80000000  # a fault inside the handler then kills the child instead of looping

SIGINFO_CODE, SIGINFO_ADDR = 8, 16
UCONTEXT_GREGS = 40
REG_RIP, REG_ERR, REG_TRAPNO = 16, 19, 20

#: Signals a CPU exception can become; the handler is installed for all of them.
CAUGHT = (signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE, signal.SIGTRAP)

#: x86 exception vectors -> mnemonic (Intel SDM vol. 3, table 6-1).
EXCEPTIONS = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF",
              10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC",
              18: "#MC", 19: "#XM", 21: "#CP"}

# The shared page: 8-byte words at these offsets, then a scratch area handed to the code.
_STATE, _SIGNO, _CODE, _TRAPNO, _ERR, _RIP, _ADDR, _BASE, _RETURNED = range(0, 72, 8)
SCRATCH, SCRATCH_SIZE = 128, 64
STARTED, FAULTED, RETURNED = 1, 2, 3


def _handler_code(page: int) -> bytes:
    """The SA_SIGINFO handler, void h(int sig /*rdi*/, siginfo_t *si /*rsi*/, ucontext_t *uc /*rdx*/),
    storing into the shared page at address `page`."""
    def disp32(reg: int) -> bytes:
        return (UCONTEXT_GREGS + 8 * reg).to_bytes(4, "little")
    return (bytes.fromhex("49b8") + page.to_bytes(8, "little")  # movabs r8, page
            + bytes.fromhex("89f8" "49894008")                  # mov eax, edi ; mov [r8+8], rax
            + bytes.fromhex("486346") + bytes([SIGINFO_CODE])   # movsxd rax, dword [rsi+8]   (si_code)
            + bytes.fromhex("49894010")                         # mov [r8+16], rax
            + bytes.fromhex("488b82") + disp32(REG_TRAPNO)      # mov rax, [rdx+gregs+8*REG_TRAPNO]
            + bytes.fromhex("49894018")                         # mov [r8+24], rax
            + bytes.fromhex("488b82") + disp32(REG_ERR)         # mov rax, [rdx+gregs+8*REG_ERR]
            + bytes.fromhex("49894020")                         # mov [r8+32], rax
            + bytes.fromhex("488b82") + disp32(REG_RIP)         # mov rax, [rdx+gregs+8*REG_RIP]
            + bytes.fromhex("49894028")                         # mov [r8+40], rax
            + bytes.fromhex("488b46") + bytes([SIGINFO_ADDR])   # mov rax, [rsi+16]           (si_addr)
            + bytes.fromhex("49894030")                         # mov [r8+48], rax
            + bytes.fromhex("49c700") + FAULTED.to_bytes(4, "little")  # mov qword [r8], FAULTED
            + bytes.fromhex("b8e7000000" "31ff" "0f05"))        # mov eax, 231 (exit_group) ; xor edi, edi ; syscall


class _Sigaction(ctypes.Structure):
    # glibc's struct sigaction on x86-64 (152 bytes): handler, 1024-bit mask, flags, restorer.
    _fields_ = [("sa_sigaction", ctypes.c_void_p), ("sa_mask", ctypes.c_ulong * 16),
                ("sa_flags", ctypes.c_int), ("sa_restorer", ctypes.c_void_p)]


@dataclass(frozen=True)
class Fault:
    """How the processor answered code run in a child.

    outcome: "fault" (a CPU exception reached the handler), "returned" (the code ran to its RET),
        "died" (the child ended otherwise), "timeout" (killed after the time limit).
    signal, si_code, trapno, error_code: the signal and what the kernel saved for it (None unless "fault").
    offset: where the faulting RIP was, in bytes from the start of the code (None unless "fault").
    address: si_addr (the faulting address of a page fault; 0 for #GP).
    returned: RAX when the code returned; scratch: the 64-byte scratch area after the run.
    exit_status: the child's exit code, or minus the signal that killed it.
    """
    outcome: str
    signal: int | None = None
    si_code: int | None = None
    trapno: int | None = None
    error_code: int | None = None
    offset: int | None = None
    address: int | None = None
    returned: int | None = None
    scratch: bytes = b""
    exit_status: int | None = None

    @property
    def faulted(self) -> bool:
        return self.outcome == "fault"

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    @property
    def exception(self) -> str:
        """"#GP", "#UD", … ("" without a fault)."""
        if self.trapno is None:
            return ""
        return EXCEPTIONS.get(self.trapno, f"vecteur {self.trapno}")

    @property
    def is_general_protection(self) -> bool:
        """SIGSEGV from the kernel (SI_KERNEL) for a #GP (vector 13): what a privileged instruction
        executed in ring 3 produces."""
        return self.faulted and (self.signal, self.trapno, self.si_code) == (signal.SIGSEGV, 13, SI_KERNEL)

    def summary(self) -> str:
        """A short French label: "#GP (SIGSEGV, si_code 128)" or "aucune faute"."""
        if self.outcome == "fault":
            return f"{self.exception} ({self.signal_name}, si_code {self.si_code})"
        return "aucune faute" if self.outcome == "returned" else self.describe()

    def describe(self) -> str:
        """One French line for reports."""
        if self.outcome == "fault":
            return (f"{self.signal_name}, trappe {self.trapno} ({self.exception}), si_code {self.si_code}, "
                    f"code d'erreur {self.error_code}, à l'octet {self.offset} du code")
        if self.outcome == "returned":
            return f"aucune faute : le code a rendu la main (RAX = {self.returned:#x})"
        if self.outcome == "timeout":
            return "le processus isolé ne s'est pas terminé dans le délai (tué)"
        return f"le processus isolé s'est terminé sans passer par le gestionnaire (statut {self.exit_status})"

    def as_dict(self) -> dict:
        return {"résultat": self.describe(), "outcome": self.outcome, "signal": self.signal_name or None,
                "si_code": self.si_code, "trapno": self.trapno, "exception": self.exception or None,
                "error_code": self.error_code, "offset": self.offset, "address": self.address,
                "returned": self.returned, "exit_status": self.exit_status}


def decode(page: bytes, exit_status: int | None, timed_out: bool = False) -> Fault:
    """The Fault described by the shared page `page` after the child ended (pure).

    page: the shared page's bytes; exit_status: the child's exit code or -signal (None if unknown);
    timed_out: the parent killed the child.
    """
    word = lambda off: struct.unpack_from("<Q", page, off)[0]  # noqa: E731
    scratch = bytes(page[SCRATCH:SCRATCH + SCRATCH_SIZE])
    state = word(_STATE)
    if state == FAULTED:
        rip, base = word(_RIP), word(_BASE)
        return Fault("fault", signal=word(_SIGNO), si_code=struct.unpack_from("<q", page, _CODE)[0],
                     trapno=word(_TRAPNO), error_code=word(_ERR), offset=rip - base, address=word(_ADDR),
                     scratch=scratch, exit_status=exit_status)
    if state == RETURNED and exit_status == 0:
        return Fault("returned", returned=word(_RETURNED), scratch=scratch, exit_status=exit_status)
    return Fault("timeout" if timed_out else "died", scratch=scratch, exit_status=exit_status)


def _child(page: mmap.mmap, code: bytes) -> None:
    """In the forked child: install the handler, run the code, record its return. Never returns."""
    status = 3
    try:
        page_address = ctypes.addressof(ctypes.c_char.from_buffer(page))
        handler = MachineCode(_handler_code(page_address), restype=None, argtypes=())
        action = _Sigaction(sa_sigaction=handler.address, sa_flags=SA_SIGINFO | SA_RESETHAND)
        libc = ctypes.CDLL(None, use_errno=True)
        for sig in CAUGHT:
            if libc.sigaction(int(sig), ctypes.byref(action), None) != 0:
                raise OSError(ctypes.get_errno(), "sigaction")
        routine = MachineCode(code, argtypes=(ctypes.c_void_p,))
        struct.pack_into("<QQ", page, _BASE, routine.address, 0)
        struct.pack_into("<Q", page, _STATE, STARTED)
        value = routine(page_address + SCRATCH)
        struct.pack_into("<Q", page, _RETURNED, value)
        struct.pack_into("<Q", page, _STATE, RETURNED)
        status = 0
    finally:
        os._exit(status)  # never run the parent's atexit handlers or flush its buffers


def run_isolated(code: bytes, scratch: bytes = b"", timeout: float = 5.0) -> Fault:
    """Run `code` in a forked child and return how it ended.

    code: a routine `u64 f(u8 *scratch)` (System V: scratch pointer in RDI, result in RAX, ends with RET).
    scratch: initial content of the 64-byte scratch area (zero-filled), readable afterwards in Fault.scratch.
    timeout: seconds before the child is killed.
    """
    if len(scratch) > SCRATCH_SIZE:
        raise ValueError(f"scratch is {len(scratch)} bytes, at most {SCRATCH_SIZE}")
    page = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and MAP_SHARED: the child's writes reach us
    page[SCRATCH:SCRATCH + len(scratch)] = scratch
    pid = os.fork()
    if pid == 0:
        _child(page, code)
    deadline, timed_out, delay = time.monotonic() + timeout, False, 0.0002
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            timed_out = True
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    try:
        return decode(bytes(page), os.waitstatus_to_exitcode(status), timed_out)
    finally:
        page.close()


@dataclass(frozen=True)
class Calibration:
    """A fault whose answer is architecturally known, run to check the handler's offsets.

    name: French label; code: the routine; expected: Fault fields that must match."""
    name: str
    code: bytes
    expected: dict


#: Known faults: if these read back right, the siginfo/ucontext offsets above are right on this host.
CALIBRATIONS = (
    # mov byte [0x10], 0 ; ret  -> #PF (14), user write to a not-present page: error code 6, si_addr 0x10
    Calibration("écriture à l'adresse 0x10 (faute de page)", bytes.fromhex("c604251000000000" "c3"),
                {"signal": signal.SIGSEGV, "si_code": 1, "trapno": 14, "error_code": 6, "offset": 0, "address": 0x10}),
    # nop ; ud2 ; ret  -> #UD (6), SIGILL ILL_ILLOPN (2), at byte 1
    Calibration("UD2 (instruction indéfinie)", bytes.fromhex("90" "0f0b" "c3"),
                {"signal": signal.SIGILL, "si_code": 2, "trapno": 6, "offset": 1}),
    # nop ; nop ; int3 ; ret  -> #BP (3), SIGTRAP SI_KERNEL; a trap: RIP points after INT3 (byte 3)
    Calibration("INT3 (point d'arrêt)", bytes.fromhex("9090" "cc" "c3"),
                {"signal": signal.SIGTRAP, "si_code": SI_KERNEL, "trapno": 3, "offset": 3}),
)


def mismatches(fault: Fault, expected: dict) -> dict:
    """field -> (expected, observed) for every field of `expected` that `fault` does not match (pure)."""
    return {k: (v, getattr(fault, k)) for k, v in expected.items() if getattr(fault, k) != v}


def calibration() -> list[tuple[Calibration, Fault]]:
    """Run every known fault of CALIBRATIONS in a child; pair each with what was observed."""
    return [(c, run_isolated(c.code)) for c in CALIBRATIONS]
