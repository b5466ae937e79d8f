"""Glue for features/cloud/versions.feature -> popek.checks.cloud.versions."""
import pytest
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
    return mv


@then("cette microversion est le maximum d'une version publiée d'OpenStack, située dans le calendrier")
def release(max_mv, evidence):
    kind, text = versions.nova_release(max_mv)
    evidence.figure("version d'OpenStack désignée", text)
    if kind in ("newer", "older"):
        pytest.skip(f"microversion compute maximale {max_mv} : {text} ; la version ne peut pas être nommée ici")
    assert kind == "release", f"microversion compute maximale {text}"
    evidence.figure("place dans le calendrier du cours (2 versions par an)", versions.calendar_place(text))
