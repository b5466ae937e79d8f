"""The readiness verdict from given host facts (pure), and module discovery from given directories."""
import dataclasses

import pytest

from popek.checks.host import cpuid, readiness
from popek.checks.host.readiness import FAIL, PASS, WARN

CAPS = {"KVM_CAP_USER_MEMORY": 1, "KVM_CAP_IRQCHIP": 1, "KVM_CAP_HLT": 1, "KVM_CAP_SYNC_MMU": 1,
        "KVM_CAP_NR_VCPUS": 2, "KVM_CAP_MAX_VCPUS": 1024, "KVM_CAP_NR_MEMSLOTS": 32764}


def flags(vmx=False, svm=False, hypervisor=False, vendor=""):
    return cpuid.VirtFlags("AuthenticAMD", vmx, svm, hypervisor, vendor, 0x40000001 if hypervisor else 0)


#: This machine, as measured: a KVM guest with kvm_pvm, no VT-x/AMD-V.
PVM_HOST = readiness.HostFacts(
    arch="x86_64", flags=flags(hypervisor=True, vendor="KVMKVMKVM"), cpuinfo=frozenset({"hypervisor", "umip"}),
    modules=frozenset({"kvm", "kvm_pvm"}), dev_kvm_exists=True, dev_kvm_access=True,
    dev_kvm_mode="crw------- 0:0", api_version=12, caps=CAPS, tun=True, vhost_net=False, iommu_groups=0)
#: A teacher's laptop: bare metal Intel with VT-x.
VTX_LAPTOP = dataclasses.replace(
    PVM_HOST, flags=dataclasses.replace(flags(vmx=True), vendor="GenuineIntel"), cpuinfo=frozenset({"vmx"}),
    modules=frozenset({"kvm", "kvm_intel"}), dev_kvm_mode="crw-rw---- 0:108", vhost_net=True, iommu_groups=17)


def statuses(r: readiness.Readiness) -> dict[str, str]:
    return {c.name: c.status for c in r.checks}


def test_pvm_host_warns_that_kvm_has_no_hardware_assist():
    r = readiness.evaluate(PVM_HOST)
    assert r.kind == "PVM" and r.status == WARN
    assist = r.check("Extensions matérielles")
    assert assist.status == WARN
    assert "KVM présent mais pas de VT-x/AMD-V" in assist.explanation
    assert "paravirtuelle/imbriquée" in assist.explanation and "PVM" in assist.explanation
    assert r.check("Module fournisseur").status == WARN and "kvm_pvm" in r.check("Module fournisseur").explanation
    assert "KVMKVMKVM" in r.check("Bit hyperviseur").explanation
    assert FAIL not in statuses(r).values()


def test_vtx_laptop_passes_everything():
    r = readiness.evaluate(VTX_LAPTOP)
    assert r.kind == "VT-x" and r.status == PASS, r.table()
    assert "ring -1" in r.check("Extensions matérielles").explanation


def test_no_kvm_and_no_extensions_fails_with_reasons():
    facts = dataclasses.replace(PVM_HOST, flags=flags(), cpuinfo=frozenset(), modules=frozenset(),
                                dev_kvm_exists=False, dev_kvm_access=False, dev_kvm_mode="",
                                api_version=None, caps={})
    r = readiness.evaluate(facts)
    assert r.kind == "aucun" and r.status == FAIL
    s = statuses(r)
    for name in ("Extensions matérielles de virtualisation (VT-x / AMD-V)", "Module noyau kvm",
                 "Périphérique /dev/kvm présent", "API KVM (KVM_GET_API_VERSION = 12)", "Capacités KVM essentielles"):
        assert s[name] == FAIL, name
    assert "TCG" in r.check("Extensions matérielles").explanation


def test_unreadable_dev_kvm_says_which_group():
    r = readiness.evaluate(dataclasses.replace(VTX_LAPTOP, dev_kvm_access=False, api_version=None, caps={}))
    check = r.check("Périphérique /dev/kvm accessible")
    assert check.status == FAIL and "groupe kvm" in check.explanation and "0:108" in check.explanation


def test_vtx_disabled_in_firmware_is_a_warning_not_a_lie():
    r = readiness.evaluate(dataclasses.replace(VTX_LAPTOP, cpuinfo=frozenset()))
    check = r.check("Cohérence CPUID")
    assert check.status == WARN and "BIOS" in check.explanation and "vmx" in check.explanation


def test_kernel_flag_that_cpuid_lacks_fails():
    r = readiness.evaluate(dataclasses.replace(PVM_HOST, cpuinfo=frozenset({"hypervisor", "svm"})))
    assert r.check("Cohérence CPUID").status == FAIL


@pytest.mark.parametrize("version", [11, 13])
def test_other_api_versions_fail(version):
    assert readiness.evaluate(dataclasses.replace(VTX_LAPTOP, api_version=version)).check("API KVM").status == FAIL


def test_missing_capability_is_named():
    r = readiness.evaluate(dataclasses.replace(VTX_LAPTOP, caps=CAPS | {"KVM_CAP_IRQCHIP": 0}))
    check = r.check("Capacités KVM essentielles")
    assert check.status == FAIL and "KVM_CAP_IRQCHIP" in check.explanation


def test_capability_counts_are_explained():
    assert "2 vCPU recommandés, 1024 au plus" in readiness.evaluate(PVM_HOST).check("Capacités").explanation


@pytest.mark.parametrize("modules, assist, kind", [
    ({"kvm", "kvm_amd"}, flags(svm=True), "AMD-V"),
    ({"kvm", "kvm_intel"}, flags(vmx=True), "VT-x"),
    ({"kvm", "kvm_pvm"}, flags(hypervisor=True), "PVM"),
    ({"kvm"}, flags(vmx=True), "VT-x"),
    ({"kvm"}, flags(hypervisor=True), "sans assistance matérielle"),
])
def test_kind_of_kvm(modules, assist, kind):
    facts = dataclasses.replace(PVM_HOST, modules=frozenset(modules), flags=assist)
    assert readiness.kind_of_kvm(facts) == kind


def test_table_has_one_line_per_check_and_the_overall_verdict():
    r = readiness.evaluate(PVM_HOST)
    text = r.table()
    for c in r.checks:
        assert c.name in text
    assert text.rstrip().endswith("Type de KVM : PVM ; verdict global : WARN")
    assert r.as_dict()["status"] == WARN and len(r.as_dict()["checks"]) == len(r.checks)


def test_loaded_modules_from_sys_module_and_proc_modules(tmp_path):
    sys_module = tmp_path / "module"
    for name in ("kvm", "kvm_pvm", "ext4", "kvmclock"):
        (sys_module / name).mkdir(parents=True)
    proc = tmp_path / "modules"
    proc.write_text("kvm_amd 200704 0 - Live 0x0\nkvm 1150976 1 kvm_amd, Live 0x0\ntun 61440 0 - Live 0x0\n")
    assert readiness.loaded_modules(str(sys_module), str(proc)) == {"kvm", "kvm_pvm", "kvm_amd"}
    assert readiness.loaded_modules(str(tmp_path / "none"), str(tmp_path / "none")) == frozenset()
