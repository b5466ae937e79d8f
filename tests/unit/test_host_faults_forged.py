"""More host-side fault tests on forged observations (convention in tests/conftest.py): states of the host
that no other fault test builds — a process killed by someone else than the cgroup's OOM killer, a fork
refused by another limit than the cgroup's, a QEMU whose main loop spins while its virtual CPU never runs.
Each feeds the scenario's own steps the observation and expects ÉCHEC with the measurement."""
from __future__ import annotations

import errno

import pytest

from faults import Evidence, scenario_verdict
from popek.steps import host_containers, host_guest_process
from test_host_faults import _guest, expect_failure


# --- C09: control by the kernel (cgroups) -------------------------------------------------------------
@pytest.mark.falsifies("C09", fault="le processus limité à 64 Mio tué par SIGKILL venu d'ailleurs, pas par le "
                                    "noyau pour manque de mémoire : le cgroup ne compte aucun oom_kill (forgé)")
def test_a_sigkill_from_outside_the_cgroup_fails_c09(record_property):
    out = {"returncode": -9, "signal": "SIGKILL", "stdout": "", "limit": 64 << 20, "size": 256 << 20,
           "cgroup_version": 2, "events": {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0},
           "cgroup": "/sys/fs/cgroup/popek-forge", "cgroup_removed": True}
    verdict, msg = scenario_verdict(lambda: host_containers.killed(out), lambda: host_containers.oom_counted(out))
    expect_failure(record_property, verdict, msg, "oom_kill = 0", "SIGKILL")


@pytest.mark.falsifies("C09", fault="le cgroup memory limité à 64 Mio laisse le processus écrire ses 256 Mio et "
                                    "finir normalement (mesure forgée)")
def test_a_memory_cgroup_that_limits_nothing_fails_c09(record_property):
    out = {"returncode": 0, "signal": "", "stdout": str(256 << 20), "limit": 64 << 20, "size": 256 << 20,
           "cgroup_version": 2, "events": {"oom": 0, "oom_kill": 0}, "cgroup": "/sys/fs/cgroup/popek-forge",
           "cgroup_removed": True}
    verdict, msg = scenario_verdict(lambda: host_containers.killed(out), lambda: host_containers.oom_counted(out))
    expect_failure(record_property, verdict, msg, "limité à 64 Mio qui écrit 256 Mio", "code 0")


@pytest.mark.falsifies("C09", fault="fork refusé (EAGAIN) à 3 processus, par une autre limite que le cgroup "
                                    "pids.max = 16 (RLIMIT_NPROC, forgé)")
def test_a_fork_refused_by_another_limit_fails_c09(record_property):
    out = {"errno": errno.EAGAIN, "tasks_at_refusal": 3, "forks": 2, "limit": 16, "cgroup_version": 2}
    verdict, msg = scenario_verdict(lambda: host_containers.fork_refused(out, 16))
    expect_failure(record_property, verdict, msg, "2 fork réussis, refus EAGAIN à 3 processus")


# --- C01: a guest system is an ordinary program of the host -----------------------------------------------
@pytest.mark.falsifies("C01", fault="le processus QEMU consomme du processeur (sa boucle principale) mais son "
                                    "processeur virtuel ne tourne pas : l'invité est arrêté (observation forgée)")
def test_a_busy_qemu_whose_vcpu_never_runs_fails_c01(record_property):
    halted = _guest(cpu_ns_after=1_290_000_000, vcpu_cpu_ns_after=900_000_000)
    verdict, msg = scenario_verdict(lambda: host_guest_process.cpu_grew(halted, Evidence(), 10))
    expect_failure(record_property, verdict, msg, "CPU 0/TCG", "900 ms puis 900 ms")

