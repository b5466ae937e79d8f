"""The fault tests' registry: each one names E claims and its fault, and none silently vanishes.

A fault test (`@pytest.mark.falsifies(*claims, fault=...)`, convention in tests/conftest.py) shows that a
claim's verdict *can* be ÉCHEC. `checks.coverage.fault_tests` finds them by reading the sources; this
file checks that finder, the registry it finds, the table the conftest writes and `popek claims`.
"""
import json
import os
from pathlib import Path

import pytest

from popek import cli
from popek.checks import coverage
from popek.checks.claims import CLAIMS
from popek.commands import claims as claims_cmd

TESTS_DIR = Path(__file__).resolve().parents[1]
E_CLAIMS = {cid for cid, c in CLAIMS.items() if "E" in c.how}

#: E claims that have a fault test today. The set found must never shrink below this one: a fault test
#: cannot vanish (renamed, its mark dropped) without this list being edited in the same commit.
#: Add a claim here in the commit that adds its first fault test.
COVERED_AT_LEAST = {
    "C01", "C02", "C05", "C06", "C07", "C08", "C09", "C14",   # host (tests/unit/test_host_faults.py, live)
    "C15", "C18", "C19", "C23", "C24", "C25", "C26",          # cloud dataplane (test_faults_dataplane.py)
    "C11", "C16", "C17", "C20", "C21", "C22", "C27", "C28",   # cloud API (test_faults_api.py)
    "C30", "C31", "C32", "C33", "C34", "C35", "C36", "C37",
}


def test_every_fault_test_names_e_claims_and_its_fault():
    found = coverage.fault_tests(TESTS_DIR)
    for ft in found:
        assert ft.claims, f"{ft.test}: falsifies() names no claim"
        unknown = [c for c in ft.claims if c not in CLAIMS]
        assert not unknown, f"{ft.test}: unknown claim id(s) {unknown}"
        not_e = [c for c in ft.claims if c not in E_CLAIMS]
        assert not not_e, f"{ft.test}: {not_e} are not E-marked claims (nothing executable to falsify)"
        assert ft.fault and ft.fault.strip(), f"{ft.test}: falsifies() needs a literal, non-empty fault= text"


def test_the_covered_e_claims_never_shrink():
    covered = {c for ft in coverage.fault_tests(TESTS_DIR) for c in ft.claims}
    lost = COVERED_AT_LEAST - covered
    print(f"E claims with a fault test: {len(covered & E_CLAIMS)}/{len(E_CLAIMS)}; "
          f"still without one: {' '.join(sorted(E_CLAIMS - covered)) or 'none'}")
    assert not lost, f"fault tests vanished for {sorted(lost)} (still listed in COVERED_AT_LEAST)"
    assert COVERED_AT_LEAST <= E_CLAIMS


SAMPLE = '''\
import pytest

pytestmark = [pytest.mark.integration]


@pytest.mark.falsifies("C05", fault="HLT exécuté en ring 3 sans #GP (observations forgées)")
def test_plain(record_property):
    pass


@pytest.mark.parametrize("x", [1, pytest.param(2, marks=pytest.mark.falsifies("C09", fault="sans espace PID"))])
def test_param(x):
    pass


@pytest.mark.falsifies("C18", "C19", fault="metadata "
                       "gelé (SIGSTOP)")
class TestCloud:
    @pytest.mark.falsifies("C26", fault="clé refusée")
    def test_both(self):
        pass

    def helper(self):
        pass


def test_unmarked():
    pass


@pytest.mark.falsifies("C07")
def test_no_fault():
    pass
'''


def test_the_finder_reads_marks_without_importing(tmp_path):
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_sample.py").write_text(SAMPLE + "\nraise SystemExit('imported!')\n")
    found = {(ft.test, ft.claims, ft.fault) for ft in coverage.fault_tests(tmp_path / "tests")}
    base = "tests/unit/test_sample.py::"
    assert found == {
        (base + "test_plain", ("C05",), "HLT exécuté en ring 3 sans #GP (observations forgées)"),
        (base + "test_param", ("C09",), "sans espace PID"),
        (base + "TestCloud::test_both", ("C18", "C19"), "metadata gelé (SIGSTOP)"),
        (base + "TestCloud::test_both", ("C26",), "clé refusée"),
        (base + "test_no_fault", ("C07",), None),
    }
    by_claim = coverage.fault_tests_by_claim(coverage.fault_tests(tmp_path / "tests"))
    assert set(by_claim) == set(CLAIMS) and by_claim["C01"] == [] and len(by_claim["C18"]) == 1


