"""Glue for features/hote/anneaux.feature -> popek.checks.host.rings."""
from pytest_bdd import parsers, then, when

from popek.checks.host import rings


@when("je lis le niveau de privilège courant dans le registre CS", target_fixture="cpl")
def read_cpl(evidence):
    cpl = rings.current_privilege_level()
    evidence.figure("CPL (CS & 3)", cpl)
    return cpl


@then(parsers.parse("le niveau de privilège est {level:d}"))
def cpl_is(cpl, level):
    assert cpl == level, f"CPL lu dans CS : {cpl}, attendu {level}"
