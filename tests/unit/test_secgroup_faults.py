"""Fault tests of C25's refusal property on forged observations (convention: tests/conftest.py).

A real Neutron cannot be made to accept an invalid rule: its API validates a rule before anything is
stored, so no database trigger or configuration reaches that path. Here the scenario's own steps talk to
a forged Neutron that accepts, errs or keeps what it refuses, and must end ÉCHEC naming the rule. The
round-trip property's fault is real: tests/integration/test_faults_api.py::test_rules_stored_wider_fail_c25
(Neutron made to store every rule one port wider than asked).
"""
import itertools
import types

import pytest
from openstack import exceptions as sdk_exc

from faults import Evidence, record, scenario_verdict
from popek.steps import cloud_secgroups


class ForgedNeutron:
    """Stands for `conn.network` (and `conn`) where security group rules are concerned: rules live in a
    dict; `answer(fields)` is None to accept a rule, else the HTTP status it is refused with; `keep` stores
    a refused rule all the same."""

    def __init__(self, answer, keep=False):
        self.answer, self.keep, self.rules, self.ids = answer, keep, {}, itertools.count(1)
        self.network = self

    def create_security_group_rule(self, security_group_id, **fields):
        rule = types.SimpleNamespace(**{"remote_ip_prefix": None, "description": None, "remote_group_id": None,
                                        **fields, "id": f"forged-{next(self.ids)}"})
        status = self.answer(fields)
        if status is None or self.keep:
            self.rules[rule.id] = rule
        if status is not None:
            raise sdk_exc.HttpException(message=f"forged {status}", http_status=status)
        return rule

    def security_group_rules(self, security_group_id):
        return list(self.rules.values())

    def delete_security_group_rule(self, rule, ignore_missing=True):
        self.rules.pop(getattr(rule, "id", rule), None)


def refusal_verdict(neutron) -> tuple[str, str]:
    """The verdict of the scenario « Toute règle invalide est refusée sans rien créer » against `neutron`."""
    ledger = types.SimpleNamespace(record=lambda kind, what: types.SimpleNamespace(id=None))
    group, seen = types.SimpleNamespace(id="forged-group", name="popek-forged-sg"), {}

    def submit():
        seen["refusals"] = cloud_secgroups.invalid_property(neutron, ledger, group, 25, Evidence())

    return scenario_verdict(submit, lambda: cloud_secgroups.invalid_done(neutron, group, seen["refusals"]))


def expect_failure(record_property, verdict, message, *needles):
    record(record_property, verdict, message)
    assert verdict == "ÉCHEC", (verdict, message)
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.falsifies("C25", fault="un Neutron qui accepte toute règle, même invalide (Neutron forgé : le vrai "
                                    "valide avant d'enregistrer)")
def test_a_neutron_that_accepts_invalid_rules_fails_c25(record_property):
    verdict, message = refusal_verdict(ForgedNeutron(lambda fields: None))
    expect_failure(record_property, verdict, message, "règle acceptée (id forged-", "au lieu d'un refus 4xx")


@pytest.mark.falsifies("C25", fault="un Neutron qui répond 500 aux règles invalides (Neutron forgé)")
def test_a_neutron_that_errs_on_invalid_rules_fails_c25(record_property):
    verdict, message = refusal_verdict(ForgedNeutron(lambda fields: 500))
    expect_failure(record_property, verdict, message, "statut 500, attendu 4xx")


@pytest.mark.falsifies("C25", fault="un Neutron qui refuse une règle invalide (400) mais l'enregistre quand même "
                                    "(Neutron forgé)")
def test_a_neutron_that_keeps_what_it_refuses_fails_c25(record_property):
    verdict, message = refusal_verdict(ForgedNeutron(lambda fields: 400, keep=True))
    expect_failure(record_property, verdict, message, "refusée (400) mais les règles ont changé")


def test_the_forged_neutron_that_refuses_with_400_passes():
    """The forgery itself is sound: refusing every invalid rule with a 400 is RÉUSSI."""
    assert refusal_verdict(ForgedNeutron(lambda fields: 400)) == ("RÉUSSI", "")
