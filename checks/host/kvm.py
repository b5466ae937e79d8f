"""The KVM API as Linux defines it (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h):
ioctl numbers, the structures they exchange, and thin wrappers over /dev/kvm, a VM and a vCPU.

Nothing here decides anything: `checks/host/vmm.py` builds a guest with these calls, and
`checks/host/readiness.py` asks /dev/kvm what it can do. The numbers are computed with the kernel's
own _IO/_IOR/_IOW formulas from the structures' ctypes sizes, so a wrong layout shows up as a wrong
ioctl number (tests/unit/test_vmm.py pins them to the values of the kernel headers).
"""
from __future__ import annotations

import ctypes
import fcntl
import mmap
import os

# --- ioctl number encoding (include/uapi/asm-generic/ioctl.h) ------------------------------------
_IOC_NRBITS, _IOC_TYPEBITS, _IOC_SIZEBITS = 8, 8, 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, kind: int, nr: int, size: int) -> int:
    return (direction << _IOC_DIRSHIFT) | (kind << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (size << _IOC_SIZESHIFT)


def _io(kind, nr):
    return _ioc(_IOC_NONE, kind, nr, 0)


def _ior(kind, nr, struct):
    return _ioc(_IOC_READ, kind, nr, ctypes.sizeof(struct))


def _iow(kind, nr, struct):
    return _ioc(_IOC_WRITE, kind, nr, ctypes.sizeof(struct))


# --- structures (x86-64 layout) ------------------------------------------------------------------
u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class UserspaceMemoryRegion(ctypes.Structure):
    """struct kvm_userspace_memory_region: guest-physical range backed by our process's memory."""
    _fields_ = [("slot", u32), ("flags", u32), ("guest_phys_addr", u64), ("memory_size", u64),
                ("userspace_addr", u64)]


#: General registers in struct kvm_regs order.
GPR_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


class Regs(ctypes.Structure):
    """struct kvm_regs."""
    _fields_ = [(name, u64) for name in GPR_NAMES] + [("rip", u64), ("rflags", u64)]


class Segment(ctypes.Structure):
    """struct kvm_segment: a segment register as the CPU caches it (no GDT needed)."""
    _fields_ = [("base", u64), ("limit", u32), ("selector", u16), ("type", u8), ("present", u8),
                ("dpl", u8), ("db", u8), ("s", u8), ("l", u8), ("g", u8), ("avl", u8),
                ("unusable", u8), ("padding", u8)]


class DTable(ctypes.Structure):
    """struct kvm_dtable (GDTR/IDTR)."""
    _fields_ = [("base", u64), ("limit", u16), ("padding", u16 * 3)]


KVM_NR_INTERRUPTS = 256


class Sregs(ctypes.Structure):
    """struct kvm_sregs: segments, descriptor tables, control registers, EFER."""
    _fields_ = [("cs", Segment), ("ds", Segment), ("es", Segment), ("fs", Segment), ("gs", Segment),
                ("ss", Segment), ("tr", Segment), ("ldt", Segment), ("gdt", DTable), ("idt", DTable),
                ("cr0", u64), ("cr2", u64), ("cr3", u64), ("cr4", u64), ("cr8", u64), ("efer", u64),
                ("apic_base", u64), ("interrupt_bitmap", u64 * ((KVM_NR_INTERRUPTS + 63) // 64))]


class _ExitIo(ctypes.Structure):
    _fields_ = [("direction", u8), ("size", u8), ("port", u16), ("count", u32), ("data_offset", u64)]


class _ExitMmio(ctypes.Structure):
    _fields_ = [("phys_addr", u64), ("data", u8 * 8), ("len", u32), ("is_write", u8)]


class _ExitFailEntry(ctypes.Structure):
    _fields_ = [("hardware_entry_failure_reason", u64), ("cpu", u32)]


class _ExitInternal(ctypes.Structure):
    _fields_ = [("suberror", u32), ("ndata", u32), ("data", u64 * 16)]


class _ExitUnion(ctypes.Union):
    # The kernel pads this union to 256 bytes; only the members popek reads are named.
    _fields_ = [("hardware_exit_reason", u64), ("fail_entry", _ExitFailEntry), ("io", _ExitIo),
                ("mmio", _ExitMmio), ("internal", _ExitInternal), ("padding", ctypes.c_char * 256)]


class Run(ctypes.Structure):
    """The head of struct kvm_run, the page shared with the kernel (mmap of the vCPU fd)."""
    _fields_ = [("request_interrupt_window", u8), ("immediate_exit", u8), ("padding1", u8 * 6),
                ("exit_reason", u32), ("ready_for_interrupt_injection", u8), ("if_flag", u8),
                ("flags", u16), ("cr8", u64), ("apic_base", u64), ("exit", _ExitUnion)]


# --- ioctl numbers -------------------------------------------------------------------------------
KVMIO = 0xAE
KVM_API_VERSION = 12  # the only version the API ever had since Linux 2.6.22

KVM_GET_API_VERSION = _io(KVMIO, 0x00)
KVM_CREATE_VM = _io(KVMIO, 0x01)
KVM_CHECK_EXTENSION = _io(KVMIO, 0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(KVMIO, 0x04)
KVM_SET_USER_MEMORY_REGION = _iow(KVMIO, 0x46, UserspaceMemoryRegion)
KVM_CREATE_VCPU = _io(KVMIO, 0x41)
KVM_RUN = _io(KVMIO, 0x80)
KVM_GET_REGS = _ior(KVMIO, 0x81, Regs)
KVM_SET_REGS = _iow(KVMIO, 0x82, Regs)
KVM_GET_SREGS = _ior(KVMIO, 0x83, Sregs)
KVM_SET_SREGS = _iow(KVMIO, 0x84, Sregs)

# --- exit reasons (struct kvm_run.exit_reason) ---------------------------------------------------
EXIT_NAMES = {0: "KVM_EXIT_UNKNOWN", 1: "KVM_EXIT_EXCEPTION", 2: "KVM_EXIT_IO", 3: "KVM_EXIT_HYPERCALL",
              4: "KVM_EXIT_DEBUG", 5: "KVM_EXIT_HLT", 6: "KVM_EXIT_MMIO", 7: "KVM_EXIT_IRQ_WINDOW_OPEN",
              8: "KVM_EXIT_SHUTDOWN", 9: "KVM_EXIT_FAIL_ENTRY", 10: "KVM_EXIT_INTR",
              17: "KVM_EXIT_INTERNAL_ERROR", 24: "KVM_EXIT_SYSTEM_EVENT"}
KVM_EXIT_IO, KVM_EXIT_HLT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN = 2, 5, 6, 8
KVM_EXIT_FAIL_ENTRY, KVM_EXIT_INTERNAL_ERROR = 9, 17
KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT = 0, 1

# --- capabilities asked with KVM_CHECK_EXTENSION (a selection; the header has 200+) --------------
CAPS = {"KVM_CAP_IRQCHIP": 0, "KVM_CAP_HLT": 1, "KVM_CAP_USER_MEMORY": 3, "KVM_CAP_SET_TSS_ADDR": 4,
        "KVM_CAP_EXT_CPUID": 7, "KVM_CAP_NR_VCPUS": 9, "KVM_CAP_NR_MEMSLOTS": 10, "KVM_CAP_PIT": 11,
        "KVM_CAP_MP_STATE": 14, "KVM_CAP_COALESCED_MMIO": 15, "KVM_CAP_SYNC_MMU": 16,
        "KVM_CAP_IOEVENTFD": 36, "KVM_CAP_IRQFD": 32, "KVM_CAP_PIT2": 33, "KVM_CAP_XSAVE": 55,
        "KVM_CAP_MAX_VCPUS": 66, "KVM_CAP_ONE_REG": 70, "KVM_CAP_READONLY_MEM": 81,
        "KVM_CAP_IMMEDIATE_EXIT": 136, "KVM_CAP_NESTED_STATE": 157, "KVM_CAP_MAX_VCPU_ID": 128}


class KvmError(OSError):
    """An ioctl on /dev/kvm, a VM or a vCPU failed (errno kept)."""


def _ioctl(fd: int, request: int, arg=0, what: str = "") -> int:
    try:
        return fcntl.ioctl(fd, request, arg)
    except OSError as exc:
        raise KvmError(exc.errno, f"{what or hex(request)}: {os.strerror(exc.errno)}") from None


class Kvm:
    """/dev/kvm, the system fd: API version, capabilities, VM creation.

    path: the device (default /dev/kvm). Use as a context manager or call close().
    """

    def __init__(self, path: str = "/dev/kvm"):
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def api_version(self) -> int:
        return _ioctl(self.fd, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION")

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION: 0 if absent, else 1 or a capability-specific number (e.g. vCPU count)."""
        return _ioctl(self.fd, KVM_CHECK_EXTENSION, cap, "KVM_CHECK_EXTENSION")

    def capabilities(self, caps: dict[str, int] = CAPS) -> dict[str, int]:
        """name -> KVM_CHECK_EXTENSION answer for each of `caps`."""
        return {name: self.check_extension(number) for name, number in caps.items()}

    def vcpu_mmap_size(self) -> int:
        return _ioctl(self.fd, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE")

    def create_vm(self) -> "Vm":
        return Vm(self, _ioctl(self.fd, KVM_CREATE_VM, 0, "KVM_CREATE_VM"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Vm:
    """A VM fd: guest memory slots and vCPUs."""

    def __init__(self, kvm: Kvm, fd: int):
        self.kvm, self.fd = kvm, fd

    def set_user_memory_region(self, slot: int, guest_phys_addr: int, memory_size: int,
                               userspace_addr: int, flags: int = 0) -> None:
        """Back guest-physical [guest_phys_addr, +memory_size) with our memory at userspace_addr."""
        region = UserspaceMemoryRegion(slot, flags, guest_phys_addr, memory_size, userspace_addr)
        _ioctl(self.fd, KVM_SET_USER_MEMORY_REGION, region, "KVM_SET_USER_MEMORY_REGION")

    def create_vcpu(self, vcpu_id: int = 0) -> "Vcpu":
        return Vcpu(self, _ioctl(self.fd, KVM_CREATE_VCPU, vcpu_id, "KVM_CREATE_VCPU"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Vcpu:
    """A vCPU fd and its mmap'd struct kvm_run."""

    def __init__(self, vm: Vm, fd: int):
        self.vm, self.fd = vm, fd
        size = vm.kvm.vcpu_mmap_size()
        self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.run_state = Run.from_buffer(self._map)

    def get_regs(self) -> Regs:
        regs = Regs()
        _ioctl(self.fd, KVM_GET_REGS, regs, "KVM_GET_REGS")
        return regs

    def set_regs(self, regs: Regs) -> None:
        _ioctl(self.fd, KVM_SET_REGS, regs, "KVM_SET_REGS")

    def get_sregs(self) -> Sregs:
        sregs = Sregs()
        _ioctl(self.fd, KVM_GET_SREGS, sregs, "KVM_GET_SREGS")
        return sregs

    def set_sregs(self, sregs: Sregs) -> None:
        _ioctl(self.fd, KVM_SET_SREGS, sregs, "KVM_SET_SREGS")

    def run(self) -> int:
        """KVM_RUN until the guest exits to us; returns kvm_run.exit_reason."""
        _ioctl(self.fd, KVM_RUN, 0, "KVM_RUN")
        return self.run_state.exit_reason

    def io_data(self) -> memoryview:
        """The bytes of the current KVM_EXIT_IO (size*count, at data_offset in the kvm_run page)."""
        io = self.run_state.exit.io
        return memoryview(self._map)[io.data_offset: io.data_offset + io.size * io.count]

    def close(self) -> None:
        if self.fd >= 0:
            del self.run_state  # release the buffer export before closing the map
            self._map.close()
            os.close(self.fd)
            self.fd = -1
