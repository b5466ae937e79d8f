"""Glue for features/hote/conteneurs.feature -> popek.checks.host.containers (namespaces, cgroups)."""
import errno
import os

from pytest_bdd import parsers, then, when

from popek.checks.host import containers, workload


# --- isolation and equivalence ---------------------------------------------------------------------
@when("je crée un conteneur avec de nouveaux espaces de noms PID, UTS, mount, réseau et IPC",
      target_fixture="ct_views")
def create(evidence):
    cmp = containers.compare()
    evidence.json("vu de l'hôte et vu du conteneur", {"hôte": cmp.host, "conteneur": cmp.container})
    return cmp


@then("son processus y porte le PID 1 et son /proc ne montre que lui")
def pid_one(ct_views, evidence):
    evidence.figure("processus visibles : hôte / conteneur", f"{len(ct_views.host['processes'])} / {len(ct_views.container['processes'])}")
    c = ct_views.container
    assert c["pid"] == 1 and c["processes"] == [1], (
        f"le processus du conteneur porte le PID {c['pid']} et son /proc montre {len(c['processes'])} "
        f"processus ({', '.join(map(str, c['processes'][:8]))}{'…' if len(c['processes']) > 8 else ''})")


@then(parsers.parse("son nom d'hôte est « {name} » tandis que celui de l'hôte est inchangé"))
def hostname(ct_views, name):
    import socket
    assert ct_views.container["hostname"] == name != ct_views.host["hostname"] == socket.gethostname()


@then(parsers.parse("sa seule interface réseau est {iface}"))
def only_lo(ct_views, iface, evidence):
    evidence.figure("interfaces réseau : hôte / conteneur", f"{' '.join(ct_views.host['interfaces'])} / {' '.join(ct_views.container['interfaces'])}")
    assert ct_views.container["interfaces"] == [iface], \
        f"interfaces réseau du conteneur : {' '.join(ct_views.container['interfaces'])} (attendu : {iface} seule)"


@then("ses cinq espaces de noms diffèrent de ceux de l'hôte")
def namespaces_differ(ct_views):
    shared = sorted({n for _, n in containers.NAMESPACES} - set(ct_views.separate_namespaces))
    assert not shared, f"espaces de noms partagés avec l'hôte : {', '.join(shared)}"


@then("le conteneur voit exactement le noyau de l'hôte (même version)")
def same_kernel(ct_views, evidence):
    evidence.figure("noyau vu de l'hôte / du conteneur", f"{ct_views.host['kernel_release']} / {ct_views.container['kernel_release']}")
    h, c = ct_views.host, ct_views.container
    assert ct_views.same_kernel, (f"le conteneur voit le noyau {c['kernel_release']} ({c['kernel_version']}), "
                                  f"l'hôte {h['kernel_release']} ({h['kernel_version']})")


# --- efficiency ------------------------------------------------------------------------------------
@when("je chronomètre la charge de travail sur l'hôte et dans un conteneur", target_fixture="ct_timed")
def timed(host_measures):
    return host_measures.container  # measured once per run, shared with the Popek–Goldberg table


@then("le PID 1 du conteneur calcule le même résultat que l'hôte")
def container_equivalent(ct_timed):
    # Not against workload.reference: in Python, 20 million iterations take seconds.
    native, inside, _ = ct_timed
    assert inside.details["pid_in_container"] == 1 and inside.result == native.result, inside


@then("le rapport de temps conteneur / natif est rapporté")
def container_ratio(ct_timed, evidence):
    native, inside, ratio = ct_timed
    evidence.figure("conteneur : ns/itération", round(inside.timing.median, 3), " ns")
    evidence.figure("conteneur : ns/itération du natif de référence", round(native.timing.median, 3), " ns")
    evidence.figure("conteneur / natif", round(ratio.value, 3), "×")
    evidence.json("conteneur contre natif", {"natif": native.timing.as_dict(), "conteneur": inside.timing.as_dict(),
                                             "rapport": str(ratio)})
    assert inside.timing.median > 0 and native.timing.median > 0


@then(parsers.parse("le conteneur tourne à moins de {bound:d} fois le temps du natif"))
def container_near_native(ct_timed, bound):
    _, _, ratio = ct_timed
    failure = workload.not_near_native(ratio, bound)
    assert failure is None, failure


# --- control ---------------------------------------------------------------------------------------
@when(parsers.parse("le PID 1 d'un conteneur rejoint un cgroup limité à {limit:d} processus et crée des "
                    "processus jusqu'au refus"), target_fixture="ct_control")
def pids(limit, evidence):
    out = containers.pids_limit(limit)
    evidence.json("cgroup pids", out)
    evidence.figure(f"fork réussis avant le refus (pids.max = {limit}, cgroup v{out['cgroup_version']})", out["forks"])
    return out


@then(parsers.parse("fork échoue avec EAGAIN quand le cgroup compte {limit:d} processus"))
def fork_refused(ct_control, limit):
    c = ct_control
    assert c["errno"] == errno.EAGAIN and c["tasks_at_refusal"] == limit, (
        f"cgroup pids.max = {limit} (cgroup v{c['cgroup_version']}) : {c['forks']} fork réussis, refus "
        f"{errno.errorcode.get(c['errno'], c['errno']) if c['errno'] else 'aucun'} à {c['tasks_at_refusal']} processus")


@when(parsers.parse("dans un conteneur un processus limité à {limit:d} Mio de mémoire écrit {size:d} Mio"),
      target_fixture="ct_control")
def memory(limit, size, evidence):
    out = containers.memory_limit(limit << 20, size << 20)
    evidence.json("cgroup memory", out)
    evidence.figure(f"fin du processus limité à {limit} Mio (cgroup v{out['cgroup_version']})", out["signal"] or out["returncode"])
    return out


@then("le noyau le tue par SIGKILL")
def killed(ct_control):
    c = ct_control
    assert c["signal"] == "SIGKILL", (
        f"le processus limité à {c['limit'] >> 20} Mio qui écrit {c['size'] >> 20} Mio (cgroup v{c['cgroup_version']}) "
        f"finit avec le code {c['returncode']} {c['signal'] or '(pas de signal)'}, pas tué par SIGKILL ; "
        f"compteurs du cgroup : {c['events']}")


@then("le cgroup compte une mise à mort pour manque de mémoire (oom_kill)")
def oom_counted(ct_control):
    c = ct_control
    assert c["events"].get("oom_kill", 0) >= 1, (
        f"le cgroup ne compte aucune mise à mort pour manque de mémoire (oom_kill = {c['events'].get('oom_kill', 0)}) "
        f"alors que le processus a fini par {c['signal'] or c['returncode']} : ce n'est pas la limite de "
        f"{c['limit'] >> 20} Mio qui l'a arrêté ; compteurs : {c['events']}")


@then("le cgroup a été supprimé ensuite")
def removed(ct_control):
    assert ct_control["cgroup_removed"] and not os.path.exists(ct_control["cgroup"]), ct_control["cgroup"]
