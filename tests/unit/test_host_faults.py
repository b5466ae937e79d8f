"""Fault tests of the host claims on forged or altered observations (convention: tests/conftest.py).

A host cannot be made to violate its rings, its #GP or its CPUID: here the scenario's own steps are
fed observations where the claim is false — forged, or recorded on this host and then altered (a field
changed with dataclasses.replace) — and must end ÉCHEC with the measurement in the message. The faults
that can be put in place for real (an instruction that does not trap, an "emulator" that runs the
guest's bytes on the CPU, a container without a PID namespace) are in
tests/integration/test_host_faults_live.py.
"""
import dataclasses
import types

import pytest

from faults import Evidence, record, scenario_verdict
from popek.checks.host import cpuid, pgtable, readiness, sensitive, vmm
from popek.checks.host.isolate import Fault
from popek.checks.host.workload import WorkloadRun, reference
from popek.checks.host.timing import Ratio, Timing
from popek.steps import (host_containers, host_emulation, host_guest_process, host_kvm, host_pgtable,
                         host_rings, host_sensitive, host_virt)
from test_pgtable import FakeMeasurements


def run(executor, ns, n=1000, result=None):
    return WorkloadRun(executor, n, reference(n) if result is None else result, Timing((ns,)))


def efficiency(kind, ring3_ns, ring0_ns, native_ns=1.0):
    return vmm.Efficiency(run("natif", native_ns), run("KVM invité ring 3", ring3_ns),
                          run("KVM invité ring 0", ring0_ns, n=100), kind)


def expect_failure(record_property, verdict, message, *needles):
    record(record_property, verdict, message)
    assert verdict == "ÉCHEC", (verdict, message)
    for needle in needles:
        assert needle in message, (needle, message)


# --- C05: rings ------------------------------------------------------------------------------------
@pytest.mark.falsifies("C05", fault="le registre CS lu dit CPL 0 pour un programme utilisateur (observation forgée)")
def test_a_user_program_in_ring_0_fails_c05(record_property):
    verdict, msg = scenario_verdict(lambda: host_rings.cpl_is(0, 3))
    expect_failure(record_property, verdict, msg, "CPL lu dans CS : 0, attendu 3")


@pytest.mark.falsifies("C05", fault="un appel système qui ne coûte pas plus qu'un CALL (chronométrage forgé : "
                                    "0,9 ns contre 1,4 ns)")
def test_a_free_ring_crossing_fails_c05(record_property):
    verdict, msg = scenario_verdict(lambda: host_rings.syscall_costs_more(Ratio("SYSCALL", "CALL", 0.9, 1.4)))
    expect_failure(record_property, verdict, msg, "×0.64")


# --- C02: Popek & Goldberg's conditions, sensitive instructions ------------------------------------
def _recorded_popf_if():
    return sensitive.popf_change("IF")  # the real run on this host (IF change dropped)


@pytest.mark.falsifies("C02", fault="POPF applique en ring 3 le changement du drapeau IF (observation de cet "
                                    "hôte modifiée : RFLAGS après = demandé)")
def test_popf_that_applies_if_fails_c02(record_property):
    real = _recorded_popf_if()
    applied = dataclasses.replace(real, after=real.requested)
    verdict, msg = scenario_verdict(lambda: host_sensitive.popf_no_fault(applied),
                                    lambda: host_sensitive.popf_effect(applied, "IF", "ignoré en silence"))
    expect_failure(record_property, verdict, msg, f"obtenu {real.requested:#x}", "appliqué")


UMIP_ON, UMIP_OFF = sensitive.Umip(True, True), sensitive.Umip(False, False)
RETURNED = Fault("returned", returned=0)


@pytest.mark.falsifies("C02", fault="UMIP annoncé actif mais SGDT coûte 3 ns : aucune trappe vers le noyau "
                                    "(observation forgée)")
def test_umip_announced_but_no_trap_fails_c02(record_property):
    r = sensitive.Reading(sensitive.instruction("SGDT"), UMIP_ON, RETURNED, 0xFFFFFFFFFFFE0000, 0, True,
                          Timing((3.0,)), sensitive.EMULATED)
    verdict, msg = scenario_verdict(lambda: host_sensitive.no_visible_fault(r),
                                    lambda: host_sensitive.trapped_and_emulated(r, "200", Evidence()))
    expect_failure(record_property, verdict, msg, "coûte 3 ns", "aucune trappe")


@pytest.mark.falsifies("C02", fault="sans UMIP, SIDT rend la valeur factice de Linux au prix d'une trappe "
                                    "(observation forgée) : la vraie valeur n'a pas fui")
