"""Which hypervisor runs a cloud's guests (C14, "le plus souvent QEMU/KVM"), measured from inside a guest.

Nova's `hypervisor_type` says "QEMU" for its libvirt driver whether QEMU runs its guests under KVM or
under TCG (QEMU's own binary translator, no hardware virtualisation): the API cannot tell them apart.
The guest can. CPUID leaf 0x40000000 holds the hypervisor's 12-byte signature: "KVMKVMKVM\\0\\0\\0"
under KVM, "TCGTCGTCGTCG" under QEMU's TCG, "Microsoft Hv", "VMwareVMware", "XenVMMXenVMM"…; bit 31
of ECX at leaf 1 says a hypervisor is there at all. A hypervisor offering Hyper-V enlightenments puts
"Microsoft Hv" at 0x40000000 and its own signature at 0x40000100, so both leaves are read.

The probe is a 200-byte static x86-64 program made here (`cpuid_program`), copied into the guest over
SSH as octal escapes for `printf` (busybox has it; no compiler, no Python needed in the guest), run, and
its 36 bytes read back through `od`.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Optional

#: The hypervisor signatures of CPUID leaf 0x40000000 (0x40000100), and what they mean.
SIGNATURES = {
    "KVMKVMKVM": "KVM",
    "TCGTCGTCGTCG": "QEMU (TCG, sans KVM)",
    "Microsoft Hv": "Hyper-V",
    "VMwareVMware": "VMware",
    "XenVMMXenVMM": "Xen",
    "VBoxVBoxVBox": "VirtualBox",
    "bhyve bhyve": "bhyve",
    " lrpepyh  vr": "Parallels",
    "ACRNACRNACRN": "ACRN",
}

# x86-64 machine code: cpuid 0x40000000 and 0x40000100 (signature + max leaf), cpuid 1 (ECX), then
# write(1, buffer, 36) and exit(0). Each line: the instruction bytes and their assembly.
_ASM = """
4883ec40        sub rsp, 64
b800000040      mov eax, 0x40000000
31c9            xor ecx, ecx
0fa2            cpuid
891c24          mov [rsp], ebx
894c2404        mov [rsp+4], ecx
89542408        mov [rsp+8], edx
8944240c        mov [rsp+12], eax
b800010040      mov eax, 0x40000100
31c9            xor ecx, ecx
0fa2            cpuid
895c2410        mov [rsp+16], ebx
894c2414        mov [rsp+20], ecx
89542418        mov [rsp+24], edx
8944241c        mov [rsp+28], eax
b801000000      mov eax, 1
31c9            xor ecx, ecx
0fa2            cpuid
894c2420        mov [rsp+32], ecx
b801000000      mov eax, 1 (write)
bf01000000      mov edi, 1
4889e6          mov rsi, rsp
ba24000000      mov edx, 36
0f05            syscall
b83c000000      mov eax, 60 (exit)
31ff            xor edi, edi
0f05            syscall
"""
_CODE = bytes.fromhex("".join(line.split()[0] for line in _ASM.strip().splitlines()))


def cpuid_program() -> bytes:
    """A static ELF64 x86-64 executable (one PT_LOAD segment) that prints the 36 bytes read by
    `parse_output`: leaf 0x40000000 EBX ECX EDX EAX, leaf 0x40000100 EBX ECX EDX EAX, leaf 1 ECX."""
    base, ehsize, phsize = 0x400000, 64, 56
    size = ehsize + phsize + len(_CODE)
    ehdr = struct.pack("<4s5B7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, LE, v1, SysV
                       2, 0x3E, 1, base + ehsize + phsize, ehsize, 0, 0, ehsize, phsize, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)  # PT_LOAD, R+X
    return ehdr + phdr + _CODE


def guest_command(path: str = "/tmp/popek-cpuid") -> str:
    """Shell for the guest: write the program with printf (octal escapes), run it, print its bytes in hex."""
    octal = "".join(f"\\{b:03o}" for b in cpuid_program())
    return f"printf '{octal}' > {path} && chmod +x {path} && {path} | od -An -v -tx1; rm -f {path}"


@dataclasses.dataclass(frozen=True)
class Cpuid:
    """What the guest's CPU says about its hypervisor."""
    signature: str        # leaf 0x40000000's signature (NULs stripped), "" if none
    signature_100: str    # leaf 0x40000100's (a second hypervisor interface), "" if none
    hypervisor_bit: bool  # CPUID.1:ECX[31]

    @property
    def hypervisor(self) -> str:
        """The hypervisor in French words, e.g. "KVM", "QEMU (TCG, sans KVM)", "aucun (CPU nu)"."""
        for sig in (self.signature_100, self.signature):  # KVM behind Hyper-V enlightenments: KVM
            if sig in SIGNATURES and not (sig == "Microsoft Hv" and self.signature_100 in SIGNATURES):
                return SIGNATURES[sig]
        if self.signature:
            return f"inconnu (signature {self.signature!r})"
        return "non annoncé (bit hyperviseur levé, pas de signature)" if self.hypervisor_bit else "aucun (CPU nu)"


