"""Fault tests of faults no test was written for, round 2 (hF2's hunt, 2026-12-07 16:10–17:35 UTC): each puts the
real embedded cloud (or the run's own resources) in the faulty state, runs the claims it should break with
`popek run cloud` as a user would, and asserts ÉCHEC naming the cause with its evidence — then undoes the fault.

| fault | claims | what the scenario must say | before the fix |
|---|---|---|---|
| the SSH rule the scenario put back deleted behind its back (the allow path) | C25 | no group of the guest's ports admits tcp 22 any more, with the rules they hold, after a short try | a TimeoutError after 60 s (no verdict, no cause) |
| the SSH rule of the second guest's group deleted right after the floating IP moved to it | C24 | the same, after a short try | 300 s of waiting, then « n'arrive pas sur … » without a cause |

Measured 2026-12-07 under `flock -s` (hF2): the SSH rule put back then deleted (C25), before the fix « broken »
(TimeoutError « SSH vers 198.51.100.85 impossible en 60 s », no cause, 128.7 s), after ÉCHEC in 125.8 s (the run's pair
booted inside it) « SSH ne passe pas malgré la règle SSH remise : … impossible en 20 s … ; aucun groupe de sécurité des
ports de l'instance ne laisse entrer tcp 22 depuis cette source, selon Neutron en ce moment (groupe 750eec39-… : entrée
IPv4 icmp depuis 0.0.0.0/0 (règle c1d4fc1b-…)) : la règle qui l'autorisait n'y est plus ». The second guest's SSH rule
deleted after the move (C24): without a pause the OVS agent had not applied the deletion yet and SSH arrived 0.6 s
later (RÉUSSI, true at that moment: the plugin now waits 10 s); with it, ÉCHEC in 77.7 s « SSH via 198.51.100.46
n'arrive pas sur 10.78.0.253 (dernier vu : ['TimeoutError']) ; aucun groupe … (groupe 8acbac92-… : aucune règle en
entrée) : la règle qui l'autorisait n'y est plus » — before the fix, by its code, 300 s of waiting and no cause.

Faults at the scenario's own steps are injected by a small pytest plugin given to `popek run` after `--`
(test_faults_dataplane.run_scenarios). They touch only the run's own security groups: a shared hold of the
cloud's lock is enough (`flock -s /tmp/popek-cloud.lock`).
"""
from __future__ import annotations

import pytest

from faults import record, slow
from helpers import running_cloud
from test_faults_dataplane import failed_with, pick, run_scenarios, seconds

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="mettre en faute le cloud embarqué")


#: Deletes the SSH rule the scenario has just put back in its group (« je remets la règle SSH »): the scenario's
#: « SSH passe de nouveau » then waits for SSH that no group admits. The group is the scenario's own (its ledger
#: deletes it).
SSH_RULE_PUT_BACK_DELETED = """
def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if step.name == "je remets la règle SSH":
        conn, firewall = request.getfixturevalue("conn"), request.getfixturevalue("firewall")
        for rule in conn.network.security_group_rules(security_group_id=firewall.group.id, direction="ingress"):
            if rule.protocol == "tcp" and rule.port_range_min == 22:
                conn.network.delete_security_group_rule(rule)
"""


@pytest.mark.falsifies("C25", fault="la règle SSH que le scénario vient de remettre supprimée dans son dos (le chemin "
                                    "qui doit laisser passer) : aucun groupe de l'instance n'admet plus SSH")
@slow("faute lente (~90 s : la paire d'instances du run à démarrer)")
def test_ssh_rule_deleted_after_put_back_is_named(state, tmp_path, record_property):
    found = run_scenarios(tmp_path, "bloque_puis", plugin=SSH_RULE_PUT_BACK_DELETED)
    result = pick(found, "C25", "bloque")
    message = failed_with(result, "SSH ne passe pas malgré la règle SSH remise",
                          "aucun groupe de sécurité des ports de l'instance ne laisse entrer tcp 22",
                          "la règle qui l'autorisait n'y est plus")
    assert seconds(result) < 150, f"nommé en {seconds(result):.0f} s"
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")


#: Deletes the SSH rules of the second guest's groups (the run's SSH-only group) right after the scenario moved the
#: floating IP to it; puts SSH_IN back in those groups once the step that judges it has run (the run's other
#: scenarios use that group too).
SECOND_SSH_RULE_DELETED = """
import time

from popek.checks.cloud import secgroups

AGENT_LAG = 10

_gone = set()

def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if step.name == "je déplace l'IP flottante vers la seconde instance":
        conn, second = request.getfixturevalue("conn"), request.getfixturevalue("second")
        for port in conn.network.ports(device_id=second.server.id):
            for group in port.security_group_ids or []:
                for rule in conn.network.security_group_rules(security_group_id=group, direction="ingress"):
                    if rule.protocol == "tcp" and rule.port_range_min == 22:
                        conn.network.delete_security_group_rule(rule)
                        _gone.add(group)
        time.sleep(AGENT_LAG)  # the OVS agent applies the deletion (measured: SSH arrived 0.6 s after it without)
    elif step.name == "SSH sur la même adresse arrive sur la seconde instance":
        _put_back(request)

def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception):
    _put_back(request)

def _put_back(request):
    conn = request.getfixturevalue("conn")
    while _gone:
        conn.network.create_security_group_rule(security_group_id=_gone.pop(), **secgroups.SSH_IN)
"""


@pytest.mark.falsifies("C24", fault="la règle SSH du groupe de la seconde instance supprimée dans son dos juste après "
                                    "le déplacement de l'IP flottante : SSH ne peut plus y arriver")
@slow("faute lente (~90 s : la paire d'instances du run à démarrer)")
def test_second_guests_ssh_rule_deleted_is_named_not_the_move(state, tmp_path, record_property):
    found = run_scenarios(tmp_path, "déplacée_mène", plugin=SECOND_SSH_RULE_DELETED)
    result = pick(found, "C24", "déplacée")
    message = failed_with(result, "n'arrive pas sur",
                          "aucun groupe de sécurité des ports de l'instance ne laisse entrer tcp 22",
                          "la règle qui l'autorisait n'y est plus")
    assert seconds(result) < 150, f"nommé en {seconds(result):.0f} s"
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")
