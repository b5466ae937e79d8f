"""Glue for features/cloud/groupes_securite.feature -> popek.checks.cloud.secgroups."""
from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import secgroups


@when("je lis le groupe de sécurité « default » du projet", target_fixture="rules")
def default_rules(conn, evidence):
    rules = secgroups.rules_of(conn, secgroups.default_group(conn))
    evidence.json("règles du groupe default", rules)
    evidence.figure("règles du groupe default", len(rules))
    return rules


@then("chacune de ses règles dit un sens (entrée ou sortie), une famille d'adresses et une origine")
def rules_complete(rules):
    for r in rules:
        assert r["direction"] in ("ingress", "egress"), r
        assert r["ethertype"] in ("IPv4", "IPv6"), r
        # origin: a CIDR, another group, or none at all (= anywhere)
        assert r["remote_ip_prefix"] is None or "/" in r["remote_ip_prefix"], r


@given("un groupe de sécurité sans règle", target_fixture="group")
def empty_group(conn, ledger):
    group = secgroups.create_group(conn, ledger, keep_egress=False)
    assert secgroups.rules_of(conn, group) == []
    return group


@when(parsers.parse("j'y ajoute une règle qui autorise {protocol} {port:d} en entrée depuis {cidr}"),
      target_fixture="wanted")
def add_one_rule(conn, ledger, group, protocol, port, cidr):
    fields = {"direction": "ingress", "ether_type": "IPv4", "protocol": protocol.lower(),
              "port_range_min": port, "port_range_max": port, "remote_ip_prefix": cidr}
    secgroups.add_rule(conn, ledger, group, **fields)
    return fields


@then("le groupe contient cette règle, avec ces valeurs")
def rule_present(conn, group, wanted, evidence):
    rules = secgroups.rules_of(conn, group)
    evidence.json("règles du groupe", rules)
    expected = {secgroups.FIELDS[k]: v for k, v in wanted.items()}
    assert any(all(r[k] == v for k, v in expected.items()) for r in rules), f"{expected} absente de {rules}"


@when(parsers.parse("je crée puis relis {count:d} règles valides générées, en supprimant chacune"),
      target_fixture="examples")
def valid_property(conn, ledger, group, count, evidence):
    tried = secgroups.round_trip_property(conn, ledger, group, max_examples=count)
    evidence.figure("règles valides essayées", len(tried))
    evidence.json("règles valides essayées", tried)
    return tried


@then("chaque champ relu était celui donné et le groupe est de nouveau vide")
def valid_done(conn, group, examples):
    assert examples, "aucun exemple essayé"
    assert secgroups.rules_of(conn, group) == [], "des règles sont restées"


@when(parsers.parse("je soumets {count:d} règles invalides générées"), target_fixture="refusals")
def invalid_property(conn, ledger, group, count, evidence):
    seen = secgroups.refusal_property(conn, ledger, group, max_examples=count)
    evidence.figure("règles invalides refusées", len(seen))
    evidence.json("refus", seen)
    return seen


@then("chacune est refusée par un statut 4xx et le groupe est resté vide")
def invalid_done(conn, group, refusals):
    assert refusals and all(400 <= r["statut"] < 500 for r in refusals)
    assert secgroups.rules_of(conn, group) == [], "une règle invalide a laissé une trace"
