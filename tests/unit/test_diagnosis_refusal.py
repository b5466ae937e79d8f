"""Why traffic a scenario expects to PASS cannot, from the groups alone (secgroups.refusal_findings): the allow path,
the opposite of test_diagnosis_filter. Pure logic on the shapes Neutron's API shows (hF2's fault: the SSH rule
deleted behind a scenario's back, C24/C25)."""
from popek.checks.cloud import secgroups

from test_diagnosis_filter import EGRESS, rule

SSH = rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0", id="ssh")
PORT = {"id": "p1", "port_security_enabled": True, "security_group_ids": ["g"]}


def test_a_group_whose_ssh_rule_is_gone_is_named_with_what_it_holds():
    icmp = rule(protocol="icmp", remote_ip_prefix="0.0.0.0/0", id="ping")
    found = secgroups.refusal_findings([PORT], lambda g: EGRESS + [icmp], "tcp", 22)
    assert found == ("aucun groupe de sécurité des ports de l'instance ne laisse entrer tcp 22 depuis cette source, "
                     "selon Neutron en ce moment (groupe g : entrée IPv4 icmp depuis 0.0.0.0/0 (règle ping)) : "
                     "la règle qui l'autorisait n'y est plus")
    assert "aucune règle en entrée" in secgroups.refusal_findings([PORT], lambda g: EGRESS, "tcp", 22)


def test_a_group_that_admits_it_is_no_refusal():
    assert secgroups.refusal_findings([PORT], lambda g: EGRESS + [SSH], "tcp", 22) is None
    # any group of any port is enough
    two = {**PORT, "security_group_ids": ["g", "h"]}
    assert secgroups.refusal_findings([two], lambda g: EGRESS + ([SSH] if g == "h" else []), "tcp", 22) is None


def test_port_security_off_or_nothing_known_is_no_refusal():
    off = {**PORT, "port_security_enabled": False}
    assert secgroups.refusal_findings([off], lambda g: EGRESS, "tcp", 22) is None
    assert secgroups.refusal_findings([], lambda g: EGRESS, "tcp", 22) is None


def test_a_port_without_group_refuses_everything():
    bare = {**PORT, "security_group_ids": []}
    assert "le port p1 n'est dans aucun groupe" in secgroups.refusal_findings([bare], lambda g: [], "tcp", 22)


def test_the_source_counts():
    """A remote-group rule admits only its members; a prefix only the addresses it holds (unknown source: kept)."""
    rg = rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id="first", id="rg")
    assert secgroups.refusal_findings([PORT], lambda g: [rg], "tcp", 22, source_groups=["first"]) is None
    assert "membres du groupe first" in secgroups.refusal_findings([PORT], lambda g: [rg], "tcp", 22,
                                                                   source_groups=["other"])
    narrow = rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="10.9.0.0/24", id="n")
    assert secgroups.refusal_findings([PORT], lambda g: [narrow], "tcp", 22, sources=["10.9.0.5"]) is None
    assert secgroups.refusal_findings([PORT], lambda g: [narrow], "tcp", 22, sources=["172.24.4.1"]) is not None
    assert secgroups.refusal_findings([PORT], lambda g: [narrow], "tcp", 22) is None
