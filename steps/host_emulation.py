"""Glue for features/hote/emulation.feature -> popek.checks.host.emulation (QEMU TCG)."""
import errno

from pytest_bdd import given, parsers, then, when

from popek.checks.host import emulation, workload


# --- the programs ----------------------------------------------------------------------------------
@given(parsers.parse("le programme x86-64 statique qui calcule la charge de travail pour n = {n:d}"),
       target_fixture="emu_program")
def x86_program(n):
    return {"n": n, "elf": emulation.x86_user_program(n)}


@given("le programme x86-64 statique qui calcule la charge de travail sans fin", target_fixture="emu_program")
def x86_program_forever():
    return {"n": emulation.FOREVER, "elf": emulation.x86_user_program(emulation.FOREVER)}


@given(parsers.parse("le programme ARM64 statique qui calcule la charge de travail pour n = {n:d}"),
       target_fixture="emu_program")
def arm_program(n):
    return {"n": n, "elf": emulation.aarch64_program(n)}


# --- equivalence -----------------------------------------------------------------------------------
@when("je l'exécute directement sur le processeur", target_fixture="emu_native")
def run_directly(emu_program):
    return emulation.direct_exec(emu_program["elf"])


@when("je l'exécute sous qemu-x86_64-static", target_fixture="emu_run")
def run_qemu_x86(emu_program):
    return emulation.run_program(emu_program["elf"], emulation.QEMU_USER_X86)


@then("les deux exécutions écrivent le résultat de référence")
def both_reference(emu_program, emu_native, emu_run, evidence):
    expected = workload.reference(emu_program["n"])
    evidence.figure("résultat natif et sous qemu-x86_64-static", hex(emu_run.result or 0))
    assert emu_native.run is not None and emu_native.run.returncode == 0, emu_native
    assert emu_run.returncode == 0, emu_run.stderr
    assert emu_native.run.result == emu_run.result == expected, (emu_native.run.result, emu_run.result, expected)


# --- efficiency KO: who executes the guest's bytes -------------------------------------------------
@when("je regarde sa page de code pendant qu'il tourne directement, puis sous qemu-x86_64-static",
      target_fixture="emu_code_views")
def code_views(emu_program, evidence):
    views = emulation.observe_code(emu_program["elf"]), emulation.observe_code(emu_program["elf"], emulation.QEMU_USER_X86)
    evidence.json("pages de code du programme (natif, QEMU)", views)
    return views


@then("en natif sa page de code est exécutable")
def native_code_executable(emu_code_views, evidence):
    native = emu_code_views[0]
    evidence.figure("droits de la page de code en natif", " ".join(m.perms for m in native.program_mappings))
    assert native.program_executable, native


@then("sous QEMU sa page de code n'est pas exécutable : le processeur exécute la traduction faite par QEMU")
def emulated_code_not_executable(emu_code_views, evidence):
    qemu = emu_code_views[1]
    evidence.figure("droits de la page de code sous QEMU", " ".join(m.perms for m in qemu.program_mappings))
    evidence.figure("cache de traduction de QEMU (zones anonymes exécutables)", sum(m.size for m in qemu.executable_anonymous) >> 20, " Mio")
    assert not qemu.program_executable and qemu.executable_anonymous, (
        f"sous {qemu.runner}, la page de code du programme est "
        f"{' '.join(m.perms for m in qemu.program_mappings)} (exécutable : {qemu.program_executable}) et "
        f"{sum(m.size for m in qemu.executable_anonymous) >> 20} Mio de code anonyme exécutable : le processeur "
        "exécute lui-même les octets de l'invité, il n'y a pas de traduction")


# --- control: the guest's system calls -------------------------------------------------------------
@when("je l'exécute sous qemu-x86_64-static avec la trace des appels système", target_fixture="emu_traced")
def traced(emu_program, evidence):
    run, calls = emulation.trace_guest_syscalls(emu_program["elf"])
    evidence.text("appels système de l'invité vus par QEMU", "\n".join(calls))
    return run, calls


@then("QEMU rapporte les appels système write et exit_group de l'invité")
def syscalls_seen(emu_traced):
    run, calls = emu_traced
    assert [c.split("(", 1)[0] for c in calls] == ["write", "exit_group"], calls


@then("le résultat écrit est celui de référence")
def traced_result(emu_traced, emu_program):
    run, _ = emu_traced
    assert run.returncode == 0 and run.result == workload.reference(emu_program["n"]), run


# --- overhead --------------------------------------------------------------------------------------
@when(parsers.parse("je chronomètre la charge de travail en natif et sous TCG en mode {mode}"),
      target_fixture="emu_timed")
def timed(mode, host_measures):
    # measured once per run, shared with the Popek–Goldberg table
    return {"utilisateur": lambda: host_measures.emulation_user, "système": lambda: host_measures.emulation_system}[mode]()


@then("l'exécution émulée calcule le même résultat que le processeur")
def timed_equivalent(emu_timed):
    # Not against workload.reference: in Python, 20 million iterations take seconds.
    native, emulated, _ = emu_timed
    assert emulated.result == native.result and emulated.iterations == native.iterations, (hex(native.result), hex(emulated.result))


@then("le rapport de temps émulé / natif est rapporté")
def report_ratio(emu_timed, evidence):
    native, emulated, ratio = emu_timed
    name = emulated.executor
    evidence.figure(f"{name} : ns/itération (temps CPU de QEMU)", round(emulated.timing.median, 3), " ns")
    evidence.figure(f"{name} : ns/itération du natif de référence", round(native.timing.median, 3), " ns")
    evidence.figure(f"{name} / natif", round(ratio.value, 2), "×")
    evidence.json(f"{name} contre natif", {"natif": native.timing.as_dict(), name: emulated.timing.as_dict(),
                                            "rapport": str(ratio), "note": emulated.note})
    assert emulated.timing.median > 0 and native.timing.median > 0, (emulated.timing, native.timing)


