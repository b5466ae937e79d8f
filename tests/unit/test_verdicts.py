"""tests/verdicts.py: a run's verdict per scenario from its allure results, and the side-by-side table of
two runs that tests/integration/test_renamed_cloud.py prints (pure logic, no cloud)."""
import json
import re

import pytest

import verdicts
from popek import paths


def result(name, status, message="", claims=(), params=()):
    return {"name": name, "status": status, "statusDetails": {"message": message} if message else {},
            "labels": [{"name": "claim", "value": c} for c in claims] + [{"name": "tag", "value": "needs:cloud"}],
            "parameters": [{"name": k, "value": v} for k, v in params]}


RUN = [
    result("Le catalogue expose les projets OpenStack du cours, et chacun répond", "passed", claims=("C27",),
           params=[("type", "compute"), ("projet", "Nova"), ("nom au catalogue du service compute", "'nova'")]),
    result("Le catalogue expose les projets OpenStack du cours, et chacun répond", "passed", claims=("C27",), params=[("type", "network"), ("projet", "Neutron")]),
    result("La commande du cours", "skipped", "le cloud n'a pas d'image « Debian 13 » (donnez --image …)", ("C37", "C33")),
    result("Un volume garde ses données", "broken", "Cinder | ne répond pas", ("C15",)),
]


OUTLINES = {"Le catalogue expose les projets OpenStack du cours, et chacun répond": {"type", "projet"}}


def test_the_features_outline_columns_are_found_per_outline():
    outlines = verdicts.outline_columns(paths.FEATURES_DIR)
    commande = [cols for pattern, cols in outlines.items() if re.fullmatch(pattern, "openstack image list parle à Glance")]
    assert commande == [{"commande", "projet", "ressources"}]
    assert not any(re.fullmatch(p, "La commande du cours") for p in outlines)  # not an outline: no columns


def test_a_figure_named_like_another_outlines_column_stays_a_figure():
    verbatim = result("La commande du cours", "passed", params=[("commande", "openstack server create --flavor m1.small")])
    rows = verdicts.scenario_rows([verbatim], verdicts.outline_columns(paths.FEATURES_DIR))
    assert list(rows) == ["La commande du cours"] and rows["La commande du cours"].figures == {
        "commande": "openstack server create --flavor m1.small"}


def test_rows_tell_outline_rows_apart_and_keep_figures_aside():
    rows = verdicts.scenario_rows(RUN, OUTLINES)
    nova = rows["Le catalogue expose les projets OpenStack du cours, et chacun répond [compute, Nova]"]
    assert nova.claims == ("C27",)
    assert nova.verdict == "RÉUSSI" and nova.reason == "" and nova.figures == {"nom au catalogue du service compute": "'nova'"}
    assert rows["La commande du cours"].verdict == "IGNORÉ" and rows["La commande du cours"].claims == ("C33", "C37")
    assert rows["Un volume garde ses données"].verdict == "ÉCHEC"  # broken: the cloud failed mid-scenario
    assert verdicts.counts(rows) == "RÉUSSI 2, ÉCHEC 1, IGNORÉ 1"


def test_the_same_scenario_twice_is_refused():
    with pytest.raises(ValueError, match="deux résultats"):
        verdicts.scenario_rows(RUN[:1] * 2, OUTLINES)


def test_the_table_puts_runs_side_by_side_with_reasons_cut_and_pipes_escaped(tmp_path):
    (tmp_path / "allure-results").mkdir()
    for i, r in enumerate(RUN):
        (tmp_path / "allure-results" / f"{i}-result.json").write_text(json.dumps(r))
    a = verdicts.read_run(tmp_path, paths.FEATURES_DIR)
    b = {k: v._replace(verdict="RÉUSSI", reason="") for k, v in a.items() if "commande" not in k}
    lines = verdicts.table({"(a)": a, "(b)": b}, width=20).splitlines()
    assert lines[0] == "| claims | scénario | (a) | (b) |" and len(lines) == 2 + len(a)
    assert "| C33, C37 | La commande du cours | IGNORÉ : le cloud n'a pas d'i… | absent |" in lines
    assert "| C15 | Un volume garde ses données | ÉCHEC : Cinder \\| ne répond p… | RÉUSSI |" in lines
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| C15", "| C27", "| C27", "| C33, C37"]


def test_collapsed_outline_rows_with_the_same_cells_make_one_line():
    rows = verdicts.scenario_rows(RUN, OUTLINES)
    lines = verdicts.table({"(a)": rows, "(b)": rows}, collapse=True).splitlines()
    assert "| C27 | Le catalogue expose les projets OpenStack du cours, et chacun répond (×2) | RÉUSSI | RÉUSSI |" in lines and len(lines) == 2 + 3
    other = {**rows, "Le catalogue expose les projets OpenStack du cours, et chacun répond [network, Neutron]":
             rows["Le catalogue expose les projets OpenStack du cours, et chacun répond [network, Neutron]"]._replace(verdict="IGNORÉ", reason="non")}
    lines = verdicts.table({"(a)": rows, "(b)": other}, collapse=True).splitlines()
    assert "| C27 | Le catalogue expose les projets OpenStack du cours, et chacun répond [network, Neutron] | RÉUSSI | IGNORÉ : non |" in lines
    assert "| C27 | Le catalogue expose les projets OpenStack du cours, et chacun répond [compute, Nova] | RÉUSSI | RÉUSSI |" in lines
