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
    g = guest_seen
    assert g.pid > 1 and g.ppid == g.our_pid == os.getpid(), \
        f"invité PID {g.pid}, parent {g.ppid} : popek est le PID {g.our_pid}, ce n'est pas lui qui l'a lancé"
    assert os.path.basename(g.cmdline[0]) == emulation.QEMU_SYSTEM and g.comm.startswith("qemu-system"), \
        f"invité PID {g.pid} : commande {' '.join(g.cmdline)!r}, nom {g.comm!r}, pas {emulation.QEMU_SYSTEM}"


@then("son processeur virtuel est un thread de ce processus")
def vcpu_thread(guest_seen, evidence):
    evidence.figure("threads du processus de l'invité", ", ".join(sorted(guest_seen.threads.values())))
    assert guest_seen.vcpu_thread.startswith("CPU 0/"), guest_seen.threads


@then(parsers.parse("son temps processeur (utime + stime) a augmenté pendant l'observation d'au moins {pct:d} % "
                    "du temps écoulé"))
def cpu_grew(guest_seen, evidence, pct=10):
    # A share, not "grew at all": /proc counts CPU time in clock ticks (10 ms), so a guest frozen for
    # the whole observation may still show one tick gained between the first reading and the freeze.
    g = guest_seen
    gained = g.cpu_ns_after - g.cpu_ns_before
    evidence.figure("invité : temps CPU gagné pendant l'observation", gained // 1_000_000, " ms")
    assert gained >= g.elapsed_ns * pct / 100, (
        f"temps CPU de l'invité (PID {g.pid}, état {g.state}) : {g.cpu_ns_before // 1_000_000} ms puis "
        f"{g.cpu_ns_after // 1_000_000} ms après {g.elapsed_ns // 1_000_000} ms d'observation "
        f"({g.cpu_share:.0%} d'un cœur, moins de {pct} %) : il n'a pas tourné")
    vgained = g.vcpu_cpu_ns_after - g.vcpu_cpu_ns_before
    assert vgained >= g.elapsed_ns * pct / 100, (
        f"temps CPU du processeur virtuel ({g.vcpu_thread or 'thread introuvable'}) : "
        f"{g.vcpu_cpu_ns_before // 1_000_000} ms puis {g.vcpu_cpu_ns_after // 1_000_000} ms après "
        f"{g.elapsed_ns // 1_000_000} ms d'observation, moins de {pct} % : il n'a pas tourné")


@then("une fois arrêté comme n'importe quel processus, son PID a disparu")
def stopped(guest_seen):
    assert guest_seen.exited and guest_seen.returncode is not None, guest_seen