@then(parsers.parse("l'exécution émulée est au moins {bound:d} fois plus lente que le processeur"))
def heavy_overhead(emu_timed, bound):
    _, _, ratio = emu_timed
    failure = workload.not_heavy_overhead(ratio, bound)
    assert failure is None, failure


# --- whole PC ----------------------------------------------------------------------------------------
@when(parsers.parse("je démarre sous qemu-system-x86_64 (TCG) le secteur d'amorçage qui calcule la charge "
                    "de travail pour n = {n:d}"), target_fixture="emu_boot")
def boot(n, evidence):
    run = emulation.run_boot_sector(emulation.boot_sector(n))
    evidence.text("console de débogage de l'invité (port 0xE9)", run.text)
    return {"n": n, "run": run}


@then("l'invité annonce « popek: mode long » : QEMU a émulé ses instructions privilégiées (CR0, CR4, EFER, LGDT)")
def banner(emu_boot):
    assert emu_boot["run"].text == emulation.BANNER.decode(), (emu_boot["run"].text, emu_boot["run"].stderr)


@then("le résultat qu'il écrit sur le port 0xE9 est celui de référence")
def boot_result(emu_boot, evidence):
    evidence.figure("résultat écrit par l'invité (port 0xE9)", hex(emu_boot["run"].result or 0))
    assert emu_boot["run"].result == workload.reference(emu_boot["n"])


@then(parsers.parse("QEMU s'arrête avec le code {code:d} que l'invité a demandé sur le port 0xF4 : "
                    "ses entrées-sorties vont à l'émulateur"))
def boot_exit(emu_boot, code):
    assert code == emulation.EXIT_STATUS and emu_boot["run"].returncode == code, emu_boot["run"].returncode


# --- heterogeneous architectures -------------------------------------------------------------------
@when("je demande au noyau de l'hôte de l'exécuter lui-même", target_fixture="emu_direct")
def direct(emu_program, evidence):
    out = emulation.direct_exec(emu_program["elf"])
    evidence.figure("exécution directe par le noyau", out.error or f"binfmt_misc : {out.binfmt_handler}")
    return out


@then("le noyau le refuse (format d'exécutable inconnu) ou le confie à un émulateur enregistré dans binfmt_misc")
def refused_or_delegated(emu_direct):
    d = emu_direct
    assert d.errno == errno.ENOEXEC or "qemu" in d.binfmt_handler, (
        f"le noyau de l'hôte n'a ni refusé le programme ARM64 (errno {d.errno}, {d.error or 'aucune erreur'}) ni "
        f"confié à un émulateur de binfmt_misc ({d.binfmt_handler or 'aucun'}) : il l'a exécuté lui-même")


@when("je l'exécute sous qemu-aarch64-static", target_fixture="emu_run")
def run_qemu_arm(emu_program):
    return emulation.run_program(emu_program["elf"], emulation.QEMU_USER_AARCH64)


@then(parsers.parse("il écrit « {text} » et se termine avec le code {code:d}"))
def greeting(emu_run, text, code, evidence):
    evidence.text("sortie du programme ARM64", emu_run.text)
    assert emu_run.text == text + "\n" and emu_run.returncode == code, (emu_run.text, emu_run.returncode, emu_run.stderr)


@then("son résultat, calculé avec des instructions ARM, est celui de référence")
def arm_result(emu_run, emu_program, evidence):
    evidence.figure("résultat ARM64", hex(emu_run.result or 0))
    assert emu_run.result == workload.reference(emu_program["n"])


# --- isolation -------------------------------------------------------------------------------------------
@when("je démarre sous qemu-system-x86_64 (TCG) un invité qui fouille octet par octet ses 16 Mio de mémoire à la "
      "recherche d'une marque placée dans sa mémoire et d'une autre placée dans celle du processus QEMU",
      target_fixture="emu_isolation")
def isolation(evidence):
    probe = emulation.isolation_probe()
    evidence.figure("isolation de la mémoire de l'invité", probe.describe())
    return probe


@then("l'invité trouve la marque placée dans sa propre mémoire : sa fouille fonctionne")
def own_mark_found(emu_isolation):
    p = emulation_run_ok(emu_isolation)
    assert p.own_found and p.own_found >= 1, f"{p.describe()} : la fouille ne trouve même pas sa propre marque"


@then("la marque de l'hôte était dans la mémoire du processus QEMU pendant la fouille")
def host_mark_in_qemu(emu_isolation):
    assert emu_isolation.host_mark_in_qemu, (f"{emu_isolation.describe()} : la marque de l'hôte n'a pas été vue "
                                             "dans /proc/PID/environ de QEMU, l'épreuve ne prouve rien")


@then("l'invité ne trouve pas la marque de l'hôte : sa mémoire est un espace à part")
def host_mark_not_found(emu_isolation):
    p = emulation_run_ok(emu_isolation)
    assert p.host_found == 0, f"{p.describe()} : l'invité lit la mémoire de l'hôte"


def emulation_run_ok(probe):
    """The probe's QEMU ended as the guest asked (code 33) with both counts, else the step fails with its output."""
    assert probe.run.returncode == emulation.EXIT_STATUS and probe.host_found is not None, (
        f"QEMU s'est terminé avec le code {probe.run.returncode} (attendu {emulation.EXIT_STATUS}), sortie "
        f"{probe.run.output[:64]!r}, erreurs {probe.run.stderr[-300:]!r}")
    return probe
