"""Fault tests of the host claims with the fault put in place for real (convention: tests/conftest.py).

Each test changes one thing of the real world where the host allows it — an instruction that does not
trap run in ring 3, an "emulator" that hands the guest's bytes to the CPU, a container built without a
PID or network namespace, a guest frozen by SIGSTOP while watched, this host's PVM KVM judged as a
ring -1 — runs the scenario's own steps on it, and asserts ÉCHEC with the measurement in the message.
Faults a host cannot be put in are in tests/unit/test_host_faults.py (forged observations).
"""
import contextlib
import dataclasses
import os
import signal
import socket
import threading

import pytest

from faults import Evidence, record, scenario_verdict
from popek.checks.host import needs
from popek.checks.host import containers, emulation, guest_process, readiness, rings, vmm
from popek.steps import host_containers, host_emulation, host_guest_process, host_kvm, host_rings

pytestmark = pytest.mark.integration


def need(*names):
    for name in names:
        reason = needs.unmet(name)
        if reason:
            pytest.skip(f"{name} : {reason}")


def expect_failure(record_property, verdict, message, *needles):
    record(record_property, verdict, message)
    assert verdict == "ÉCHEC", (verdict, message)
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.fixture
def passthrough_emulator(tmp_path):
    """An "emulator" that translates nothing: it execs the guest program, so the CPU runs its bytes."""
    path = tmp_path / "faux-qemu"
    path.write_text('#!/bin/sh\nexec "$@"\n')
    path.chmod(0o755)
    return str(path)


@pytest.mark.falsifies("C05", fault="une instruction « privilégiée » qui ne l'est pas : l'octet de HLT remplacé "
                                    "par NOP, exécuté pour de vrai en ring 3")
def test_an_instruction_that_does_not_trap_fails_c05(record_property, monkeypatch):
    need("x86_64", "linux")
    real = rings.instruction("HLT")
    nop = dataclasses.replace(real, code=real.code[:real.at] + b"\x90" + real.code[real.at + 1:])
    monkeypatch.setattr(host_rings.rings, "instruction", lambda mnemonic: nop)
    ring3_fault = host_rings.run_privileged("HLT", Evidence())
    verdict, msg = scenario_verdict(lambda: host_rings.general_protection(ring3_fault),
                                    lambda: host_rings.fault_on_instruction(ring3_fault, "HLT"))
    expect_failure(record_property, verdict, msg, "HLT (hlt)", "aucune faute")


@pytest.mark.falsifies("C06", fault="un « émulateur » qui ne traduit rien (exec du programme invité) : sa page de "
                                    "code est exécutée par le processeur, mesuré dans /proc/PID/maps")
def test_an_emulator_that_runs_the_guest_bytes_fails_c06(record_property, monkeypatch, passthrough_emulator):
    need("x86_64", "linux")
    monkeypatch.setattr(host_emulation.emulation, "QEMU_USER_X86", passthrough_emulator)
    program = host_emulation.x86_program_forever()
    views = host_emulation.code_views(program, Evidence())
    verdict, msg = scenario_verdict(lambda: host_emulation.native_code_executable(views, Evidence()),
                                    lambda: host_emulation.emulated_code_not_executable(views, Evidence()))
    expect_failure(record_property, verdict, msg, "faux-qemu", "r-xp", "il n'y a pas de traduction")


@pytest.mark.falsifies("C07", fault="un « émulateur » qui ne traduit rien (exec du programme invité), chronométré "
                                    "pour de vrai contre le natif : pas de surcoût")
def test_an_emulator_without_overhead_fails_c07(record_property, passthrough_emulator):
    need("x86_64", "linux")
    timed = emulation.against_native(
        lambda n, s: emulation.run_workload_user(n, s, qemu=passthrough_emulator), iterations=4_000_000, samples=3)
    verdict, msg = scenario_verdict(lambda: host_emulation.timed_equivalent(timed),
                                    lambda: host_emulation.report_ratio(timed, Evidence()),
                                    lambda: host_emulation.heavy_overhead(timed, 2))
    expect_failure(record_property, verdict, msg, "TCG utilisateur : seulement ×", "moins que ×2")


def _container_without(flag):
    def compare(hostname="popek-conteneur"):
        return containers.Comparison(containers.view(),
                                     containers.run_in_container(containers.view, hostname,
                                                                 flags=containers.ALL_NAMESPACES & ~flag))
    return compare


