"""Glue for features/cloud/versions.feature -> popek.checks.cloud.versions."""
from pytest_bdd import then, when

from popek.checks.cloud import versions


@when("je lis les versions que chaque API annonce", target_fixture="reported")
def read_versions(conn, evidence):
    reported = versions.report(conn)
    evidence.json("versions annoncées", reported)
    return reported


@then("Keystone annonce l'API v3")
def identity_v3(reported):
    ids = [v["id"] for v in reported.get("identity", [])]
    assert any(str(i).startswith("v3") for i in ids), f"Keystone annonce : {ids}"


@then("l'API compute annonce une microversion maximale", target_fixture="max_mv")
def compute_max(conn, evidence):
    mv = versions.compute_max_microversion(conn)
    evidence.figure("microversion compute maximale", mv)
    versions.parse(mv)
    return mv


@then("cette microversion désigne une version d'OpenStack")
def release(max_mv, evidence):
    name = versions.release_for(max_mv)
    evidence.figure("version d'OpenStack suggérée", name)
    assert name != "inconnue", f"microversion {max_mv} hors de la table"
