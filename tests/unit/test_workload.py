"""The shared workload (its bytes against its Python model), the one efficiency threshold, and how the host
features use them: which scenarios assert a ratio, and which claims each host scenario names."""
import platform
import re

import pytest
from hypothesis import given as h_given
from hypothesis import settings, strategies as st

from popek import paths
from popek.checks import coverage
from popek.checks.host import pgtable, workload
from popek.checks.host.timing import Ratio

x86_64 = pytest.mark.skipif(platform.machine() != "x86_64", reason="runs x86-64 machine code")


# --- the routine -----------------------------------------------------------------------------------
@x86_64
def test_native_code_computes_the_python_model_for_every_small_n():
    routine = workload.run_native
    assert all(routine(n, timed=False).result == workload.reference(n) for n in range(0, 70))


@x86_64
@settings(database=None, max_examples=30, deadline=None)
@h_given(st.integers(0, 20_000))
def test_native_code_computes_the_python_model(n):
    assert workload.run_native(n, timed=False).equivalent


def test_the_model_mixes_its_state():
    # the checksum depends on n through all of its 64 bits, and no two small n collide
    values = [workload.reference(n) for n in range(2000)]
    assert len(set(values)) == len(values)
    assert 28 < sum(bin(v).count("1") for v in values) / len(values) < 36


def test_the_body_has_the_instructions_that_make_emulation_pay():
    body = workload.BODY
    assert b"\x4c\x8b\x44\xcc\xc0" in body and b"\x4c\x89\x4c\xcc\xc0" in body  # load and store t[i]
    assert b"\x48\x11\xfa" in body                                            # adc: reads ADD's carry
    assert b"\x4d\x0f\x42\xd0" in body                                        # cmovb: reads CMP's carry
    assert b"\x75\x05" in body and b"\xeb\x03" in body                        # the data branch and its join
    assert workload.CODE == body + b"\xc3"


# --- the threshold ---------------------------------------------------------------------------------
def test_one_threshold_for_scenarios_table_and_chart():
    assert pgtable.EFFICIENCY_LIMIT == workload.EFFICIENCY_LIMIT == 2.0


def test_an_emulation_at_native_speed_fails_with_the_measured_ratio():
    why = workload.not_heavy_overhead(Ratio("TCG utilisateur", "natif", 0.99, 1.0))
    assert why and "×0.99" in why and "×2" in why and "TCG utilisateur" in why
    assert workload.not_heavy_overhead(Ratio("TCG système", "natif", 7.7, 1.0)) is None
    assert workload.not_heavy_overhead(Ratio("TCG système", "natif", 2.0, 1.0)) is None


def test_direct_execution_far_from_native_fails_with_the_measured_ratio():
    why = workload.not_near_native(Ratio("conteneur", "natif", 2.4, 1.0))
    assert why and "×2.40" in why and "conteneur" in why
    assert workload.not_near_native(Ratio("conteneur", "natif", 1.01, 1.0)) is None


# --- the features ----------------------------------------------------------------------------------
def _scenarios(feature):
    return [s for s in coverage.scenarios(paths.FEATURES_DIR) if s.feature == f"hote/{feature}"]


def _steps(feature: str, name: str) -> list[str]:
    doc = coverage.parse_feature(paths.FEATURES_DIR / "hote" / feature)
    for child in doc["feature"]["children"]:
        sc = child.get("scenario")
        if sc and sc["name"] == name:
            return [step["text"] for step in sc["steps"]]
    raise KeyError(name)


def test_every_c07_overhead_scenario_asserts_the_threshold():
    overhead = [s for s in _scenarios("emulation.feature") if "C07" in s.claims and "surcoût" in s.name]
    assert len(overhead) == 2
    for sc in overhead:
        asserted = [t for t in _steps("emulation.feature", sc.name) if "fois plus lente que le processeur" in t]
        assert asserted, sc.name
        bound = int(re.search(r"au moins (\d+) fois", asserted[0]).group(1))
        assert bound == workload.EFFICIENCY_LIMIT, sc.name


def test_the_container_efficiency_scenario_asserts_the_threshold():
    (sc,) = [s for s in _scenarios("conteneurs.feature") if "efficacité OK" in s.name]
    (step,) = [t for t in _steps("conteneurs.feature", sc.name) if "fois le temps du natif" in t]
    assert int(re.search(r"moins de (\d+) fois", step).group(1)) == workload.EFFICIENCY_LIMIT


def test_each_popek_goldberg_table_scenario_names_only_the_claim_it_checks():
    found = {s.name: s.claims for s in _scenarios("tableau_popek_goldberg.feature")}
    doc = coverage.parse_feature(paths.FEATURES_DIR / "hote" / "tableau_popek_goldberg.feature")
    assert not [t["name"] for t in doc["feature"]["tags"] if t["name"].startswith("@claim:")]  # none inherited
    rows = {name: claims for name, claims in found.items() if name.startswith("Tableau, ligne")}
    assert sorted(rows.values()) == [["C06"], ["C08"], ["C09"]]
    for name, claims in found.items():
        assert claims, name
        if name not in rows:
            assert claims == ["C02"], name   # the whole table and the chart: Popek & Goldberg's conditions


# --- claim verdicts --------------------------------------------------------------------------------
@pytest.mark.parametrize("statuses, verdict", [
    ([], ""),
    (["skipped", "skipped"], "skipped"),
    (["unknown"], "skipped"),
    (["skipped", "passed"], "passed"),
    (["passed", "skipped", "failed"], "failed"),
    (["passed", "broken"], "failed"),
])
def test_a_claim_passes_only_when_a_scenario_checking_it_passed(statuses, verdict):
    assert coverage.claim_status(statuses) == verdict
