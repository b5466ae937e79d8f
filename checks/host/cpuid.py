"""CPUID executed in machine code: what the processor (or the hypervisor under us) says about
virtualisation support (claims C08, C14).

- leaf 1 ECX[5]  VMX  (Intel VT-x)            - leaf 0x80000001 ECX[2] SVM (AMD-V)
- leaf 1 ECX[31] hypervisor bit: set by a hypervisor for its guests (real CPUs leave it 0)
- leaf 0x40000000: the hypervisor's vendor signature in EBX, ECX, EDX ("KVMKVMKVM\\0\\0\\0", "Microsoft Hv",
  "VMwareVMware", "XenVMMXenVMM", "TCGTCGTCGTCG", …) and its highest leaf in EAX.

CPUID is executed by the CPU itself (not read from /proc/cpuinfo) so the two can be compared: the
kernel may hide flags it does not use, a hypervisor may hide flags it does not virtualise.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

from popek.checks.host.machine import MachineCode

# void cpuid(u32 leaf, u32 subleaf, u32 out[4])
#   push rbx ; mov r8, rdx ; mov eax, edi ; mov ecx, esi ; cpuid
#   mov [r8], eax ; mov [r8+4], ebx ; mov [r8+8], ecx ; mov [r8+12], edx ; pop rbx ; ret
_CPUID = bytes.fromhex("53" "4989d0" "89f8" "89f1" "0fa2"
                       "418900" "41895804" "41894808" "4189500c" "5b" "c3")

HYPERVISOR_LEAF = 0x40000000
#: Signatures of leaf 0x40000000 (EBX ECX EDX) -> the hypervisor's name.
KNOWN_HYPERVISORS = {"KVMKVMKVM": "KVM", "Microsoft Hv": "Hyper-V", "VMwareVMware": "VMware",
                     "XenVMMXenVMM": "Xen", "TCGTCGTCGTCG": "QEMU TCG", "VBoxVBoxVBox": "VirtualBox",
                     "ACRNACRNACRN": "ACRN", "bhyve bhyve ": "bhyve", " lrpepyh  vr": "Parallels",
                     "QNXQVMBSQG": "QNX"}


@functools.cache
def _routine() -> MachineCode:
    return MachineCode(_CPUID, restype=None,
                       argtypes=(ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)))


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) of CPUID for `leaf` / `subleaf`, executed on this CPU."""
    out = (ctypes.c_uint32 * 4)()
    _routine()(leaf, subleaf, out)
    return tuple(int(v) for v in out)


def _bit(value: int, n: int) -> bool:
    return bool((value >> n) & 1)


def signature(*registers: int) -> str:
    """The ASCII text packed little-endian in `registers` (NULs stripped), as CPUID vendor strings are."""
    raw = b"".join(r.to_bytes(4, "little") for r in registers)
    return raw.rstrip(b"\0").decode("ascii", errors="replace")


@dataclass(frozen=True)
class VirtFlags:
    """What CPUID says about virtualisation.

    vendor: CPU vendor (leaf 0, "GenuineIntel"/"AuthenticAMD"); vmx / svm: VT-x / AMD-V offered to us;
    hypervisor: leaf 1 ECX[31]; hypervisor_vendor: leaf 0x40000000 signature ("" if no hypervisor bit);
    hypervisor_max_leaf: its EAX.
    """
    vendor: str
    vmx: bool
    svm: bool
    hypervisor: bool
    hypervisor_vendor: str
    hypervisor_max_leaf: int

    @property
    def hardware_assist(self) -> str | None:
        """"VT-x", "AMD-V" or None."""
        return "VT-x" if self.vmx else "AMD-V" if self.svm else None

    @property
    def hypervisor_name(self) -> str | None:
        return KNOWN_HYPERVISORS.get(self.hypervisor_vendor, self.hypervisor_vendor or None)


def decode(leaf0: tuple, leaf1: tuple, ext0: tuple, ext1: tuple | None, hv: tuple | None) -> VirtFlags:
    """VirtFlags from raw CPUID answers (pure; `ext1` is None when leaf 0x80000001 does not exist,
    `hv` is None when the hypervisor bit is clear)."""
    vendor = signature(leaf0[1], leaf0[3], leaf0[2])  # EBX, EDX, ECX: "Genu" "ineI" "ntel"
    svm = bool(ext1) and ext0[0] >= 0x80000001 and _bit(ext1[2], 2)
    hypervisor = _bit(leaf1[2], 31)
    return VirtFlags(vendor=vendor, vmx=_bit(leaf1[2], 5), svm=svm, hypervisor=hypervisor,
                     hypervisor_vendor=signature(hv[1], hv[2], hv[3]) if hypervisor and hv else "",
                     hypervisor_max_leaf=hv[0] if hypervisor and hv else 0)


def virt_flags() -> VirtFlags:
    """Execute the CPUID leaves that describe virtualisation support on this CPU."""
    leaf1 = cpuid(1)
    ext0 = cpuid(0x80000000)
    ext1 = cpuid(0x80000001) if ext0[0] >= 0x80000001 else None
    # Leaf 0x4000_0000 is only meaningful under a hypervisor: on bare metal it echoes another leaf.
    hv = cpuid(HYPERVISOR_LEAF) if _bit(leaf1[2], 31) else None
    return decode(cpuid(0), leaf1, ext0, ext1, hv)


def cpuinfo_flags(text: str) -> set[str]:
    """The `flags` of the first processor in a /proc/cpuinfo text."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def read_cpuinfo_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """cpuinfo_flags() of the file at `path`."""
    with open(path) as f:
        return cpuinfo_flags(f.read())


def compare_with_cpuinfo(flags: VirtFlags, cpuinfo: set[str]) -> dict[str, tuple[bool, bool]]:
    """flag -> (CPUID says, /proc/cpuinfo says) for vmx, svm and hypervisor."""
    return {"vmx": (flags.vmx, "vmx" in cpuinfo), "svm": (flags.svm, "svm" in cpuinfo),
            "hypervisor": (flags.hypervisor, "hypervisor" in cpuinfo)}