def _signature(regs: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "" for b in regs[:12]).strip("\0")


def parse_output(text: str) -> Cpuid:
    """Read `od -An -tx1` output of the program (36 bytes). Raises ValueError when it is not that."""
    raw = bytes(int(tok, 16) for tok in text.split() if len(tok) == 2 and all(c in "0123456789abcdef" for c in tok))
    if len(raw) != 36:
        raise ValueError(f"sortie de la sonde CPUID illisible ({len(raw)} octets au lieu de 36) : {text[:200]!r}")
    leaf1_ecx = struct.unpack("<I", raw[32:36])[0]
    max_leaf = struct.unpack("<I", raw[12:16])[0]
    first = _signature(raw[0:12]) if max_leaf >= 0x40000000 or raw[0:12].strip(b"\0") else ""
    return Cpuid(first, _signature(raw[16:28]), bool(leaf1_ecx >> 31 & 1))


def verdict(measured: Cpuid, announced: Optional[str] = None) -> tuple[str, str]:
    """C14 on one cloud: ("passed" | "failed" | "skipped", French reason).

    measured: the guest's CPUID; announced: what Nova says runs that guest, for an admin (its server
    diagnostics' `hypervisor`: "kvm", "qemu"…), or None.
    - KVM measured (and not contradicted): this cloud is one of the "le plus souvent QEMU/KVM";
    - the cloud announces KVM but the guest runs under TCG (or the other way): ÉCHEC, the cloud's own
      account of its virtualisation is false;
    - TCG, or another hypervisor: the claim speaks of most clouds, one cloud without KVM neither proves nor
      contradicts it: IGNORÉ, saying exactly what runs the guests (never RÉUSSI for KVM without KVM)."""
    name = measured.hypervisor
    said = (announced or "").lower()
    if said == "kvm" and name != "KVM":
        return "failed", f"Nova annonce KVM, mais l'instance mesure {name} (CPUID 0x40000000 : {measured.signature!r})"
    if said == "qemu" and name == "KVM":
        return "failed", "Nova annonce QEMU sans KVM (TCG), mais l'instance mesure KVM (CPUID 0x40000000)"
    if name == "KVM":
        return "passed", "les instances tournent sous KVM (CPUID 0x40000000 : 'KVMKVMKVM')" + (
            ", comme Nova l'annonce" if said else "")
    if name.startswith("QEMU (TCG"):
        return "skipped", ("les instances de ce cloud tournent sous QEMU (TCG, sans KVM) : signature CPUID "
                           "'TCGTCGTCGTCG' mesurée dans l'instance ; QEMU oui, KVM non, « le plus souvent QEMU/KVM » "
                           "ne se juge pas sur un cloud sans virtualisation matérielle")
    return "skipped", (f"les instances de ce cloud tournent sous {name} : « le plus souvent QEMU/KVM » ne se juge "
                       "pas sur un seul cloud")
