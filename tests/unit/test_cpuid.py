"""Decoding CPUID answers into virtualisation flags (pure: the raw leaves are given)."""
import pytest

from popek.checks.host import cpuid


def regs(text: str) -> tuple[int, ...]:
    """The little-endian registers that hold `text` (12 bytes, NUL padded), as CPUID returns them."""
    raw = text.encode().ljust(12, b"\0")
    return tuple(int.from_bytes(raw[i:i + 4], "little") for i in (0, 4, 8))


INTEL_LEAF0 = (0x16, *(regs("GenuineIntel")[i] for i in (0, 2, 1)))      # EBX, ECX, EDX = "Genu" "ntel" "ineI"
AMD_LEAF0 = (0x10, *(regs("AuthenticAMD")[i] for i in (0, 2, 1)))
EXT0 = (0x80000008, 0, 0, 0)
NO_EXT1 = (0, 0, 0, 0)
KVM_LEAF = (0x40000001, *regs("KVMKVMKVM"))


BASE_ECX = 0x7ED8320B & ~(1 << 5)  # a real leaf-1 ECX (SSE3, …, AVX) with VMX and the hypervisor bit clear


def leaf1(vmx=False, hypervisor=False):
    return (0x000A0F11, 0, BASE_ECX | (1 << 5 if vmx else 0) | (1 << 31 if hypervisor else 0), 0x178BFBFF)


def test_signature_reads_registers_little_endian_and_strips_nuls():
    assert cpuid.signature(*regs("KVMKVMKVM")) == "KVMKVMKVM"
    assert cpuid.signature(0x756E6547, 0x49656E69, 0x6C65746E) == "GenuineIntel"


def test_intel_laptop_with_vtx_and_no_hypervisor():
    flags = cpuid.decode(INTEL_LEAF0, leaf1(vmx=True), EXT0, NO_EXT1, None)
    assert flags.vendor == "GenuineIntel"
    assert (flags.vmx, flags.svm, flags.hypervisor, flags.hardware_assist) == (True, False, False, "VT-x")
    assert flags.hypervisor_vendor == "" and flags.hypervisor_name is None


def test_amd_server_with_svm():
    flags = cpuid.decode(AMD_LEAF0, leaf1(), EXT0, (0, 0, 1 << 2, 0), None)
    assert flags.vendor == "AuthenticAMD" and flags.svm and flags.hardware_assist == "AMD-V"


def test_guest_under_kvm_without_hardware_assist_names_its_hypervisor():
    # This machine: an AMD EPYC guest of Firecracker/KVM, no svm passed through.
    flags = cpuid.decode(AMD_LEAF0, leaf1(hypervisor=True), EXT0, (0, 0, 0, 0), KVM_LEAF)
    assert (flags.vmx, flags.svm, flags.hypervisor) == (False, False, True)
    assert flags.hypervisor_vendor == "KVMKVMKVM" and flags.hypervisor_name == "KVM"
    assert flags.hypervisor_max_leaf == 0x40000001 and flags.hardware_assist is None


def test_hypervisor_leaf_is_ignored_without_the_hypervisor_bit():
    flags = cpuid.decode(INTEL_LEAF0, leaf1(), EXT0, NO_EXT1, KVM_LEAF)
    assert flags.hypervisor_vendor == "" and flags.hypervisor_max_leaf == 0


def test_svm_needs_the_extended_leaf_to_exist():
    flags = cpuid.decode(AMD_LEAF0, leaf1(), (0x80000000, 0, 0, 0), (0, 0, 1 << 2, 0), None)
    assert not flags.svm


@pytest.mark.parametrize("sig, name", [("Microsoft Hv", "Hyper-V"), ("VMwareVMware", "VMware"),
                                       ("TCGTCGTCGTCG", "QEMU TCG"), ("SomethingNew", "SomethingNew")])
def test_hypervisor_names(sig, name):
    flags = cpuid.decode(INTEL_LEAF0, leaf1(hypervisor=True), EXT0, NO_EXT1, (0x40000001, *regs(sig)))
    assert flags.hypervisor_name == name


CPUINFO = """processor	: 0
vendor_id	: AuthenticAMD
flags		: fpu vme de pse hypervisor lahf_lm umip
bugs		: sysret_ss_attrs

processor	: 1
flags		: fpu svm
"""


def test_cpuinfo_flags_are_the_first_processors():
    assert cpuid.cpuinfo_flags(CPUINFO) == {"fpu", "vme", "de", "pse", "hypervisor", "lahf_lm", "umip"}
    assert cpuid.cpuinfo_flags("processor : 0\n") == set()


def test_compare_with_cpuinfo():
    flags = cpuid.decode(AMD_LEAF0, leaf1(hypervisor=True), EXT0, (0, 0, 0, 0), KVM_LEAF)
    assert cpuid.compare_with_cpuinfo(flags, cpuid.cpuinfo_flags(CPUINFO)) == {
        "vmx": (False, False), "svm": (False, False), "hypervisor": (True, True)}