def test_a_claim_id_that_is_not_literal_is_refused(tmp_path):
    (tmp_path / "test_x.py").write_text("import pytest\nC = 'C05'\n@pytest.mark.falsifies(C, fault='f')\ndef test_x():\n    pass\n")
    with pytest.raises(coverage.FaultTestError, match=r"test_x\.py:3: .*littéraux.*pas C"):
        coverage.fault_tests(tmp_path)


FAULT_TESTS = '''\
import pytest


@pytest.mark.falsifies("C05", fault="HLT sans #GP (forgé)")
def test_shown_failing(record_property):
    record_property("verdict", "ÉCHEC")
    record_property("measure", "HLT en ring 3 : aucun signal (attendu SIGSEGV/#GP)")


@pytest.mark.falsifies("C09", fault="conteneur sans espace PID")
def test_check_did_not_fail(record_property):
    record_property("verdict", "RÉUSSI")
    record_property("measure", "PID 1 vu")
    assert False, "the check said RÉUSSI"


@pytest.mark.falsifies("C08", fault="pas de KVM")
def test_could_not_run():
    pytest.skip("pas de /dev/kvm")


def test_not_a_fault_test():
    pass
'''


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["inline", "xdist"])
def test_the_conftest_prints_and_writes_the_table(pytester, monkeypatch, xdist):
    pytester.makeconftest((TESTS_DIR / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini('[pytest]\nmarkers =\n    falsifies(*claims, fault): fault test\naddopts = -p no:cacheprovider -p no:randomly\n')
    pytester.makepyfile(test_faults=FAULT_TESTS)
    table = pytester.path / "out" / "fault-table.json"
    monkeypatch.setenv("POPEK_FAULT_TABLE", str(table))
    result = pytester.runpytest(*xdist)
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    text = result.stdout.str()
    assert "tests de faute (claim → faute → verdict obtenu → issue du test)" in text
    assert "1 claims E montrés ÉCHEC" in text
    rows = {r["claim"]: r for r in json.loads(table.read_text())["rows"]}
    assert set(rows) == {"C05", "C08", "C09"}
    assert rows["C05"] | {"test": ""} == {"claim": "C05", "fault": "HLT sans #GP (forgé)", "test": "",
                                           "verdict": "ÉCHEC", "outcome": "passed",
                                           "measure": "HLT en ring 3 : aucun signal (attendu SIGSEGV/#GP)"}
    assert (rows["C09"]["verdict"], rows["C09"]["outcome"]) == ("RÉUSSI", "failed")
    assert (rows["C08"]["verdict"], rows["C08"]["outcome"], rows["C08"]["skip_reason"]) == ("", "skipped", "pas de /dev/kvm")
    data = json.loads(table.read_text())
    assert data["claims_shown_failing"] == ["C05"] and "C08" in data["e_claims_without"]


def test_a_session_without_fault_tests_writes_no_table(pytester, monkeypatch):
    pytester.makeconftest((TESTS_DIR / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_plain="def test_x():\n    pass\n")
    monkeypatch.setenv("POPEK_FAULT_TABLE", str(pytester.path / "fault-table.json"))
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    assert not (pytester.path / "fault-table.json").exists()


def test_a_unit_run_writes_its_table_outside_the_checkout(pytester, monkeypatch, tmp_path):
    """F8: `pytest tests/unit` replaced the checkout's popek-results/fault-table.json (the live run's table,
    what `popek claims --faults` reads by default); a session with a fault test outside tests/unit (CI's
    full run) still writes it there."""
    import tempfile
    pytester.makeconftest((TESTS_DIR / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini('[pytest]\nmarkers =\n    falsifies(*claims, fault): fault test\naddopts = -p no:cacheprovider -p no:randomly\n')
    for folder, name in (("unit", "test_forged"), ("integration", "test_live")):
        (pytester.path / "tests" / folder).mkdir(parents=True)
        (pytester.path / "tests" / folder / f"{name}.py").write_text(
            "import pytest\n\n@pytest.mark.falsifies('C05', fault='HLT sans #GP')\n"
            f"def {name}(record_property):\n    record_property('verdict', 'ÉCHEC')\n")
    monkeypatch.delenv("POPEK_FAULT_TABLE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    checkout_table = pytester.path / "popek-results" / "fault-table.json"
    result = pytester.runpytest("tests/unit")
    result.assert_outcomes(passed=1)
    assert not checkout_table.exists()
    unit_table = tmp_path / f"popek-fault-table-unit-{os.getuid()}.json"
    assert [r["test"] for r in json.loads(unit_table.read_text())["rows"]] == ["tests/unit/test_forged.py::test_forged"]
    assert f"table écrite : {unit_table}" in result.stdout.str()
    pytester.runpytest().assert_outcomes(passed=2)
    assert len(json.loads(checkout_table.read_text())["rows"]) == 2


def test_popek_claims_json_lists_fault_tests(tmp_path, capsys):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_faults.py").write_text(FAULT_TESTS)
    assert cli.main(["claims", "--json", "--tests", str(tmp_path / "tests")]) == 0
    data = {c["claim"]: c for c in json.loads(capsys.readouterr().out)}
    assert data["C05"]["fault_tests"] == [{"test": "tests/test_faults.py::test_shown_failing", "fault": "HLT sans #GP (forgé)"}]
    assert data["C01"]["fault_tests"] == [] and "fault_tests_unknown" not in data["C01"]


def test_popek_claims_without_a_tests_folder_says_it_does_not_know(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(claims_cmd.paths, "PACKAGE_DIR", tmp_path / "site-packages" / "popek")
    assert claims_cmd.tests_dir(None) is None
    assert cli.main(["claims", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert all(c["fault_tests"] is None and "sans ses sources" in c["fault_tests_unknown"] for c in data)
    assert cli.main(["claims"]) == 0
    out = capsys.readouterr().out
    assert "tests de faute : dossier tests/ introuvable" in out
    assert cli.main(["claims", "--faults"]) == 2
    assert "sans ses sources" in capsys.readouterr().err


def test_popek_claims_refuses_a_missing_tests_folder(tmp_path, capsys):
    assert cli.main(["claims", "--tests", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "n'existe pas" in err and "Traceback" not in err


def test_popek_claims_faults_prints_the_markdown_table(tmp_path, capsys):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_faults.py").write_text(FAULT_TESTS)
    table = tmp_path / "fault-table.json"
    table.write_text(json.dumps({"rows": [
        {"claim": "C05", "fault": "HLT sans #GP (forgé)", "test": "tests/test_faults.py::test_shown_failing",
         "verdict": "ÉCHEC", "measure": "m", "outcome": "passed"}]}))
    assert cli.main(["claims", "--faults", "--tests", str(tmp_path / "tests"), "--fault-table", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| claim | faute injectée | verdict obtenu | test (issue) |"
    assert "| C05 | HLT sans #GP (forgé) | ÉCHEC | `tests/test_faults.py::test_shown_failing` (réussi) |" in lines
    assert "| C09 | conteneur sans espace PID | non lancé | `tests/test_faults.py::test_check_did_not_fail` (non lancé) |" in lines
    assert "| C01 | **aucun test de faute** | | |" in lines
    assert len(lines) == 2 + len(E_CLAIMS)  # one line per E claim here: each has at most one fault test


def test_popek_claims_faults_refuses_a_named_table_that_is_not_one(tmp_path, capsys):
    (tmp_path / "tests").mkdir()
    (tmp_path / "bad.json").write_text("[]")
    for table, why in ((tmp_path / "absent.json", "No such file"), (tmp_path / "bad.json", "pas une table")):
        assert cli.main(["claims", "--faults", "--tests", str(tmp_path / "tests"), "--fault-table", str(table)]) == 2
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err
