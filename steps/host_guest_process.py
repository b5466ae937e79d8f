"""Glue for features/hote/invite_processus.feature -> popek.checks.host.guest_process."""
import os

from pytest_bdd import parsers, then, when

from popek.checks.host import emulation, guest_process


@when(parsers.parse("je démarre un invité qui calcule sans fin et que je l'observe depuis l'hôte pendant {ms:d} ms"),
      target_fixture="guest_seen")
def observe(ms, evidence):
    seen = guest_process.observe_guest(watch=ms / 1000)
    evidence.json("l'invité vu depuis l'hôte", seen)
    evidence.figure("invité : PID / parent", f"{seen.pid} / {seen.ppid}")
    evidence.figure("invité : part d'un cœur de l'hôte consommée", round(seen.cpu_share, 2))
    return seen


@then("l'invité a annoncé « popek: mode long »")
def announced(guest_seen):
    assert guest_seen.banner == emulation.BANNER.decode(), guest_seen.banner


@then("il a un PID dans /proc, sa ligne de commande est celle de qemu-system-x86_64 et son parent est popek")
def ordinary_process(guest_seen):
    assert guest_seen.pid > 1 and guest_seen.ppid == guest_seen.our_pid == os.getpid(), guest_seen
    assert os.path.basename(guest_seen.cmdline[0]) == emulation.QEMU_SYSTEM and guest_seen.comm.startswith("qemu-system"), guest_seen.cmdline


@then("son processeur virtuel est un thread de ce processus")
def vcpu_thread(guest_seen, evidence):
    evidence.figure("threads du processus de l'invité", ", ".join(sorted(guest_seen.threads.values())))
    assert guest_seen.vcpu_thread.startswith("CPU 0/"), guest_seen.threads


@then("son temps processeur (utime + stime) a augmenté pendant l'observation")
def cpu_grew(guest_seen, evidence):
    evidence.figure("invité : temps CPU gagné pendant l'observation", (guest_seen.cpu_ns_after - guest_seen.cpu_ns_before) // 1_000_000, " ms")
    assert guest_seen.cpu_ns_after > guest_seen.cpu_ns_before, guest_seen
    assert guest_seen.vcpu_cpu_ns_after > guest_seen.vcpu_cpu_ns_before, guest_seen


@then("une fois arrêté comme n'importe quel processus, son PID a disparu")
def stopped(guest_seen):
    assert guest_seen.exited and guest_seen.returncode is not None, guest_seen
