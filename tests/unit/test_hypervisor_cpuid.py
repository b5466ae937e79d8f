"""C14 (cloud): the CPUID probe popek copies into a guest runs for real here, and the verdict never says
KVM without KVM (forged guest readings for the clouds this machine cannot be)."""
import platform
import subprocess

import pytest

from popek.checks.cloud import hypervisor


def od(raw: bytes) -> str:
    return " ".join(f"{b:02x}" for b in raw)


def reading(sig: bytes, sig100: bytes = b"\0" * 12, bit: bool = True) -> hypervisor.Cpuid:
    leaf1 = (1 << 31 if bit else 0).to_bytes(4, "little")
    return hypervisor.parse_output(od(sig + (0x40000001).to_bytes(4, "little") + sig100 + b"\0" * 4 + leaf1))


@pytest.mark.skipif(platform.machine() != "x86_64", reason="sonde x86-64")
def test_the_probe_runs_here_and_agrees_with_the_kernel(tmp_path):
    done = subprocess.run(["sh", "-c", hypervisor.guest_command(str(tmp_path / "cpuid"))],
                          capture_output=True, text=True, timeout=30)
    measured = hypervisor.parse_output(done.stdout)
    flags = open("/proc/cpuinfo").read().split()
    assert measured.hypervisor_bit == ("hypervisor" in flags)
    if measured.hypervisor_bit:  # this machine type is a KVM guest: the kernel says so too
        assert measured.signature, measured


def test_tcg_is_named_exactly_and_never_passes():
    got = reading(b"TCGTCGTCGTCG")
    assert got.hypervisor == "QEMU (TCG, sans KVM)"
    status, reason = hypervisor.verdict(got)
    assert status == "skipped" and "QEMU (TCG, sans KVM)" in reason


def test_kvm_passes_unless_nova_says_otherwise():
    kvm = reading(b"KVMKVMKVM\0\0\0")
    assert hypervisor.verdict(kvm)[0] == "passed"
    assert hypervisor.verdict(kvm, "kvm")[0] == "passed"
    assert hypervisor.verdict(kvm, "qemu")[0] == "failed"


@pytest.mark.falsifies("C14", fault="Nova annonce KVM (diagnostics « kvm ») alors que l'instance mesure TCG "
                                    "(observations forgées : ce cloud ne peut pas mentir sur lui-même)")
def test_a_cloud_announcing_kvm_over_tcg_fails(record_property):
    status, reason = hypervisor.verdict(reading(b"TCGTCGTCGTCG"), "kvm")
    assert status == "failed" and "TCG" in reason
    record_property("verdict", "ÉCHEC")
    record_property("measure", reason)


def test_kvm_behind_hyperv_enlightenments_is_kvm():
    assert reading(b"Microsoft Hv", b"KVMKVMKVM\0\0\0").hypervisor == "KVM"
    assert reading(b"Microsoft Hv").hypervisor == "Hyper-V"


def test_bare_metal_and_garbage():
    assert reading(b"\0" * 12, bit=False).hypervisor == "aucun (CPU nu)"
    with pytest.raises(ValueError):
        hypervisor.parse_output("bash: od: not found")