def test_no_umip_but_no_leak_fails_c02(record_property):
    r = sensitive.Reading(sensitive.instruction("SIDT"), UMIP_OFF, RETURNED, 0xFFFFFFFFFFFF0000, 0, True,
                          Timing((850.0,)), sensitive.NATIVE)
    verdict, msg = scenario_verdict(lambda: host_sensitive.leaked(r, "200", Evidence()))
    expect_failure(record_property, verdict, msg, "0xffffffffffff0000", "850 ns")


@pytest.mark.falsifies("C02", fault="le HLT de l'invité KVM ne revient pas au VMM (sorties KVM forgées : "
                                    "OUT, IN, MMIO, pas de HLT)")
def test_a_guest_hlt_that_never_reaches_the_vmm_fails_c02(record_property):
    probe = vmm.ControlProbe(hlt=None)
    verdict, msg = scenario_verdict(lambda: host_kvm.hlt(probe))
    expect_failure(record_property, verdict, msg, "aucune sortie KVM_EXIT_HLT ; sorties vues : aucune")


@pytest.mark.falsifies("C02", "C09", fault="un conteneur 5 fois plus lent que le natif (mesure forgée) : la case "
                                           "« Conteneur / Efficacité » du tableau mesuré contredit le cours")
def test_a_slow_container_fails_the_table_c02_c09(record_property):
    slow = FakeMeasurements(container=(run("natif", 1.0), run("conteneur", 5.0), Ratio("conteneur", "natif", 5.0, 1.0)))
    table = pgtable.build(slow)
    verdict, msg = scenario_verdict(lambda: host_pgtable.cells_agree(table, Evidence()))
    expect_failure(record_property, verdict, msg, "Conteneur / Efficacité : mesuré KO, le cours dit OK", "×5.00")
    verdict_row, msg_row = scenario_verdict(lambda: host_pgtable.row_agrees(table, "conteneur", Evidence()))
    assert verdict_row == "ÉCHEC" and "×5.00" in msg_row


# --- C06: emulation (equivalence OK, efficiency KO, control OK) ----------------------------------------
@pytest.mark.falsifies("C06", fault="un KVM sans VT-x qui exécuterait le ring 0 de l'invité à ×1,2 du natif "
                                    "(mesure forgée) : pas d'émulation du code noyau")
def test_a_kvm_without_vtx_running_ring0_natively_fails_c06(record_property):
    eff = efficiency("PVM", ring3_ns=1.0, ring0_ns=1.2)
    verdict, msg = scenario_verdict(lambda: host_kvm.ring0_equivalent(eff),
                                    lambda: host_kvm.ring0_emulated(eff, 10, Evidence()))
    expect_failure(record_property, verdict, msg, "×1.20")


@pytest.mark.falsifies("C06", fault="sous l'« émulateur », le processeur exécute la page de code de l'invité "
                                    "(observation forgée : r-xp) : ligne « Émulation » du tableau")
def test_emulation_row_with_directly_executed_guest_fails_c06(record_property):
    m = FakeMeasurements()
    direct = types.SimpleNamespace(program_executable=True, program_mappings=[types.SimpleNamespace(perms="r-xp", size=4096)],
                                   executable_anonymous=[])
    m.emulation_code = (m.emulation_code[0], direct)
    table = pgtable.build(m)
    verdict, msg = scenario_verdict(lambda: host_pgtable.row_measured(table, "Émulation"),
                                    lambda: host_pgtable.row_agrees(table, "emulation", Evidence()))
    expect_failure(record_property, verdict, msg, "Émulation / Efficacité : mesuré OK, le cours dit KO")


# --- C07: emulation's overhead and heterogeneous architectures -----------------------------------------
@pytest.mark.falsifies("C07", fault="le noyau de l'hôte x86-64 exécute lui-même le programme ARM64, sans "
                                    "émulateur (observation forgée)")
def test_an_arm_program_run_by_the_host_kernel_fails_c07(record_property):
    direct = types.SimpleNamespace(errno=None, error="", binfmt_handler="", run=types.SimpleNamespace(returncode=0))
    verdict, msg = scenario_verdict(lambda: host_emulation.refused_or_delegated(direct))
    expect_failure(record_property, verdict, msg, "errno None", "il l'a exécuté lui-même")


@pytest.mark.falsifies("C07", fault="TCG système à ×1,3 du natif (mesure forgée) : pas de surcoût")
def test_an_emulation_without_overhead_fails_c07(record_property):
    timed = (run("natif", 1.0), run("TCG système", 1.3), Ratio("TCG système", "natif", 1.3, 1.0))
    verdict, msg = scenario_verdict(lambda: host_emulation.heavy_overhead(timed, 2))
    expect_failure(record_property, verdict, msg, "seulement ×1.30")


