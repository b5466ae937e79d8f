"""Glue for features/hote/instructions_sensibles.feature -> popek.checks.host.sensitive."""
import pytest
from pytest_bdd import given, parsers, then, when

from popek.checks.host import sensitive


@given(parsers.re(r"UMIP (?P<wanted>est|n'est pas) actif sur ce processeur et ce noyau"), target_fixture="umip")
def umip(wanted, evidence):
    state = sensitive.umip_state()
    evidence.figure("UMIP", state.describe())
    if wanted == "est" and not state.active:
        pytest.skip(f"{state.describe()} : ces instructions ne piègent pas ici (voir le scénario sans UMIP)")
    if wanted == "n'est pas" and state.active:
        pytest.skip(f"{state.describe()} : le noyau piège ces instructions, la vraie valeur ne peut pas fuir "
                    "ici (voir le scénario avec UMIP)")
    return state


@when(parsers.parse("j'exécute l'instruction sensible {mnemonic} en ring 3 dans un processus isolé"),
      target_fixture="sensitive_reading")
def run_sensitive(mnemonic, umip, evidence):
    reading = sensitive.read(sensitive.instruction(mnemonic), umip)
    evidence.json(f"{reading.instruction.mnemonic} en ring 3", reading.as_dict())
    return reading


@then("l'instruction sensible s'exécute sans faute visible du programme")
def no_visible_fault(sensitive_reading):
    r = sensitive_reading
    if r.outcome == sensitive.FAULTED and r.umip.active and r.fault.is_general_protection:
        pytest.skip(f"{r.instruction.mnemonic} lève #GP en ring 3 : UMIP est actif et ce noyau ne l'émule pas, "
                    "l'instruction est devenue privilégiée sur ce processeur (le défaut n'est plus observable)")
    assert r.outcome != sensitive.FAULTED, r.describe()


@then(parsers.re(r"elle a piégé vers le noyau, qui l'a émulée : elle coûte le prix d'une trappe "
                 r"\(au moins (?P<ns>\d+) ns\) et rend la valeur factice de Linux"))
def trapped_and_emulated(sensitive_reading, ns, evidence):
    assert float(ns) == sensitive.TRAP_NS
    check_reading(sensitive_reading, sensitive.EMULATED, evidence)


@then(parsers.re(r"elle n'a pas piégé : elle coûte moins de (?P<ns>\d+) ns et rend la vraie valeur du registre"))
def leaked(sensitive_reading, ns, evidence):
    assert float(ns) == sensitive.TRAP_NS
    check_reading(sensitive_reading, sensitive.NATIVE, evidence)


def check_reading(r: sensitive.Reading, outcome: str, evidence) -> None:
    """The reading is `outcome` (EMULATED or NATIVE), measured (timed), and consistent with it."""
    evidence.figure(f"{r.instruction.mnemonic} en ring 3", r.describe())
    if r.cost:
        evidence.figure(f"coût de {r.instruction.mnemonic} en ring 3", round(r.cost.median, 1), " ns")
    assert r.outcome == outcome, r.describe()
    assert r.cost is not None, f"{r.instruction.mnemonic} : coût non mesuré, la trappe ne peut pas être établie"
    assert not r.problems(), " ; ".join(r.problems())


@when(parsers.parse("je demande à POPF d'inverser le drapeau {flag} en ring 3 dans un processus isolé"),
      target_fixture="flags_change")
def popf(flag, evidence):
    change = sensitive.popf_change(flag)
    evidence.figure(f"POPF {change.flag} en ring 3", change.describe())
    evidence.json(f"POPF {change.flag}", change.as_dict())
    return change


@then("POPF s'exécute sans faute visible du programme")
def popf_no_fault(flags_change):
    assert flags_change.fault.outcome == "returned", flags_change.describe()


@then(parsers.parse("le changement du drapeau {flag} a été {effect}"))
def popf_effect(flags_change, flag, effect):
    expected = {"ignoré en silence": flags_change.dropped, "appliqué": flags_change.applied}
    assert effect in expected, f"effet inconnu {effect!r} : {', '.join(expected)}"
    assert flags_change.flag == flag and expected[effect], flags_change.describe()


@when("je lis le sélecteur CS par MOV en ring 3 dans un processus isolé", target_fixture="cs_read")
def read_cs(evidence):
    fault = sensitive.cs_reveals_ring()
    evidence.figure("MOV EAX, CS en ring 3", fault.describe())
    return fault


@then(parsers.parse("la lecture de CS s'exécute sans faute visible du programme et révèle le niveau de privilège {level:d}"))
def cs_reveals(cs_read, level):
    assert cs_read.outcome == "returned" and cs_read.returned == level, cs_read.describe()
