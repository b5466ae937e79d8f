"""Emulation with QEMU TCG (claims C06, C07): the same workload, run by an emulator instead of the CPU.

Three programs of our own, written as bytes (no assembler, no compiler at run time):
- `x86_user_program(n)`: a static x86-64 ELF that runs the workload's BODY on n and writes the 8-byte
  result to stdout; run by `qemu-x86_64-static` (TCG user mode: QEMU translates every guest
  instruction, the guest's system calls go to the host kernel).
- `boot_sector(n)`: a 512-byte BIOS boot sector that switches the (emulated) CPU from real mode into
  64-bit long mode and runs the very same BODY bytes at CPL 0, then writes the result to the
  debug console (port 0xE9) and ends QEMU through the isa-debug-exit device (port 0xF4); run by
  `qemu-system-x86_64 -accel tcg` (TCG system mode: a whole emulated PC, BIOS included).
- `aarch64_program(n)`: a static ARM64 ELF computing the same workload with ARM instructions and
  greeting in French; run by `qemu-aarch64-static` on this x86 host (heterogeneous architectures coexist).

Timing: QEMU's start-up (tens of ms) dwarfs a loop, so each measurement runs two processes, one with n
and one with n/10 iterations, and keeps the difference (checks.host.timing.ns_per_iteration). The clock is
the CPU time of our finished child processes (getrusage(RUSAGE_CHILDREN)), so that the other jobs
sharing this machine's cores do not inflate the figure.

The workload (checks/host/workload.py) is a throughput-bound mix of loads, stores, branches and
flag-setting operations, so that the time TCG adds to each guest instruction shows: on this host
(AMD EPYC) TCG user mode runs it ~x6 slower than the CPU, system mode (software MMU) ~x8. The claim
that emulation has a heavy overhead (C07) is checked against workload.EFFICIENCY_LIMIT (x2) with
workload.not_heavy_overhead. The Popek & Goldberg
criterion itself (does the CPU execute the guest's instructions?) is also checked without a clock by
observe_code: under qemu-user the guest's code page is not even executable.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from popek.checks.host import elf, workload
from popek.checks.host.timing import ns_per_iteration

QEMU_USER_X86 = "qemu-x86_64-static"
QEMU_USER_AARCH64 = "qemu-aarch64-static"
QEMU_SYSTEM = "qemu-system-x86_64"

#: What the boot sector writes to the debug console once the emulated CPU is in 64-bit long mode.
BANNER = b"popek: mode long\n"
#: What the ARM64 program writes before its result.
GREETING = b"bonjour de aarch64\n"
#: The value the boot sector writes to isa-debug-exit; QEMU then exits with (value << 1) | 1.
EXIT_VALUE = 0x10
EXIT_STATUS = (EXIT_VALUE << 1) | 1
DEBUGCON_PORT, EXIT_PORT = 0xE9, 0xF4


# ---------------------------------------------------------------------------------------------------
# x86-64 user-mode program (a static ELF around the workload's BODY)

def x86_user_program(n: int) -> bytes:
    """A static x86-64 ELF executable printing workload(n) as 8 little-endian bytes, exit status 0.

    n: the iteration count, patched into the code as an immediate (so that nothing is read at run time).
    """
    code = (bytes.fromhex("48bf") + _u64(n)      # mov  rdi, n
            + workload.BODY                       # rax = workload(rdi)  (the very bytes run natively)
            + bytes.fromhex(
                "50"                              # push rax               ; the result, on the stack
                "b801000000"                      # mov  eax, 1            ; write(
                "bf01000000"                      # mov  edi, 1            ;   stdout,
                "4889e6"                          # mov  rsi, rsp          ;   &result,
                "ba08000000"                      # mov  edx, 8            ;   8)
                "0f05"                            # syscall
                "b8e7000000"                      # mov  eax, 231          ; exit_group(
                "31ff"                            # xor  edi, edi          ;   0)
                "0f05"))                          # syscall
    return elf.static_executable(code, elf.EM_X86_64)


# ---------------------------------------------------------------------------------------------------
# x86-64 boot sector: real mode -> long mode -> BODY at CPL 0 -> port 0xE9 -> isa-debug-exit

_LOAD = 0x7C00  # where the BIOS loads a boot sector
#: rsp of the long-mode code. The workload writes its table just below rsp: that must be a page without
#: code, or TCG would take every store for self-modifying code and retranslate (x30 slower).
BOOT_STACK = 0x6000
# Real-mode part, assembled with GNU as (.code16) and checked with objdump; addresses are absolute
# (0x7C00 + offset) and all lie before BODY, so BODY's length does not move them.
_REAL_MODE = bytes.fromhex(
    "fa"                # 00 cli                         ; no BIOS interrupt from now on
    "fc"                # 01 cld                         ; rep stosw goes upwards
    "e492" "0c02" "e692"  # in al,0x92 ; or al,2 ; out 0x92,al   ; fast A20: all memory addressable
    "31c0"              # 08 xor ax,ax
    "8ed8" "8ec0" "8ed0"  # mov ds,ax ; mov es,ax ; mov ss,ax
    "bf0010"            # 10 mov di,0x1000               ; zero 3 pages at 0x1000..0x3fff:
    "b90018"            # 13 mov cx,0x1800               ;   PML4, PDPT, PD
    "f3ab"              # 16 rep stosw
    "c70600100320"      # 18 mov word [0x1000],0x2003    ; PML4[0] -> PDPT, present+writable
    "c70600200330"      # 1e mov word [0x2000],0x3003    ; PDPT[0] -> PD
    "c70600308300"      # 24 mov word [0x3000],0x0083    ; PD[0]: 2 MiB page at 0, identity mapped
    "660f0116787c"      # 2a lgdt [0x7c78]               ; the GDT below (a 64-bit code segment)
    "0f20e0" "6683c820" "0f22e0"  # mov eax,cr4 ; or eax,0x20 ; mov cr4,eax   ; PAE
    "66b800100000" "0f22d8"       # mov eax,0x1000 ; mov cr3,eax             ; page tables
    "66b9800000c0" "0f32" "660d00010000" "0f30"  # rdmsr EFER ; or eax,0x100 ; wrmsr  ; LME
    "0f20c0" "660d01000080" "0f22c0"  # mov eax,cr0 ; or eax,0x80000001 ; mov cr0,eax  ; PE+PG
    "ea8f7c0800"        # 5f jmp 0x08:0x7c8f             ; CS = 64-bit segment: long mode
    "0f1f4000"          # 64 nop (align the GDT)
    "0000000000000000"  # 68 GDT[0]: null
    "00000000009a2000"  # 70 GDT[1]: code, present, DPL 0, L=1 (64-bit)
    "0f00" "687c0000"   # 78 GDT descriptor: limit 15, base 0x7c68
) + BANNER              # 7e the banner (17 bytes)
_LONG_MODE = bytes.fromhex(
    "488d35e8ffffff"    # 8f lea rsi,[rip-0x18]          ; the banner
    "b911000000"        # 96 mov ecx,17
    "66bae900"          # 9b mov dx,0xe9
    "f36e"              # 9f rep outsb                   ; banner -> debug console
    "bc") + BOOT_STACK.to_bytes(4, "little") + bytes.fromhex(  # a1 mov esp,BOOT_STACK  (zero-extended)
    "48bf")             # a6 mov rdi, n  (imm64 follows)
_EPILOGUE = bytes.fromhex(
    "b908000000"        # mov ecx,8
    "e6e9"              # out 0xe9,al                    ; result, low byte first
    "48c1e808"          # shr rax,8
    "e2f8"              # loop (the out)
    "b010"              # mov al,EXIT_VALUE
    "e6f4"              # out 0xf4,al                    ; isa-debug-exit: QEMU ends, status 33
    "f4" "ebfd")        # hlt ; jmp hlt                  ; (never reached)
assert len(_REAL_MODE) == 0x8F and _REAL_MODE.endswith(BANNER)


def boot_sector(n: int) -> bytes:
    """A 512-byte BIOS boot sector that computes workload(n) in long mode and reports it on port 0xE9.

    n: the iteration count (an immediate in the code). A huge n (e.g. 1 << 62) makes a guest that
        computes for as long as anyone cares to watch (guest_process uses that).
    """
    code = _REAL_MODE + _LONG_MODE + _u64(n) + workload.BODY + _EPILOGUE
    if len(code) > 510:
        raise ValueError(f"boot sector code is {len(code)} bytes, more than 510")
    return code + bytes(510 - len(code)) + b"\x55\xaa"


def system_command(image: str, qemu: str = QEMU_SYSTEM, name: str | None = None) -> list[str]:
    """The qemu-system command line that boots `image` (a raw boot sector) under TCG.

    image: path of the boot sector file; qemu: the binary; name: a guest name (also names QEMU's
    threads, e.g. "CPU 0/TCG", so that the virtual CPU can be found among the host's threads).
    Never -accel kvm here: on a PVM host that is ~300x slower than TCG for guest-kernel code.
    """
    cmd = [qemu, "-accel", "tcg", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-m", "16", "-drive", f"file={image},format=raw,if=floppy",
           "-debugcon", "stdio", "-device", f"isa-debug-exit,iobase={EXIT_PORT:#x},iosize=4"]
    if name:
        cmd += ["-name", f"{name},debug-threads=on"]
    return cmd


# ---------------------------------------------------------------------------------------------------
# aarch64 program: the same workload with ARM instructions, and a greeting

def _movz(rd: int, imm16: int, shift: int = 0) -> int:
    return 0xD2800000 | (shift // 16) << 21 | (imm16 & 0xFFFF) << 5 | rd


def _movk(rd: int, imm16: int, shift: int) -> int:
    return 0xF2800000 | (shift // 16) << 21 | (imm16 & 0xFFFF) << 5 | rd


def _mov64(rd: int, value: int) -> list[int]:
    """movz + 3 movk: any 64-bit constant into Xrd."""
    return [_movz(rd, value)] + [_movk(rd, value >> s, s) for s in (16, 32, 48)]


_SVC0 = 0xD4000001
_SYS_WRITE, _SYS_EXIT_GROUP = 64, 94  # arm64 Linux syscall numbers (asm-generic)


#: workload.BODY's computation in ARM64 instructions (x0 = SEED, x1 = n on entry; x0 = the result,
#: also stored at [sp], on exit). Assembled with llvm-mc -triple=aarch64 and checked with llvm-objdump.
#: ARM64 Linux has no red zone: the table is below a lowered sp. ADDS/ADC carry and CMP/CSEL "lo"
#: are the x86 ADD/ADC carry and CMP/CMOVB; ROR by 64-k is ROL by k.
_A64_BODY = (
    0xD10103FF,  # sub  sp, sp, #64          ; t[0..7] at [sp]
    0xAA0003E6,  # mov  x6, x0
    0xD28000E5,  # mov  x5, #7
    0xF8257BE6,  # fill: str x6, [sp, x5, lsl #3]   ; t[k] = rol(SEED, 8 * (7 - k))
    0x93C6E0C6,  # ror  x6, x6, #56
    0xF10004A5,  # subs x5, x5, #1
    0x54FFFFA5,  # b.pl fill
    0xAA2003E3,  # mvn  x3, x0                ; y = ~SEED
    0xAA0003E4,  # mov  x4, x0                ; z = SEED (x0 = x = SEED)
    0xB4000201,  # cbz  x1, done
    0x92400825,  # loop: and x5, x1, #7       ; i = n & 7
    0xF8657BE6,  # ldr  x6, [sp, x5, lsl #3]  ; v = t[i]
    0xAB060000,  # adds x0, x0, x6            ; x += v (C = carry)
    0x9A010063,  # adc  x3, x3, x1            ; y += n + carry
    0xCA0300C7,  # eor  x7, x6, x3
    0x93C7CCE7,  # ror  x7, x7, #51           ; w = rol(v ^ y, 13)
    0xF8257BE7,  # str  x7, [sp, x5, lsl #3]  ; t[i] = w
    0x37000061,  # tbnz w1, #0, odd
    0xCB070084,  # sub  x4, x4, x7            ; even: z -= w
    0x14000002,  # b    next
    0xCA000084,  # odd: eor x4, x4, x0        ; odd: z ^= x
    0xEB03009F,  # next: cmp x4, x3
    0x9A8430C4,  # csel x4, x6, x4, lo        ; z < y (unsigned) ? v : z
    0xF1000421,  # subs x1, x1, #1
    0x54FFFE41,  # b.ne loop
    0xCA030000,  # done: eor x0, x0, x3
    0xCA040000,  # eor  x0, x0, x4            ; x ^ y ^ z
    0xF90003E0,  # str  x0, [sp]              ; the result, for write()
)


def aarch64_program(n: int) -> bytes:
    """A static ARM64 ELF: prints GREETING, then workload(n) as 8 little-endian bytes; exit status 0.

    n: the iteration count (patched in as four 16-bit immediates).
    """
    words = (_mov64(0, workload.SEED)                  # x0 = SEED
             + _mov64(1, n)                            # x1 = n
             + list(_A64_BODY)                         # x0 = workload(n), stored at [sp]
             + [_movz(0, 1)])                          # mov  x0, #1           ; write(stdout,
    adr_index = len(words)
    words += [0,                                       # adr  x1, greeting     ;   greeting,
              _movz(2, len(GREETING)), _movz(8, _SYS_WRITE), _SVC0,  # len)
              _movz(0, 1), 0x910003E1,                 # mov x0, #1 ; mov x1, sp  ; write(stdout, &result,
              _movz(2, 8), _movz(8, _SYS_WRITE), _SVC0,  # 8)
              _movz(0, 0), _movz(8, _SYS_EXIT_GROUP), _SVC0]  # exit_group(0)
    offset = (len(words) - adr_index) * 4              # the greeting follows the last instruction
    words[adr_index] = 0x10000000 | (offset & 3) << 29 | (offset >> 2 & 0x7FFFF) << 5 | 1
    code = b"".join(w.to_bytes(4, "little") for w in words) + GREETING
    return elf.static_executable(code, elf.EM_AARCH64)


# ---------------------------------------------------------------------------------------------------
# Running them

@dataclass(frozen=True)
class ProgramRun:
    """One run of one of our programs under an emulator.

    command: what was run; returncode: its exit status (negative: killed by that signal);
    output: everything it wrote (stdout for user mode, the debug console for system mode);
    result: the 8-byte workload result found at the end of the output (None if absent).
    """
    command: tuple[str, ...]
    returncode: int
    output: bytes
    stderr: str

    @property
    def result(self) -> int | None:
        return int.from_bytes(self.output[-8:], "little") if len(self.output) >= 8 else None

    @property
    def text(self) -> str:
        """The output before the 8 result bytes, decoded."""
        return self.output[:-8].decode("utf-8", "replace")


def run_program(program: bytes, qemu: str, timeout: float = 30.0) -> ProgramRun:
    """Write `program` (an ELF executable) to a temporary file and run it with the user-mode emulator `qemu`.

    program: the executable's bytes; qemu: e.g. QEMU_USER_X86 or QEMU_USER_AARCH64;
    timeout: seconds before the run is abandoned (subprocess.TimeoutExpired).
    """
    with tempfile.TemporaryDirectory(prefix="popek-emu-") as tmp:
        path = os.path.join(tmp, "programme")
        elf.write_executable(path, program)
        return _run([_which(qemu), path], timeout)


def run_boot_sector(image: bytes, qemu: str = QEMU_SYSTEM, timeout: float = 30.0) -> ProgramRun:
    """Boot the 512-byte `image` in an emulated PC (TCG) until it exits through isa-debug-exit.

    image: a boot sector (boot_sector(n)); qemu: the qemu-system binary; timeout: seconds.
    """
    with tempfile.TemporaryDirectory(prefix="popek-emu-") as tmp:
        path = os.path.join(tmp, "secteur-amorcage.img")
        with open(path, "wb") as f:
            f.write(image)
        return _run(system_command(path, _which(qemu)), timeout)


def _run(cmd: list[str], timeout: float) -> ProgramRun:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return ProgramRun(tuple(cmd), proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")[-2000:])


def _which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} introuvable dans le PATH")
    return path


def children_cpu_ns() -> int:
    """CPU time (user + system) of this process's finished and waited-for children, in ns."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((ru.ru_utime + ru.ru_stime) * 1e9)


def _timed(executor: str, iterations: int, samples: int, run_one, expected_status: int, note: str):
    """Time `run_one(n) -> ProgramRun` with ns_per_iteration; check every run ended as expected."""
    results: dict[int, int | None] = {}

    def run(n: int) -> None:
        out = run_one(n)
        if out.returncode != expected_status:
            raise RuntimeError(f"{' '.join(out.command)} : code de sortie {out.returncode} "
                               f"(attendu {expected_status}) ; stderr : {out.stderr.strip()[-500:]}")
        if results.setdefault(n, out.result) != out.result:
            raise RuntimeError(f"{executor} : deux exécutions pour n={n} donnent deux résultats différents")

    timing = ns_per_iteration(run, iterations, samples=samples, clock=children_cpu_ns)
    return workload.WorkloadRun(executor, iterations, results[iterations], timing, note,
                                {"clock": "temps CPU des processus fils (getrusage)"})


def run_workload_user(iterations: int = 20_000_000, samples: int = 3,
                      qemu: str = QEMU_USER_X86) -> workload.WorkloadRun:
    """The workload under TCG user mode (qemu-x86_64-static running x86_user_program).

    iterations: n of the long run (the short one is n/10; QEMU's start-up cancels in the difference);
    samples: (long, short) pairs timed; qemu: the user-mode emulator binary.
    """
    return _timed("TCG utilisateur", iterations, samples,
                  lambda n: run_program(x86_user_program(n), qemu), 0,
                  "QEMU traduit chaque instruction de l'invité (TCG, mode utilisateur)")


def run_workload_system(iterations: int = 20_000_000, samples: int = 3,
                        qemu: str = QEMU_SYSTEM) -> workload.WorkloadRun:
    """The workload under TCG system mode: a whole emulated PC boots boot_sector(n) in long mode, CPL 0.

    iterations: n of the long run (the short one is n/10; BIOS boot cancels in the difference);
    samples: (long, short) pairs timed; qemu: the qemu-system binary.
    """
    return _timed("TCG système", iterations, samples,
                  lambda n: run_boot_sector(boot_sector(n), qemu), EXIT_STATUS,
                  "PC entier émulé (BIOS, mode réel puis mode long 64 bits, CPL 0), TCG")


def against_native(run_emulated, iterations: int = 20_000_000, samples: int = 5):
    """Time the workload natively and with `run_emulated` (run_workload_user or run_workload_system).

    iterations, samples: as for ns_per_iteration. The native side is timed with the thread's CPU
    time (time.thread_time_ns), the emulated side with its processes' CPU time: both count only the
    time a core actually worked for them. Returns (native run, emulated run, timing.Ratio).
    """
    from popek.checks.host.timing import Ratio
    native = workload.run_native(iterations, samples, clock=time.thread_time_ns)
    emulated = run_emulated(iterations, samples)
    return native, emulated, Ratio(emulated.executor, native.executor, emulated.timing.median, native.timing.median)


# ---------------------------------------------------------------------------------------------------
# Who executes the guest's bytes? (efficiency in Popek & Goldberg's sense, and control)

#: An iteration count that keeps a guest busy far longer than anyone watches (killed when seen).
FOREVER = 1 << 62


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps: address range, permissions ("r-xp"...), and the file (or "")."""
    start: int
    end: int
    perms: str
    path: str

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def executable(self) -> bool:
        return "x" in self.perms


def read_maps(pid: int) -> list[Mapping]:
    """The memory mappings of process `pid` (from /proc/PID/maps)."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            out.append(Mapping(lo, hi, fields[1], fields[5].strip() if len(fields) > 5 else ""))
    return out


@dataclass(frozen=True)
class CodeView:
    """How a running program's own code is mapped in the process that runs it.

    runner: "natif" or the emulator's path; program_mappings: the mappings of the program file;
    executable_anonymous: the executable mappings backed by no file (QEMU's translation cache).
    """
    runner: str
    program_mappings: tuple[Mapping, ...]
    executable_anonymous: tuple[Mapping, ...]

    @property
    def program_executable(self) -> bool:
        """Can the host CPU fetch instructions from the program's own pages?"""
        return any(m.executable for m in self.program_mappings)


def observe_code(program: bytes, qemu: str | None = None, timeout: float = 5.0) -> CodeView:
    """Start `program` (running forever, e.g. x86_user_program(FOREVER)), look at its mappings, kill it.

    program: an ELF executable's bytes; qemu: a user-mode emulator to run it with, or None to let the
    kernel run it directly; timeout: seconds to wait for the program's mapping to appear.
    """
    with tempfile.TemporaryDirectory(prefix="popek-emu-") as tmp:
        path = os.path.join(tmp, "programme")
        elf.write_executable(path, program)
        cmd = [_which(qemu), path] if qemu else [path]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while True:
                maps = read_maps(proc.pid)
                mine = tuple(m for m in maps if m.path == path)
                if mine or time.monotonic() > deadline or proc.poll() is not None:
                    break
                time.sleep(0.01)
            if not mine:
                raise RuntimeError(f"{' '.join(cmd)} : le programme n'apparaît pas dans /proc/{proc.pid}/maps")
            return CodeView("natif" if qemu is None else cmd[0], mine,
                            tuple(m for m in maps if m.executable and not m.path))
        finally:
            proc.kill()
            proc.wait()


def trace_guest_syscalls(program: bytes, qemu: str = QEMU_USER_X86) -> tuple[ProgramRun, list[str]]:
    """Run `program` under qemu-user with -strace: every system call of the guest, as QEMU handles it.

    Returns the run and the syscall lines QEMU printed (e.g. "write(1,0x...,8) = 8", "exit_group(0)").
    """
    with tempfile.TemporaryDirectory(prefix="popek-emu-") as tmp:
        path = os.path.join(tmp, "programme")
        elf.write_executable(path, program)
        run = _run([_which(qemu), "-strace", path], 30.0)
    calls = [line.split(" ", 1)[1] for line in run.stderr.splitlines()
             if line.split(" ", 1)[0].isdigit() and " " in line]
    return run, calls


@dataclass(frozen=True)
class DirectExec:
    """What the host kernel does with a program of another architecture run directly.

    errno / error: the exec failure (8, ENOEXEC "Exec format error") or None;
    binfmt_handler: the binfmt_misc interpreter the kernel handed it to instead (e.g. qemu-aarch64), or "".
    """
    errno: int | None
    error: str
    binfmt_handler: str
    run: ProgramRun | None


def direct_exec(program: bytes, binfmt_dir: str = "/proc/sys/fs/binfmt_misc") -> DirectExec:
    """Ask the host kernel to execve() `program` itself (no emulator named).

    binfmt_dir: where binfmt_misc handlers are listed; if the program runs, the handler whose magic
    matched is reported (the kernel then runs it through that emulator: still emulation).
    """
    with tempfile.TemporaryDirectory(prefix="popek-emu-") as tmp:
        path = os.path.join(tmp, "programme")
        elf.write_executable(path, program)
        try:
            run = _run([path], 30.0)
        except OSError as exc:
            return DirectExec(exc.errno, exc.strerror or str(exc), "", None)
    return DirectExec(None, "", _binfmt_interpreter(program, binfmt_dir), run)


def _binfmt_interpreter(program: bytes, binfmt_dir: str) -> str:
    """The interpreter of the enabled binfmt_misc handler whose magic/mask matches `program`, or ""."""
    try:
        names = os.listdir(binfmt_dir)
    except OSError:
        return ""
    for name in names:
        try:
            with open(os.path.join(binfmt_dir, name)) as f:
                fields = dict(line.strip().split(" ", 1) for line in f if " " in line.strip())
        except (OSError, ValueError):
            continue
        magic, mask = bytes.fromhex(fields.get("magic", "")), bytes.fromhex(fields.get("mask", ""))
        offset = int(fields.get("offset", "0"))
        mask = mask or b"\xff" * len(magic)
        window = program[offset:offset + len(magic)]
        if magic and len(window) == len(magic) and all((b & k) == (m & k) for b, m, k in zip(window, magic, mask)):
            return fields.get("interpreter", name)
    return ""


def _u64(n: int) -> bytes:
    if not 0 <= n < 1 << 64:
        raise ValueError(f"n = {n} is not an unsigned 64-bit integer")
    return n.to_bytes(8, "little")


# ---------------------------------------------------------------------------------------------------
# Isolation (C07): what an emulated guest can reach of the memory of the host process that emulates it

#: Guest RAM of system_command ("-m 16"): the guest searches all of it.
GUEST_RAM = 16 << 20
# Long mode, CPL 0, after the common prologue (rdi = a random mask). Assembled with GNU as (.code64) and
# checked with objdump. It maps the 16 MiB of RAM (PD[0..7], 2 MiB pages), then reads the 8 bytes at
# every byte address of it and counts the two marks: r9 = own mark (in its own RAM, the positive
# control), r10 = the host's mark. Neither is in the code: only mark XOR mask is, the mask comes in rdi.
# It sends the own count on port 0xE9, then leaves the host count in rax for the epilogue.
_SCAN = bytes.fromhex(
    "4989f8"            # 00 mov r8,rdi                  ; mask
    "be00300000"        # 03 mov esi,0x3000              ; the page directory
    "b883000000"        # 08 mov eax,0x83                ; 2 MiB page at 0, present+writable
    "b908000000"        # 0d mov ecx,8
    "488906"            # 12 mov [rsi],rax               ; PD[i] = i * 2 MiB
    "480500002000"      # 15 add rax,0x200000
    "4883c608"          # 1b add rsi,8
    "e2f1"              # 1f loop 0x12
    "0f20d8" "0f22d8"   # 21 mov rax,cr3 ; mov cr3,rax    ; flush the TLB
    "49b9")             # 27 movabs r9, own mark ^ mask  (imm64 follows)
_SCAN_HOST = bytes.fromhex(
    "4d31c1"            # 31 xor r9,r8
    "49ba")             # 34 movabs r10, host mark ^ mask  (imm64 follows)
_SCAN_LOOP = bytes.fromhex(
    "4d31c2"            # 3e xor r10,r8
    "31db" "31ed" "31f6"  # 41 xor ebx,ebx ; xor ebp,ebp ; xor esi,esi   ; counts, address
    "41bb") + (GUEST_RAM - 7).to_bytes(4, "little") + bytes.fromhex(  # 47 mov r11d, last address
    "488b06"            # 4d mov rax,[rsi]               ; 8 bytes at every byte address
    "4c39c8" "7503" "48ffc3"  # 50 cmp rax,r9 ; jne +3 ; inc rbx
    "4c39d0" "7503" "48ffc5"  # 58 cmp rax,r10 ; jne +3 ; inc rbp
    "48ffc6"            # 60 inc rsi
    "4c39de" "72e5"     # 63 cmp rsi,r11 ; jb 0x4d
    "4889d8"            # 68 mov rax,rbx
    "b908000000"        # 6b mov ecx,8
    "e6e9" "48c1e808" "e2f8"  # 70 out 0xe9,al ; shr rax,8 ; loop 0x70   ; own count
    "4889e8")           # 78 mov rax,rbp                 ; host count, sent by the epilogue
#: Offsets in the boot sector where the marks are put (odd: the search is byte by byte, not aligned).
OWN_MARK_AT, LEAK_MARK_AT = 401, 451
#: The environment variable through which the host's mark lives in QEMU's own memory.
HOST_MARK_ENV = "POPEK_MARQUE_HOTE"


def isolation_sector(own: bytes, host: bytes, mask: int, leak: bool = False) -> bytes:
    """The boot sector of the isolation probe: own mark at OWN_MARK_AT, and (leak=True, the fault
    that shows the probe can fail) the host's mark at LEAK_MARK_AT, as if it had leaked into the guest."""
    k1 = int.from_bytes(own, "little") ^ mask
    k2 = int.from_bytes(host, "little") ^ mask
    code = (_REAL_MODE + _LONG_MODE + _u64(mask) + _SCAN + _u64(k1) + _SCAN_HOST + _u64(k2) + _SCAN_LOOP
            + _EPILOGUE)
    if len(code) > OWN_MARK_AT:
        raise ValueError(f"isolation code is {len(code)} bytes, it would overlap the marks")
    sector = bytearray(code + bytes(510 - len(code)) + b"\x55\xaa")
    sector[OWN_MARK_AT:OWN_MARK_AT + 8] = own
    if leak:
        sector[LEAK_MARK_AT:LEAK_MARK_AT + 8] = host
    return bytes(sector)


@dataclass(frozen=True)
class Isolation:
    """What the isolation probe saw.

    own_found: how many times the guest found its own mark in its RAM (>= 1: the search works);
    host_found: how many times it found the host's mark (0: isolated); host_mark_in_qemu: the host's
    mark was in QEMU's process memory during the search (read from /proc/PID/environ); run: the run;
    searched: bytes of guest RAM searched.
    """
    own_found: int | None
    host_found: int | None
    host_mark_in_qemu: bool
    searched: int
    leak: bool
    run: ProgramRun

    def describe(self) -> str:
        return (f"l'invité a fouillé {self.searched >> 20} Mio de sa mémoire octet par octet : sa propre marque "
                f"trouvée {self.own_found} fois, la marque de l'hôte {self.host_found} fois (présente dans la "
                f"mémoire du processus QEMU : {'oui' if self.host_mark_in_qemu else 'non'}"
                + (", et copiée exprès dans la mémoire de l'invité)" if self.leak else ")"))


def isolation_probe(qemu: str = QEMU_SYSTEM, leak: bool = False, timeout: float = 60.0) -> Isolation:
    """Boot the isolation sector under TCG with a fresh random mark in QEMU's own memory (its environment).

    qemu: the qemu-system binary; leak: also copy the host's mark into the guest's RAM (the fault);
    timeout: seconds before the run is abandoned.
    """
    import secrets
    own, host = (secrets.token_hex(4).encode() for _ in range(2))
    mask = int.from_bytes(secrets.token_bytes(8), "little")
    with tempfile.TemporaryDirectory(prefix="popek-emu-") as tmp:
        path = os.path.join(tmp, "secteur-amorcage.img")
        with open(path, "wb") as f:
            f.write(isolation_sector(own, host, mask, leak))
        cmd = system_command(path, _which(qemu))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, HOST_MARK_ENV: host.decode()})
        try:
            in_qemu = _environ_has(proc, f"{HOST_MARK_ENV}={host.decode()}".encode())
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    run = ProgramRun(tuple(cmd), proc.returncode, out, err.decode("utf-8", "replace")[-2000:])
    body = out[len(BANNER):]
    own_found = int.from_bytes(body[:8], "little") if len(body) >= 16 else None
    host_found = int.from_bytes(body[8:16], "little") if len(body) >= 16 else None
    return Isolation(own_found, host_found, in_qemu, GUEST_RAM, leak, run)


def _environ_has(proc: subprocess.Popen, entry: bytes, timeout: float = 2.0) -> bool:
    """Whether `entry` is in the running `proc`'s environment, read from its memory (/proc/PID/environ).
    Right after the spawn the file can still read empty (the new program not yet set up): retry."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as f:
                data = f.read()
        except OSError:
            return False
        if data:
            return entry in data.split(b"\0")
        time.sleep(0.005)
    return False
