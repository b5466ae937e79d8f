"""Glue for features/hote/tableau_popek_goldberg.feature -> popek.checks.host.pgtable.

`host_measures` is the one session-wide Measurements: every scenario that times the workload under
an executor reads it from there, so that each measurement is taken once per run.
"""
import pytest
from pytest_bdd import then, when

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


@then("au moins une case a pu être mesurée ici")
def something_measured(pg_table):
    if len(pg_table.unmeasured()) == 9:
        pytest.skip("aucune case mesurable ici : " + " ; ".join(sorted({r for _, _, r in pg_table.unmeasured()})))


@then("chaque case mesurée a la valeur que lui donne le cours")
def cells_agree(pg_table, evidence):
    evidence.figure("cases mesurées", 9 - len(pg_table.unmeasured()), " sur 9")
    assert not pg_table.disagreements(), "\n".join(
        f"{pgtable.TECHNIQUES[t]} / {pgtable.CONDITIONS[c]} : mesuré {got}, le cours dit {want} — "
        f"{pg_table.cells[t][c].evidence}" for t, c, got, want in pg_table.disagreements())


@then("le graphique d'efficacité est joint au rapport")
def chart_attached(pg_table, evidence):
    if not pg_table.ratios:
        pytest.skip("aucune technique mesurable ici (ni conteneur, ni KVM, ni QEMU)")
    evidence.svg("graphique d'efficacité (échelle logarithmique)", pgtable.chart_svg(pg_table.ratios))
    for ratio in pg_table.ratios:
        evidence.figure(f"{ratio.subject} / natif", ratio.value, "×")


@then("le conteneur et le code utilisateur de l'invité KVM tournent à moins de ×2 du natif")
def direct_execution_efficient(pg_table):
    fast = {r.subject: r.value for r in pg_table.ratios if r.subject in ("conteneur", "KVM invité ring 3")}
    if not fast:
        pytest.skip("ni conteneur ni KVM mesurables ici")
    assert all(v < pgtable.EFFICIENCY_LIMIT for v in fast.values()), fast
