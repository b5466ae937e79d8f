"""A minimal VMM of our own over the KVM API: one vCPU in 64-bit long mode, a few MiB of guest memory,
and the three Popek–Goldberg properties observed from the VMM's side (claims C02, C06, C08).

- control: the guest's port I/O (OUT/IN), HLT and accesses to unbacked guest-physical memory (MMIO) come
  back to us as KVM exits, and a value the VMM supplies reaches the guest (`control_probe`);
- equivalence: the same machine code gives the same registers natively and in the guest
  (`run_native` / `Guest.run_code`, fed by programs built with `encode`);
- efficiency: the workload loop (checks/host/workload.py) timed in the guest at CPL 3 and at CPL 0
  against native (`run_workload`).

Guest layout (guest-physical = guest-virtual, identity mapped by 2 MiB pages over the first GiB):

    0x1000 PML4   0x2000 PDPT   0x3000 PD (512 x 2 MiB, user bit set so that CPL 3 may run there)
    0x10000 code                 0x10000000 (256 MiB): unbacked -> MMIO exits

Every program ends with `out 0xf4, al` (E6 F4): it names its port in the instruction and clobbers no
register, so the registers we read afterwards are exactly the program's. At CPL 3 an OUT would #GP,
so the guest runs with RFLAGS.IOPL = 3, which allows port I/O at any CPL.
"""
from __future__ import annotations

import ctypes
import mmap
import random
import struct
import time
from dataclasses import dataclass, field

from popek.checks.host import timing
from popek.checks.host import kvm, workload
from popek.checks.host.machine import MachineCode

MEM_SIZE = 0x400000            # 4 MiB of guest RAM at guest-physical 0
PML4, PDPT, PD = 0x1000, 0x2000, 0x3000
CODE_ADDR = 0x10000
STACK_TOP = 0x200000           # rsp: the workload keeps its table in the 64 bytes below
MMIO_ADDR = 0x10000000         # no memory slot there: loads and stores exit to the VMM
DONE_PORT = 0xF4               # `out 0xf4, al`: the end-of-program marker
DONE = bytes([0xE6, DONE_PORT])
HLT = b"\xf4"

# Page-table entry bits.
_P, _RW, _US, _PS = 1, 2, 4, 0x80
# Control bits.
CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1, 2, 0x10, 0x20, 1 << 16, 1 << 31
CR4_PAE = 1 << 5
EFER_LME, EFER_LMA = 1 << 8, 1 << 10
RFLAGS_FIXED, RFLAGS_IOPL3 = 0x2, 0x3000

#: Registers a generated program may use: every GPR but rsp (the native caller's stack).
PROGRAM_REGS = tuple(r for r in kvm.GPR_NAMES if r != "rsp")


# ---------------------------------------------------------------------------------------------------
# Guest set-up (pure: bytes and field values, unit-tested without /dev/kvm)
# ---------------------------------------------------------------------------------------------------
def page_tables(user: bool = True) -> dict[int, bytes]:
    """Identity map of the first GiB with 2 MiB pages: guest-physical address -> table bytes.

    user: set the U/S bit at every level so that CPL 3 code can execute and access the pages.
    """
    flags = _P | _RW | (_US if user else 0)
    pml4 = struct.pack("<Q", PDPT | flags) + bytes(4096 - 8)
    pdpt = struct.pack("<Q", PD | flags) + bytes(4096 - 8)
    pd = b"".join(struct.pack("<Q", (i << 21) | flags | _PS) for i in range(512))
    return {PML4: pml4, PDPT: pdpt, PD: pd}


def long_mode_segments(cpl: int) -> tuple[dict, dict]:
    """(code, data) kvm_segment fields for flat 64-bit segments at privilege `cpl` (0 or 3).

    No GDT is needed: KVM_SET_SREGS loads the segment caches directly. The selectors still carry
    the RPL so that CS and SS agree with the CPL (KVM takes the CPL from SS.DPL / CS).
    """
    if cpl not in (0, 3):
        raise ValueError(f"cpl must be 0 or 3, not {cpl}")
    code = dict(base=0, limit=0xFFFFFFFF, selector=(0x18 | 3) if cpl else 0x08, type=0xB, present=1,
                dpl=cpl, db=0, s=1, l=1, g=1)
    data = dict(base=0, limit=0xFFFFFFFF, selector=(0x20 | 3) if cpl else 0x10, type=0x3, present=1,
                dpl=cpl, db=1, s=1, l=0, g=1)
    return code, data