# --- C08: ring -1 ----------------------------------------------------------------------------------
@pytest.mark.falsifies("C08", fault="VT-x annoncé mais le ring 0 de l'invité à ×3000 du natif (mesures "
                                    "forgées) : pas de « ring -1 » efficace")
def test_vtx_with_an_emulated_guest_kernel_fails_c08(record_property):
    eff = efficiency("VT-x", ring3_ns=1.0, ring0_ns=3000.0)
    verdict, msg = scenario_verdict(lambda: host_kvm.all_equivalent(eff),
                                    lambda: host_kvm.ring0_near_native(eff, 2, Evidence()),
                                    lambda: host_kvm.ring3_efficient(eff, 2))
    expect_failure(record_property, verdict, msg, "×3000.00", "VT-x")


@pytest.mark.falsifies("C08", fault="VT-x annoncé mais le ring 0 de l'invité à ×3000 : ligne « assistée par le "
                                    "matériel » du tableau (mesures forgées)")
def test_hardware_assisted_row_with_slow_ring0_fails_c08(record_property):
    m = FakeMeasurements()
    m.kvm_efficiency.ratio0 = Ratio("KVM invité ring 0", "natif", 3000.0, 1.0)
    table = pgtable.build(m)
    verdict, msg = scenario_verdict(lambda: host_pgtable.row_measured(table, "Virtualisation assistée par le matériel"),
                                    lambda: host_pgtable.row_agrees(table, "assistee_materiel", Evidence()))
    expect_failure(record_property, verdict, msg, "mesuré KO, le cours dit OK", "code noyau (ring 0) : ×3000.00")


@pytest.mark.falsifies("C08", fault="/dev/kvm sur kvm_intel mais CPUID n'annonce ni VMX ni SVM (drapeaux forgés)")
def test_cpuid_without_vmx_fails_c08(record_property):
    flags = cpuid.VirtFlags("GenuineIntel", False, False, False, "", 0)
    verdict, msg = scenario_verdict(lambda: host_virt.hardware_assist(flags, Evidence()))
    expect_failure(record_property, verdict, msg, "ni VMX ni SVM", "GenuineIntel")


def test_on_pvm_c08_is_never_passed_the_row_is_not_measured_with_the_reason():
    """Not a fault test (IGNORÉ is not ÉCHEC): the honest verdict where ring -1 is absent."""
    facts = readiness.HostFacts(arch="x86_64", flags=cpuid.VirtFlags("AuthenticAMD", False, False, True, "KVMKVMKVM", 0x40000001),
                                cpuinfo=frozenset({"hypervisor"}), modules=frozenset({"kvm", "kvm_pvm"}),
                                dev_kvm_exists=True, dev_kvm_access=True)
    reason = readiness.without_ring_minus_one(facts)
    assert reason.startswith("pas de VT-x/AMD-V") and "/dev/kvm est PVM (module kvm_pvm)" in reason
    m = FakeMeasurements(ring_minus_one=reason)
    m.kvm_efficiency.ratio0 = Ratio("KVM invité ring 0", "natif", 10000.0, 1.0)
    cell = pgtable.build(m).cells["assistee_materiel"]["efficacite"]
    assert cell.verdict is None and "pas de VT-x/AMD-V" in cell.evidence and "×10000.00" in cell.evidence
    vtx = dataclasses.replace(facts, flags=dataclasses.replace(facts.flags, vmx=True),
                              cpuinfo=frozenset({"vmx"}), modules=frozenset({"kvm", "kvm_intel"}))
    assert readiness.without_ring_minus_one(vtx) is None
    unused = dataclasses.replace(vtx, modules=frozenset({"kvm", "kvm_pvm"}))  # VT-x offered, KVM not on it
    assert "mais /dev/kvm est PVM" in readiness.without_ring_minus_one(unused)
    none = dataclasses.replace(facts, dev_kvm_exists=False)
    assert readiness.without_ring_minus_one(none).endswith("et pas de /dev/kvm")


# --- C09: containers ---------------------------------------------------------------------------------
@pytest.mark.falsifies("C09", fault="le conteneur voit un autre noyau que l'hôte (vue forgée)")
def test_a_container_with_its_own_kernel_fails_c09(record_property):
    ns = {"pid": "pid:[1]"}
    cmp = host_containers.containers.Comparison(
        {"kernel_release": "6.18.0-fc", "kernel_version": "#1 SMP", "namespaces": ns},
        {"kernel_release": "6.1.0-28-amd64", "kernel_version": "#1 SMP Debian", "namespaces": ns})
    verdict, msg = scenario_verdict(lambda: host_containers.same_kernel(cmp, Evidence()))
    expect_failure(record_property, verdict, msg, "6.1.0-28-amd64")


