"""Glue for features/hote/anneaux.feature -> popek.checks.host.rings (and isolate, its fault probe)."""
import os

from pytest_bdd import parsers, then, when

from popek.checks.host import isolate, rings


@when("je lis le niveau de privilège courant dans le registre CS", target_fixture="cpl")
def read_cpl(evidence):
    cpl = rings.current_privilege_level()
    evidence.figure("CPL (CS & 3)", cpl)
    return cpl


@then(parsers.parse("le niveau de privilège est {level:d}"))
def cpl_is(cpl, level):
    assert cpl == level, f"CPL lu dans CS : {cpl}, attendu {level}"


# --- the fault probe, checked against faults whose answer is known ---------------------------------
@when("je provoque dans un processus isolé une faute de page, une instruction indéfinie et un point d'arrêt",
      target_fixture="calibration")
def calibrate(evidence):
    runs = isolate.calibration()
    evidence.json("étalonnage de la sonde", {c.name: f.as_dict() for c, f in runs})
    return runs


@then("le gestionnaire relève pour chacune le signal, le si_code, la trappe, le code d'erreur et l'adresse attendus")
def calibrated(calibration):
    wrong = {c.name: isolate.mismatches(f, c.expected) for c, f in calibration if isolate.mismatches(f, c.expected)}
    assert not wrong, f"champs relevés différents des valeurs attendues (attendu, observé) : {wrong}"


# --- privileged instructions in ring 3 --------------------------------------------------------------
@when(parsers.parse("j'exécute l'instruction privilégiée {mnemonic} en ring 3 dans un processus isolé"),
      target_fixture="ring3_fault")
def run_privileged(mnemonic, evidence):
    ins = rings.instruction(mnemonic)
    fault = rings.run_in_ring3(ins)
    evidence.figure(f"{ins.mnemonic} en ring 3", fault.summary())
    evidence.json(f"{ins.mnemonic} en ring 3", {"assembleur": ins.assembly, "octets": ins.code.hex(" "),
                                                "rôle en ring 0": ins.role, **fault.as_dict()})
    return ins, fault


@then("le processus reçoit SIGSEGV avec la trappe 13 (#GP) et le si_code 128 (SI_KERNEL)")
def general_protection(ring3_fault):
    ins, fault = ring3_fault
    assert fault.is_general_protection, f"{ins.mnemonic} ({ins.assembly}) : {fault.describe()}"


@then(parsers.parse("la faute a lieu sur l'instruction {mnemonic} elle-même"))
def fault_on_instruction(ring3_fault, mnemonic):
    ins, fault = ring3_fault
    assert rings.refused_by_cpu(ins, fault), f"faute à l'octet {fault.offset}, instruction à l'octet {ins.at}"


# --- the price of a ring crossing -------------------------------------------------------------------
@when("je chronomètre en code machine l'appel système getppid par SYSCALL et un appel de fonction CALL/RET",
      target_fixture="syscall_ratio")
def time_syscall(evidence):
    ratio = rings.syscall_vs_call()
    evidence.figure("appel système getppid (SYSCALL)", round(ratio.subject_ns, 2), " ns")
    evidence.figure("appel de fonction CALL/RET", round(ratio.reference_ns, 2), " ns")
    evidence.figure("rapport SYSCALL / CALL", round(ratio.value, 1), "×")
    return ratio


@then("l'appel système par SYSCALL renvoie bien le pid du processus parent")
def syscall_is_real():
    assert rings.raw_getppid() == os.getppid()


@then("l'appel système coûte plus qu'un appel de fonction, et le rapport des deux est consigné")
def syscall_costs_more(syscall_ratio):
    assert syscall_ratio.value > 1, str(syscall_ratio)