def configure_long_mode(sregs: kvm.Sregs, cpl: int) -> kvm.Sregs:
    """Turn `sregs` (as read from a fresh vCPU) into 64-bit long mode with paging at `cpl`."""
    code, data = long_mode_segments(cpl)
    for name, value in code.items():
        setattr(sregs.cs, name, value)
    for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
        for name, value in data.items():
            setattr(seg, name, value)
    sregs.cr3 = PML4
    sregs.cr4 = CR4_PAE
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG
    sregs.efer = EFER_LME | EFER_LMA
    return sregs


# ---------------------------------------------------------------------------------------------------
# A tiny assembler for the equivalence property: register-only ALU operations
# ---------------------------------------------------------------------------------------------------
_REG_NUM = {name: i for i, name in enumerate(("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                               "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"))}
_GROUP1 = {"add": 0, "or": 1, "and": 4, "sub": 5, "xor": 6}          # 81 /digit id  (r/m64, imm32)
_GROUP1_RR = {"add": 0x01, "or": 0x09, "and": 0x21, "sub": 0x29, "xor": 0x31}  # op r/m64, r64
_SHIFT = {"rol": 0, "shl": 4}                                          # C1 /digit ib
_UNARY = {"not": 2, "neg": 3}                                          # F7 /digit
MNEMONICS = tuple(_GROUP1) + ("imul",) + tuple(_SHIFT) + tuple(_UNARY)


@dataclass(frozen=True)
class Op:
    """One instruction: `mnemonic dst, src|imm` (src: a register name for the two-register forms).

    Immediate forms: add/sub/xor/and/or/imul take a signed 32-bit imm (sign-extended to 64 bits by the
    CPU), rol/shl an imm8 count (0-63), not/neg none. Register forms: add/sub/xor/and/or dst, src.
    """
    mnemonic: str
    dst: str
    imm: int | None = None
    src: str | None = None

    def __str__(self) -> str:
        operand = self.src if self.src else (hex(self.imm) if self.imm is not None else "")
        if self.mnemonic == "imul":
            operand = f"{self.dst}, {operand}"
        return f"{self.mnemonic} {self.dst}" + (f", {operand}" if operand else "")


def _rex(reg_field: int, rm: int) -> int:
    return 0x48 | (0x04 if reg_field >= 8 else 0) | (0x01 if rm >= 8 else 0)


def _modrm(reg_field: int, rm: int) -> int:
    return 0xC0 | ((reg_field & 7) << 3) | (rm & 7)


def encode(op: Op) -> bytes:
    """The x86-64 machine code of `op` (always the long immediate forms: one encoding per op)."""
    d = _REG_NUM[op.dst]
    if op.src is not None:
        s = _REG_NUM[op.src]
        return bytes([_rex(s, d), _GROUP1_RR[op.mnemonic], _modrm(s, d)])
    if op.mnemonic in _GROUP1:
        return bytes([_rex(0, d), 0x81, _modrm(_GROUP1[op.mnemonic], d)]) + struct.pack("<i", op.imm)
    if op.mnemonic == "imul":   # imul dst, dst, imm32: 69 /r id
        return bytes([_rex(d, d), 0x69, _modrm(d, d)]) + struct.pack("<i", op.imm)
    if op.mnemonic in _SHIFT:
        return bytes([_rex(0, d), 0xC1, _modrm(_SHIFT[op.mnemonic], d), op.imm & 0x3F])
    if op.mnemonic in _UNARY:
        return bytes([_rex(0, d), 0xF7, _modrm(_UNARY[op.mnemonic], d)])
    raise ValueError(f"unknown mnemonic {op.mnemonic!r}")


def assemble(ops) -> bytes:
    return b"".join(encode(op) for op in ops)


# The native harness around a program: load the 15 registers from the block at rdi, run the program,
# store them back. Callee-saved registers are preserved for the C caller.
#   push rbx; push rbp; push r12; push r13; push r14; push r15; push rdi
#   mov REG, [rdi + 8*i]   for every REG of PROGRAM_REGS, rdi last
#   <program>
#   xchg [rsp], rdi          ; rdi = block, [rsp] = the program's rdi
#   mov [rdi + 8*i], REG     for every REG but rdi
#   pop rax; mov [rdi + 8*i_rdi], rax
#   pop r15; pop r14; pop r13; pop r12; pop rbp; pop rbx; ret
def _mem_op(opcode: int, reg: str, disp: int) -> bytes:
    r = _REG_NUM[reg]
    # mod=10 (disp32), rm=rdi(7): [rdi + disp32]
    return bytes([0x48 | (0x04 if r >= 8 else 0), opcode, 0x80 | ((r & 7) << 3) | 7]) + struct.pack("<i", disp)


def native_harness(program: bytes) -> bytes:
    """Machine code `void f(u64 *block)` running `program` on the registers held in `block`
    (PROGRAM_REGS order) and writing the resulting registers back into it."""
    order = [r for r in PROGRAM_REGS if r != "rdi"] + ["rdi"]
    head = bytes.fromhex("53" "55" "4154" "4155" "4156" "4157" "57")
    load = b"".join(_mem_op(0x8B, r, 8 * PROGRAM_REGS.index(r)) for r in order)
    xchg = bytes.fromhex("48873c24")
    store = b"".join(_mem_op(0x89, r, 8 * PROGRAM_REGS.index(r)) for r in order if r != "rdi")
    tail = bytes.fromhex("58") + _mem_op(0x89, "rax", 8 * PROGRAM_REGS.index("rdi")) \
        + bytes.fromhex("415f" "415e" "415d" "415c" "5d" "5b" "c3")
    return head + load + program + xchg + store + tail


def run_native(program: bytes, regs: dict[str, int]) -> dict[str, int]:
    """Run `program` natively (through MachineCode) from registers `regs`; return PROGRAM_REGS after."""
    block = (ctypes.c_uint64 * len(PROGRAM_REGS))(*(regs.get(r, 0) for r in PROGRAM_REGS))
    MachineCode(native_harness(program), restype=None, argtypes=(ctypes.c_void_p,))(ctypes.addressof(block))
    return dict(zip(PROGRAM_REGS, (int(v) for v in block)))


def random_program(rng: random.Random, length: int) -> list[Op]:
    """`length` random ops over PROGRAM_REGS (used for a quick smoke; the property uses hypothesis)."""
    ops = []
    for _ in range(length):
        m = rng.choice(MNEMONICS + ("add", "xor"))
        dst = rng.choice(PROGRAM_REGS)
        if m in _UNARY:
            ops.append(Op(m, dst))
        elif m in _SHIFT:
            ops.append(Op(m, dst, rng.randrange(64)))
        elif m != "imul" and rng.random() < 0.3:
            ops.append(Op(m, dst, src=rng.choice(PROGRAM_REGS)))
        else:
            ops.append(Op(m, dst, rng.randrange(-2**31, 2**31)))
    return ops


# ---------------------------------------------------------------------------------------------------
# The guest
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exit:
    """One return from KVM_RUN, decoded: reason name and the fields that matter for it."""
    reason: int
    name: str
    port: int | None = None
    direction: str | None = None      # "out" | "in"
    size: int | None = None
    data: bytes = b""
    phys_addr: int | None = None
    is_write: bool | None = None

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if v not in (None, b"")}
        if self.data:
            d["data"] = self.data.hex()
        if self.phys_addr is not None:
            d["phys_addr"] = hex(self.phys_addr)
        return d


class GuestError(RuntimeError):
    """The guest stopped in a way the program did not plan (unexpected exit reason)."""


class Guest:
    """One VM, one vCPU, MEM_SIZE bytes of RAM, long mode with paging; reusable for many programs.

    kvm_path: the KVM device. Use as a context manager (closes the vCPU, VM and /dev/kvm).
    """

    def __init__(self, kvm_path: str = "/dev/kvm"):
        self.kvm = kvm.Kvm(kvm_path)
        try:
            self.vm = self.kvm.create_vm()
            self.mem = mmap.mmap(-1, MEM_SIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                                 mmap.PROT_READ | mmap.PROT_WRITE)
            self._mem_addr = ctypes.addressof(ctypes.c_char.from_buffer(self.mem))
            self.vm.set_user_memory_region(0, 0, MEM_SIZE, self._mem_addr)
            for gpa, table in page_tables(user=True).items():
                self.mem[gpa:gpa + len(table)] = table
            self.vcpu = self.vm.create_vcpu(0)
            self._reset_sregs = self.vcpu.get_sregs()
            self._cpl: int | None = None
        except BaseException:
            self.close()
            raise

    # -- state ----------------------------------------------------------------------------------
    def load(self, code: bytes, at: int = CODE_ADDR) -> int:
        """Copy `code` into guest memory at guest-physical `at`; returns `at` (the entry point)."""
        self.mem[at:at + len(code)] = code
        return at

    def enter(self, rip: int, cpl: int, regs: dict[str, int] | None = None) -> None:
        """Set the vCPU to long mode at privilege `cpl`, rip, and general registers `regs`."""
        if cpl != self._cpl:
            sregs = kvm.Sregs.from_buffer_copy(self._reset_sregs)
            self.vcpu.set_sregs(configure_long_mode(sregs, cpl))
            self._cpl = cpl
        r = kvm.Regs()
        for name, value in (regs or {}).items():
            setattr(r, name, value & workload.MASK)
        if not (regs and "rsp" in regs):
            r.rsp = STACK_TOP
        r.rip = rip
        # IOPL=3 so that the end marker (OUT) is allowed at CPL 3; interrupts stay off (IF=0).
        r.rflags = RFLAGS_FIXED | RFLAGS_IOPL3
        self.vcpu.set_regs(r)

    def registers(self) -> dict[str, int]:
        regs = self.vcpu.get_regs()
        return {name: int(getattr(regs, name)) for name in kvm.GPR_NAMES + ("rip", "rflags")}

    def cpl(self) -> int:
        """The guest's current privilege level, as KVM reports it (CS.DPL of the cached segment)."""
        return int(self.vcpu.get_sregs().cs.dpl)

    # -- running --------------------------------------------------------------------------------
    def step(self) -> Exit:
        """KVM_RUN once; decode the exit."""
        reason = self.vcpu.run()
        st = self.vcpu.run_state
        name = kvm.EXIT_NAMES.get(reason, f"exit {reason}")
        if reason not in (kvm.KVM_EXIT_IO, kvm.KVM_EXIT_MMIO, kvm.KVM_EXIT_HLT):
            self._cpl = None  # shutdown, failed entry…: the next enter() must reload every segment
        if reason == kvm.KVM_EXIT_IO:
            io = st.exit.io
            return Exit(reason, name, port=io.port, size=io.size,
                        direction="out" if io.direction == kvm.KVM_EXIT_IO_OUT else "in",
                        data=bytes(self.vcpu.io_data()))
        if reason == kvm.KVM_EXIT_MMIO:
            m = st.exit.mmio
            return Exit(reason, name, phys_addr=m.phys_addr, size=m.len, is_write=bool(m.is_write),
                        data=bytes(m.data[:m.len]) if m.is_write else b"")
        return Exit(reason, name)

    def supply_io_in(self, value: int) -> None:
        """Answer the pending IN: the bytes the guest will find in its register on the next KVM_RUN."""
        io = self.vcpu.run_state.exit.io
        self.vcpu.io_data()[:] = value.to_bytes(io.size * io.count, "little")

    def supply_mmio_read(self, value: int) -> None:
        """Answer the pending MMIO load with `value` (little endian, the access's length)."""
        m = self.vcpu.run_state.exit.mmio
        for i, b in enumerate(value.to_bytes(m.len, "little")):
            m.data[i] = b

    def run_to_done(self) -> None:
        """KVM_RUN until the end marker (`out DONE_PORT, al`); anything else is a GuestError."""
        ex = self.step()
        if not (ex.reason == kvm.KVM_EXIT_IO and ex.port == DONE_PORT and ex.direction == "out"):
            regs = self.registers()
            raise GuestError(f"sortie inattendue de l'invité : {ex.name} {ex.as_dict()} "
                             f"(rip={regs['rip']:#x})")

    def run_code(self, program: bytes, regs: dict[str, int], cpl: int = 3) -> dict[str, int]:
        """Run `program` + end marker in the guest at `cpl` from `regs`; return PROGRAM_REGS after."""
        self.enter(self.load(program + DONE), cpl, regs)
        self.run_to_done()
        after = self.registers()
        return {r: after[r] for r in PROGRAM_REGS}

    # -- teardown -------------------------------------------------------------------------------
    def close(self) -> None:
        for part in ("vcpu", "vm"):
            obj = getattr(self, part, None)
            if obj is not None:
                obj.close()
        if getattr(self, "mem", None) is not None:
            try:
                self.mem.close()
            except BufferError:  # a ctypes view still alive; the map goes with the object
                pass
        self.kvm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------------
# Control: what comes back to the VMM
# ---------------------------------------------------------------------------------------------------
OUT_PORT, IN_PORT = 0x510, 0x511
OUT_VALUE = 0x1234ABCD
IN_VALUE = 0xC0FFEE42
MMIO_READ_VALUE = 0x5EED5EED

# mov dx, OUT_PORT ; mov eax, OUT_VALUE ; out dx, eax       -> KVM_EXIT_IO out, port, 4 bytes
# mov dx, IN_PORT  ; in eax, dx                             -> KVM_EXIT_IO in; the VMM answers IN_VALUE
# mov [MMIO_ADDR], eax   (movabs)                           -> KVM_EXIT_MMIO write of what the guest read
# mov eax, [MMIO_ADDR + 8]  (movabs)                        -> KVM_EXIT_MMIO read; the VMM answers
# hlt                                                       -> KVM_EXIT_HLT (rax = the MMIO answer)
CONTROL_PROGRAM = (b"\x66\xba" + struct.pack("<H", OUT_PORT) + b"\xb8" + struct.pack("<I", OUT_VALUE) + b"\xef"
                   + b"\x66\xba" + struct.pack("<H", IN_PORT) + b"\xed"
                   + b"\xa3" + struct.pack("<Q", MMIO_ADDR)
                   + b"\xa1" + struct.pack("<Q", MMIO_ADDR + 8)
                   + HLT)
# In guest ring 3: hlt is privileged -> #GP; with no IDT the guest triple-faults -> KVM_EXIT_SHUTDOWN.
# The guest's privileged instruction never reaches the host CPU.
USER_HLT_PROGRAM = HLT


@dataclass
class ControlProbe:
    """The exits our VMM saw for CONTROL_PROGRAM (CPL 0) and for HLT at CPL 3, and what the guest got.

    exits: every decoded exit, in order. out/in_/mmio_write/mmio_read/hlt: the one of each kind
    (None if it did not happen). in_value_seen: what the guest stored after the IN (must be IN_VALUE).
    mmio_read_seen: rax at HLT (must be MMIO_READ_VALUE). user_hlt: the exit for HLT at CPL 3.
    """
    exits: list[Exit] = field(default_factory=list)
    out: Exit | None = None
    in_: Exit | None = None
    mmio_write: Exit | None = None
    mmio_read: Exit | None = None
    hlt: Exit | None = None
    in_value_seen: int | None = None
    mmio_read_seen: int | None = None
    user_hlt: Exit | None = None
    user_cpl: int | None = None

    def as_dict(self) -> dict:
        return {"exits": [e.as_dict() for e in self.exits],
                "in_value_supplied": hex(IN_VALUE),
                "in_value_seen": None if self.in_value_seen is None else hex(self.in_value_seen),
                "mmio_read_supplied": hex(MMIO_READ_VALUE),
                "mmio_read_seen": None if self.mmio_read_seen is None else hex(self.mmio_read_seen),
                "user_hlt": self.user_hlt.as_dict() if self.user_hlt else None,
                "user_cpl": self.user_cpl}


def control_probe(kvm_path: str = "/dev/kvm", max_exits: int = 16) -> ControlProbe:
    """Run CONTROL_PROGRAM at CPL 0, answering its IN and MMIO load, then HLT at CPL 3; record the exits.

    kvm_path: the KVM device; max_exits: safety bound on KVM_RUN calls for the CPL 0 program.
    """
    probe = ControlProbe()
    with Guest(kvm_path) as g:
        g.enter(g.load(CONTROL_PROGRAM), cpl=0)
        for _ in range(max_exits):
            ex = g.step()
            probe.exits.append(ex)
            if ex.reason == kvm.KVM_EXIT_IO and ex.direction == "out":
                probe.out = ex
            elif ex.reason == kvm.KVM_EXIT_IO and ex.direction == "in":
                probe.in_ = ex
                g.supply_io_in(IN_VALUE)
            elif ex.reason == kvm.KVM_EXIT_MMIO and ex.is_write:
                probe.mmio_write = ex
                probe.in_value_seen = int.from_bytes(ex.data, "little")
            elif ex.reason == kvm.KVM_EXIT_MMIO:
                probe.mmio_read = ex
                g.supply_mmio_read(MMIO_READ_VALUE)
            elif ex.reason == kvm.KVM_EXIT_HLT:
                probe.hlt = ex
                probe.mmio_read_seen = g.registers()["rax"] & 0xFFFFFFFF
                break
            else:
                break
        g.enter(g.load(USER_HLT_PROGRAM, at=CODE_ADDR + 0x1000), cpl=3)
        probe.user_cpl = g.cpl()
        probe.user_hlt = g.step()
        probe.exits.append(probe.user_hlt)
    return probe


# ---------------------------------------------------------------------------------------------------
# Efficiency: the workload in the guest
# ---------------------------------------------------------------------------------------------------
EXECUTOR = {3: "KVM invité ring 3", 0: "KVM invité ring 0"}


def run_workload(iterations: int | None, cpl: int = 3, samples: int = 5, kvm_path: str = "/dev/kvm",
                 timed: bool = True, target_ms: float = 5.0, clock=None) -> workload.WorkloadRun:
    """Run workload.BODY in a long-mode guest at `cpl` (3: user code, 0: guest kernel code).

    iterations: n for the result and the large count of the timing (the small one is n // 10);
        None: the count for which one run lasts about `target_ms` (guest kernel code runs ~1 ns per
        iteration on VT-x/AMD-V but ~2 µs under PVM: a fixed count would be too short or too long).
    samples: timing samples (median reported); timed: False to only compute the result;
    clock: nanosecond clock of the timing (default time.perf_counter_ns). time.thread_time_ns works
        too: KVM_RUN runs the vCPU in this thread, so guest time is this thread's CPU time.
    The loop runs inside the guest; each run is KVM_SET_REGS (rdi = n) + KVM_RUN to the end marker,
    and checks.host.timing cancels that fixed cost by timing two counts.
    """
    with Guest(kvm_path) as g:
        entry = g.load(workload.BODY + DONE)

        def run(n: int) -> int:
            g.enter(entry, cpl, {"rdi": n})
            g.run_to_done()
            return g.vcpu.get_regs().rax

        clock = clock or time.perf_counter_ns
        if iterations is None:
            iterations = timing.iterations_for(run, target_ms * 1e6, clock=clock)
        result = run(iterations)
        t = timing.ns_per_iteration(run, iterations, samples, clock=clock) if timed else None
        seen_cpl = g.cpl()
    return workload.WorkloadRun(EXECUTOR[cpl], iterations, int(result), t,
                                details={"cpl": seen_cpl, "mode": "long mode 64 bits, pagination 2 MiB"})


# ---------------------------------------------------------------------------------------------------
# Equivalence over many programs, efficiency side by side
# ---------------------------------------------------------------------------------------------------
@dataclass
class Mismatch:
    """A program whose registers differ natively and in the guest."""
    program: list[Op]
    regs: dict[str, int]
    native: dict[str, int]
    guest: dict[str, int]

    def as_dict(self) -> dict:
        return {"program": [str(op) for op in self.program],
                "differing": {r: {"natif": hex(self.native[r]), "invité": hex(self.guest[r])}
                              for r in PROGRAM_REGS if self.native[r] != self.guest[r]}}


def random_registers(rng: random.Random) -> dict[str, int]:
    return {r: rng.getrandbits(64) for r in PROGRAM_REGS}


def compare_programs(programs, cpl: int = 3, kvm_path: str = "/dev/kvm") -> list[Mismatch]:
    """Run each (ops, regs) of `programs` natively and in one guest at `cpl`; the mismatches.

    programs: iterable of (list[Op], dict of initial registers over PROGRAM_REGS).
    """
    mismatches = []
    with Guest(kvm_path) as g:
        for ops, regs in programs:
            code = assemble(ops)
            native, guest = run_native(code, regs), g.run_code(code, regs, cpl)
            if native != guest:
                mismatches.append(Mismatch(list(ops), dict(regs), native, guest))
    return mismatches


def random_programs(count: int, seed: int, max_length: int = 24):
    """`count` reproducible (ops, regs) pairs drawn from random.Random(seed)."""
    rng = random.Random(seed)
    return [(random_program(rng, rng.randint(1, max_length)), random_registers(rng)) for _ in range(count)]


@dataclass(frozen=True)
class Efficiency:
    """The workload timed natively and in the guest at CPL 3 and CPL 0, with the ratios.

    kind: the kind of KVM (readiness.kind_of_kvm: "VT-x", "AMD-V", "PVM", …) that explains ring0.
    expected: workload.reference(n) for each n used, computed once (in Python it costs ~0.3 µs per
        iteration: computing it per question would cost more than the measurements).
    """
    native: workload.WorkloadRun
    ring3: workload.WorkloadRun
    ring0: workload.WorkloadRun
    kind: str
    expected: dict = field(default_factory=dict)

    @property
    def runs(self) -> tuple[workload.WorkloadRun, ...]:
        return self.native, self.ring3, self.ring0

    def equivalent(self, run: workload.WorkloadRun) -> bool:
        """run computed workload.reference(run.iterations)."""
        if run.iterations not in self.expected:
            self.expected[run.iterations] = workload.reference(run.iterations)
        return run.result == self.expected[run.iterations]

    @property
    def ratio3(self) -> timing.Ratio:
        return timing.Ratio(self.ring3.executor, self.native.executor, self.ring3.timing.median,
                            self.native.timing.median)

    @property
    def ratio0(self) -> timing.Ratio:
        return timing.Ratio(self.ring0.executor, self.native.executor, self.ring0.timing.median,
                            self.native.timing.median)

    @property
    def explanation(self) -> str:
        """Why the guest's ring 0 runs at the speed it does here (French, for the report)."""
        r0 = self.ratio0.value
        if self.kind == "PVM":
            return (f"Ring 0 de l'invité : ×{r0:.0f} par rapport au natif. Ce /dev/kvm est PVM (KVM sans "
                    "VT-x/AMD-V) : PVM émule instruction par instruction le code noyau d'un invité qui n'est pas "
                    "adapté à PVM, mais exécute directement sur le processeur son code utilisateur (ring 3, "
                    f"×{self.ratio3.value:.2f}). Sur un processeur avec VT-x/AMD-V, le ring 0 de l'invité tourne "
                    "lui aussi à vitesse quasi native : c'est l'apport du « ring -1 » (C08). Ce rapport est une "
                    "information sur cet hôte, pas un échec de l'efficacité.")
        if self.kind in ("VT-x", "AMD-V"):
            verdict = "quasi native, comme attendu" if r0 < 2 else "plus lente qu'attendu (hôte chargé ?)"
            return (f"Ring 0 de l'invité : ×{r0:.2f} par rapport au natif, {verdict} : avec {self.kind} "
                    "(« ring -1 »), le code noyau de l'invité tourne directement sur le processeur et seules "
                    "les instructions sensibles sortent vers l'hyperviseur.")
        return (f"Ring 0 de l'invité : ×{r0:.2f} par rapport au natif, avec un KVM « {self.kind} » "
                "(ni VT-x, ni AMD-V, ni PVM reconnus).")

    def figures(self) -> dict[str, tuple[float, str]]:
        """name -> (value, unit) of the figures shown to students."""
        return {**{f"ns/itération {run.executor}": (run.timing.median, " ns") for run in self.runs},
                f"rapport {self.ring3.executor} / natif": (self.ratio3.value, "×"),
                f"rapport {self.ring0.executor} / natif": (self.ratio0.value, "×")}

    def as_dict(self) -> dict:
        return {run.executor: {"iterations": run.iterations, "equivalent": self.equivalent(run),
                               **run.timing.as_dict()} for run in self.runs} \
            | {"ratio_ring3": self.ratio3.value, "ratio_ring0": self.ratio0.value, "kvm": self.kind,
               "explanation": self.explanation}


def measure_efficiency(kind: str, iterations: int = 2_000_000, samples: int = 5,
                       kvm_path: str = "/dev/kvm") -> Efficiency:
    """Time the workload natively and in the guest at CPL 3 with `iterations`, and at CPL 0 with a
    calibrated count (see run_workload); `kind` names the KVM for the explanation.

    All three are timed with this thread's CPU time (time.thread_time_ns): the vCPU runs in this
    thread, and on a machine whose cores are shared, wall time would count other jobs' time slices.
    """
    clock = time.thread_time_ns
    return Efficiency(native=workload.run_native(iterations, samples, clock=clock),
                      ring3=run_workload(iterations, 3, samples, kvm_path, clock=clock),
                      ring0=run_workload(None, 0, samples, kvm_path, clock=clock), kind=kind)