@pytest.mark.falsifies("C09", fault="un conteneur créé sans espace de noms PID (unshare sans CLONE_NEWPID)")
def test_a_container_without_pid_namespace_fails_c09(record_property, monkeypatch):
    need("linux", "root", "unshare")
    monkeypatch.setattr(host_containers.containers, "compare", _container_without(containers.CLONE_NEWPID))
    views = host_containers.create(Evidence())
    verdict, msg = scenario_verdict(lambda: host_containers.pid_one(views, Evidence()),
                                    lambda: host_containers.namespaces_differ(views))
    expect_failure(record_property, verdict, msg, "le processus du conteneur porte le PID", "processus (1,")
    assert scenario_verdict(lambda: host_containers.namespaces_differ(views))[1].endswith(": pid")


@pytest.mark.falsifies("C09", fault="un conteneur créé sans espace de noms réseau (unshare sans CLONE_NEWNET)")
def test_a_container_without_network_namespace_fails_c09(record_property, monkeypatch):
    need("linux", "root", "unshare")
    monkeypatch.setattr(host_containers.containers, "compare", _container_without(containers.CLONE_NEWNET))
    views = host_containers.create(Evidence())
    verdict, msg = scenario_verdict(lambda: host_containers.pid_one(views, Evidence()),
                                    lambda: host_containers.only_lo(views, "lo", Evidence()))
    others = sorted(name for _, name in socket.if_nameindex() if name != "lo")
    expect_failure(record_property, verdict, msg, "interfaces réseau du conteneur", *others[:3])


def _our_qemu_children() -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = guest_process.ProcStat.read(f"/proc/{pid}/stat")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if stat.ppid == os.getpid() and stat.comm.startswith("qemu-system"):
            out.append(int(pid))
    return out


@pytest.mark.falsifies("C01", fault="l'invité gelé par SIGSTOP pendant les 300 ms où l'hôte l'observe : son "
                                    "temps processeur n'augmente pas")
def test_a_guest_frozen_while_watched_fails_c01(record_property, monkeypatch):
    need("x86_64", "linux", "qemu-system")
    real_sleep = guest_process.time.sleep
    frozen = []

    def thaw():
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def freeze_then_sleep(seconds):
        if frozen:  # later sleeps (Popen.wait polls with time.sleep) are left alone
            return real_sleep(seconds)
        frozen.extend(_our_qemu_children())
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        real_sleep(seconds)
        # thaw just after the second reading, so that QEMU can receive its SIGTERM and end
        threading.Timer(0.05, thaw).start()

    monkeypatch.setattr(guest_process.time, "sleep", freeze_then_sleep)
    seen = host_guest_process.observe(300, Evidence())
    monkeypatch.undo()
    assert frozen == [seen.pid]
    verdict, msg = scenario_verdict(lambda: host_guest_process.announced(seen),
                                    lambda: host_guest_process.cpu_grew(seen, Evidence(), 10))
    expect_failure(record_property, verdict, msg, f"PID {seen.pid}", "il n'a pas tourné")


@pytest.mark.falsifies("C08", fault="le KVM de cet hôte, sans VT-x/AMD-V (PVM), jugé comme un « ring -1 » : le "
                                    "ring 0 de l'invité mesuré pour de vrai")
def test_this_kvm_without_hardware_assist_judged_as_ring_minus_one_fails_c08(record_property):
    need("x86_64", "kvm")
    if needs.unmet("ring-1") is None:
        pytest.skip("cet hôte a VT-x/AMD-V sous /dev/kvm : le ring 0 de l'invité y est quasi natif, "
                    "la faute n'existe pas ici")
    eff = vmm.measure_efficiency(readiness.kind_of_kvm(readiness.gather()), iterations=400_000, samples=3)
    verdict, msg = scenario_verdict(lambda: host_kvm.all_equivalent(eff),
                                    lambda: host_kvm.ring0_near_native(eff, 2, Evidence()))
    expect_failure(record_property, verdict, msg, "code noyau de l'invité (ring 0)", f"KVM {eff.kind}")


@pytest.mark.falsifies("C07", fault="la marque que l'hôte garde dans la mémoire du processus QEMU copiée aussi dans "
                                    "la mémoire de l'invité (une fuite), que l'invité fouille pour de vrai")
def test_a_host_mark_leaked_into_the_guest_fails_c07(record_property):
    need("x86_64", "linux", "qemu-system")
    probe = emulation.isolation_probe(leak=True)
    verdict, msg = scenario_verdict(lambda: host_emulation.own_mark_found(probe),
                                    lambda: host_emulation.host_mark_in_qemu(probe),
                                    lambda: host_emulation.host_mark_not_found(probe))
    expect_failure(record_property, verdict, msg, "la marque de l'hôte 1 fois", "l'invité lit la mémoire de l'hôte")
