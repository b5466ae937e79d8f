"""`popek quiz verify`: the comparisons of a key with what a host or a cloud reports (pure logic), and the
command's honest skips when nothing can be measured."""
import dataclasses

from popek.checks.cloud.catalog import COURSE_NAMES
from popek.checks.quiz.bank import load_banks
from popek.checks.quiz.verify import Context, compare_catalog, compare_flavors, compare_pg_table, verify_banks
from quiz_helpers import DATA

BANK = load_banks(DATA)["demo"]
Q = {q.id: q for q in BANK.questions}


def test_pg_table_against_a_measured_table():
    pg = Q["demo-pgtable"]
    measured = {"emulation": {"equivalence": "OK", "efficacite": "KO", "controle": "OK"},
                "kvm": {"equivalence": "OK", "efficacite": "OK", "controle": "non mesuré"}}
    ok = compare_pg_table(pg, measured)
    assert ok.status == "ok" and ok.message.startswith("5 case(s)")
    measured["conteneur"] = {"Équivalence": "OK"}
    bad = compare_pg_table(pg, measured)
    assert bad.status == "disagree" and "conteneur/equivalence : clé KO, mesuré OK" in bad.message
    assert compare_pg_table(pg, {}).status == "skip"


def test_catalog_services_against_catalog_entries():
    services = Q["demo-services"]
    entries = [{"type": "compute", "name": "nova"}, {"type": "image", "name": "glance"},
               {"type": "identity", "name": "keystone"}]
    ok = compare_catalog(services, entries, COURSE_NAMES)
    assert ok.status == "ok" and "absents : Neutron" in ok.message
    entries[1] = {"type": "network", "name": "glance"}
    assert compare_catalog(services, entries, COURSE_NAMES).status == "disagree"
    assert compare_catalog(services, [], COURSE_NAMES).status == "skip"


def test_flavor_order_against_flavors():
    q = Q["demo-history"]   # items are not flavors: nothing to compare
    assert compare_flavors(q, [("m1.small", 1, 2048, 20)]).status == "skip"
    q = dataclasses.replace(q, items=["m1.tiny (1 vCPU)", "m1.small", "m1.large"])
    flavors = [("m1.tiny", 1, 512, 1), ("m1.small", 1, 2048, 20), ("m1.large", 4, 8192, 80)]
    assert compare_flavors(q, flavors).status == "ok"
    q = dataclasses.replace(q, items=["m1.large", "m1.small"])
    assert compare_flavors(q, flavors).status == "disagree"
    # size words, as the course writes them, within the family that has them
    q = dataclasses.replace(q, items=["tiny", "small", "large"])
    both = flavors + [("ds.large", 1, 1024, 1), ("ds.small", 8, 32768, 1)]
    assert compare_flavors(q, both).status == "ok"
    q = dataclasses.replace(q, items=["small", "tiny"])
    assert compare_flavors(q, both).status == "disagree"


def test_verify_skips_with_the_true_reason_when_no_cloud_is_reachable(tmp_path):
    # only the catalog question: the pg-table one would run the host's real measurements (tens of seconds)
    bank = dataclasses.replace(BANK, questions=[Q["demo-services"], Q["demo-kvm"]])
    environ = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "none.yaml")}
    findings = verify_banks({"demo": bank}, Context(cloud=None, environ=environ, clouds_yaml=tmp_path / "absent.yaml"))
    assert [(f.question, f.status) for f in findings] == [("demo-services", "skip")]
    assert "cloud" in findings[0].message