@pytest.mark.falsifies("C09", fault="le cgroup pids laisse passer 256 fork au lieu de 16 (mesure forgée)")
def test_a_pids_cgroup_that_refuses_nothing_fails_c09(record_property):
    out = {"errno": None, "tasks_at_refusal": None, "forks": 256, "limit": 16, "cgroup_version": 1}
    verdict, msg = scenario_verdict(lambda: host_containers.fork_refused(out, 16))
    expect_failure(record_property, verdict, msg, "256 fork réussis, refus aucun")


# --- C14 (host part): KVM on this host ----------------------------------------------------------------
@pytest.mark.falsifies("C14", fault="/dev/kvm répond la version d'API 11 (observation forgée)")
def test_a_kvm_api_of_another_version_fails_c14(record_property):
    verdict, msg = scenario_verdict(lambda: host_virt.api_version_is({"version": 11, "caps": {}}, 12))
    expect_failure(record_property, verdict, msg, "KVM_GET_API_VERSION = 11, attendu 12")


@pytest.mark.falsifies("C14", fault="/dev/kvm sans KVM_CAP_IRQCHIP ni KVM_CAP_USER_MEMORY (capacités forgées)")
def test_a_kvm_without_essential_caps_fails_c14(record_property):
    caps = {"KVM_CAP_USER_MEMORY": 0, "KVM_CAP_IRQCHIP": 0, "KVM_CAP_HLT": 1, "KVM_CAP_SYNC_MMU": 1}
    names = "KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP, KVM_CAP_HLT et KVM_CAP_SYNC_MMU"
    verdict, msg = scenario_verdict(lambda: host_virt.caps_present({"version": 12, "caps": caps}, names))
    expect_failure(record_property, verdict, msg, "KVM_CAP_USER_MEMORY", "KVM_CAP_IRQCHIP")


@pytest.mark.falsifies("C14", fault="/dev/kvm d'API 11 sans aucune capacité (faits forgés), "
                                    "jugés par le verdict de préparation")
def test_readiness_of_a_broken_kvm_fails_c14(record_property):
    facts = readiness.HostFacts(arch="x86_64", flags=cpuid.VirtFlags("GenuineIntel", True, False, False, "", 0),
                                cpuinfo=frozenset({"vmx"}), modules=frozenset({"kvm", "kvm_intel"}),
                                dev_kvm_exists=True, dev_kvm_access=True, api_version=11, caps={})
    verdict, msg = scenario_verdict(lambda: host_virt.no_kvm_failure((facts, readiness.evaluate(facts))))
    expect_failure(record_property, verdict, msg, "version 11")


# --- C01: a guest system is an ordinary program of the host ------------------------------------------
def _guest(**over):
    seen = dict(pid=4242, ppid=4000, our_pid=4000, cmdline=("/usr/bin/qemu-system-x86_64", "-accel", "tcg"),
                comm="qemu-system-x86", state="R", threads={4242: "qemu-system-x86", 4243: "CPU 0/TCG"},
                cpu_ns_before=1_000_000_000, cpu_ns_after=1_290_000_000, elapsed_ns=300_000_000,
                vcpu_thread="CPU 0/TCG", vcpu_cpu_ns_before=900_000_000, vcpu_cpu_ns_after=1_180_000_000,
                banner="popek: mode long\n", exited=True, returncode=0)
    return host_guest_process.guest_process.GuestProcess(**(seen | over))


@pytest.mark.falsifies("C01", fault="l'invité gelé (SIGSTOP) pendant l'observation : son temps processeur "
                                    "n'augmente pas (observation forgée)")
def test_a_frozen_guest_fails_c01(record_property):
    frozen = _guest(state="T", cpu_ns_after=1_000_000_000, vcpu_cpu_ns_after=900_000_000)
    verdict, msg = scenario_verdict(lambda: host_guest_process.cpu_grew(frozen, Evidence(), 10))
    expect_failure(record_property, verdict, msg, "1000 ms puis 1000 ms après 300 ms", "état T")


@pytest.mark.falsifies("C01", fault="l'invité n'est pas un processus lancé par popek (parent PID 1, forgé)")
def test_a_guest_that_is_not_our_child_fails_c01(record_property, monkeypatch):
    monkeypatch.setattr(host_guest_process.os, "getpid", lambda: 4000)
    orphan = _guest(ppid=1)
    verdict, msg = scenario_verdict(lambda: host_guest_process.ordinary_process(orphan))
    expect_failure(record_property, verdict, msg, "parent 1")
