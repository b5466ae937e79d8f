"""Glue for features/hote/tableau_popek_goldberg.feature -> popek.checks.host.pgtable.

`host_measures` is the one session-wide Measurements: every scenario that times the workload under
an executor reads it from there, so that each measurement is taken once per run.
"""
import pytest
from pytest_bdd import parsers, then, when

from popek.checks.host import pgtable


@pytest.fixture(scope="session")
def host_measures():
    return pgtable.Measurements()


@when("je mesure les trois techniques sur cet hôte", target_fixture="pg_table")
def measure_table(host_measures):
    return pgtable.build(host_measures)


@then("le tableau mesuré est joint au rapport à côté de celui du cours")
def table_attached(pg_table, evidence):
    evidence.terminal("tableau de Popek et Goldberg mesuré sur cet hôte", pg_table.text())
    evidence.json("tableau mesuré et tableau du cours", {"mesuré": pg_table.verdicts(), "cours": pgtable.COURSE})


@then("au moins une ligne du tableau a pu être mesurée entièrement ici")
def some_row_measured(pg_table):
    if not pg_table.complete_rows():
        pytest.skip("aucune ligne du tableau n'a pu être mesurée entièrement ici : "
                    + " ; ".join(sorted({r for _, _, r in pg_table.unmeasured()})))


@then("chaque case mesurée a la valeur que lui donne le cours")
def cells_agree(pg_table, evidence):
    evidence.figure("cases mesurées", 9 - len(pg_table.unmeasured()), " sur 9")
    assert not pg_table.disagreements(), pg_table.describe(pg_table.disagreements())


@then(parsers.parse("les trois cases de la ligne « {label} » ont été mesurées ici"), target_fixture="pg_row")
def row_measured(pg_table, label):
    row = pgtable.technique(label)
    missing = pg_table.row_unmeasured(row)
    if missing:
        pytest.skip(pg_table.row_incomplete(row))
    return row


@then("elles ont la valeur que leur donne le cours")
def row_agrees(pg_table, pg_row, evidence):
    for c, cl in pgtable.CONDITIONS.items():
        cell = pg_table.cells[pg_row][c]
        evidence.figure(f"{pgtable.TECHNIQUES[pg_row]} / {cl}", f"{cell.verdict} (cours : {pgtable.COURSE[pg_row][c]})")
    assert not pg_table.row_disagreements(pg_row), pg_table.describe(pg_table.row_disagreements(pg_row))


@then("le graphique d'efficacité est joint au rapport")
def chart_attached(pg_table, evidence):
    if not pg_table.ratios:
        pytest.skip("aucune technique mesurable ici (ni conteneur, ni KVM, ni QEMU)")
    evidence.svg("graphique d'efficacité (échelle logarithmique)", pgtable.chart_svg(pg_table.ratios))
    for ratio in pg_table.ratios:
        evidence.figure(f"{ratio.subject} / natif", ratio.value, "×")


@then(parsers.parse("chaque technique mesurée est du côté du seuil ×{bound:d} que lui donne le cours : "
                    "conteneur et code utilisateur de l'invité KVM en dessous, émulation TCG au-dessus"))
def ratios_on_the_courses_side(pg_table, bound):
    wrong = pgtable.efficiency_disagreements(pg_table.ratios, bound)
    assert not wrong, "\n".join(wrong)
