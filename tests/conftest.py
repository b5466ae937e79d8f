"""popek's own tests: the fault-test table (can each verdict be ÉCHEC?).

A **fault test** puts reality where one or more of the course's claims are false — a service stopped
or frozen, an agent reconfigured, a resource altered through the admin API, a guest frozen, a rule
removed; or, where a host cannot be made false (rings, #GP), recorded or forged observations fed to
the check function — and asserts that the claims' verdict is **ÉCHEC** with the measurement in the
message. The convention:

    @pytest.mark.falsifies("C18", fault="le service de metadata est gelé (SIGSTOP)")
    def test_frozen_metadata_service_fails_c18(record_property, ...):
        ...                                       # put the world in the faulty state, run the check
        record_property("verdict", "ÉCHEC")       # the verdict the check gave (RÉUSSI/ÉCHEC/IGNORÉ)
        record_property("measure", message)       # the check's message: what it measured
        assert verdict == "ÉCHEC" and "169.254.169.254" in message

- `falsifies(*claims, fault=...)`: literal claim ids (E-marked claims of `checks/claims.py`) and a
  non-empty French `fault=` text saying what was broken. `checks/coverage.fault_tests` finds these
  marks by reading the sources (AST); `popek claims` shows them; `tests/unit/test_fault_registry.py`
  keeps them honest (known E claims, non-empty fault, the covered set never shrinks).
- `record_property("verdict", ...)` and `record_property("measure", ...)`: what the check obtained,
  recorded *before* the assertion so that a fault test that fails (the check did not say ÉCHEC) still
  shows what it said instead. Record the verdict the check gave, never a constant.
- A fault test that could not run (no KVM, no dataplane…) skips with the true reason; it is then
  shown "ignoré", never counted as covered by this run.

At the end of a session, the table "claim → fault → verdict obtained → test outcome" of every fault
test that ran is printed and written as JSON to `$POPEK_FAULT_TABLE`, else to
`<rootdir>/popek-results/fault-table.json` (only when at least one fault test ran, so a run without
fault tests does not overwrite it; and when only fault tests of tests/unit ran, to
`<tmp>/popek-fault-table-unit-<uid>.json` instead: a unit run writes nothing into the checkout, and does
not replace the table of the last run of the live fault tests). `popek claims --faults [--fault-table FILE]`
prints it as Markdown.
Under pytest-xdist the marks travel on the reports (an extra report attribute) and the controller
writes the table.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from popek import paths
from popek.checks.claims import CLAIMS
from popek.checks.secrets import REDACT

OUTCOME_FR = {"passed": "réussi", "failed": "échec", "error": "erreur", "skipped": "ignoré", "": "?"}


def pytest_configure(config):
    config.pluginmanager.register(FaultTable(config), "popek-fault-table")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Put the falsifies marks of a test on each of its reports (they reach an xdist controller too)."""
    outcome = yield
    marks = [{"claims": list(m.args), "fault": m.kwargs.get("fault", "")} for m in item.iter_markers("falsifies")]
    if marks:
        outcome.get_result().falsifies = marks


class FaultTable:
    """Collects the reports of fault tests; prints and writes the table at the end (not on xdist workers)."""

    def __init__(self, config):
        self.config = config
        self.table: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report):
        marks = getattr(report, "falsifies", None)
        if not marks:
            return
        entry = self.table.setdefault(report.nodeid, {"marks": marks, "phases": {}, "verdict": "", "measure": ""})
        if report.failed:
            entry["phases"][report.when] = "failed" if report.when == "call" else "error"
        elif report.skipped:
            entry["phases"][report.when] = "skipped"
            if isinstance(report.longrepr, tuple):
                entry["skip_reason"] = str(report.longrepr[2]).removeprefix("Skipped: ")
        else:
            entry["phases"][report.when] = "passed"
        for key, value in getattr(report, "user_properties", []):
            if key in ("verdict", "measure"):
                entry[key] = REDACT(str(value))

    def pytest_terminal_summary(self, terminalreporter):
        if hasattr(self.config, "workerinput") or not self.table:
            return
        rows = fault_rows(self.table)
        write_table(terminalreporter, rows, table_path(self.config, rows))


def outcome_of(phases: dict[str, str]) -> str:
    """One outcome from the phases of a test: an error or failure anywhere wins, then a skip, else passed."""
    values = set(phases.values())
    for outcome in ("error", "failed", "skipped"):
        if outcome in values:
            return outcome
    return "passed" if phases.get("call") == "passed" else ""


def fault_rows(table: dict) -> list[dict]:
    """One row per (claim, fault test) that ran, sorted by claim then test."""
    rows = []
    for nodeid, entry in table.items():
        outcome = outcome_of(entry["phases"])
        for mark in entry["marks"]:
            for claim in mark["claims"] or ["?"]:
                row = {"claim": claim, "fault": mark["fault"], "test": nodeid,
                       "verdict": entry["verdict"] or ("" if outcome == "skipped" else "non enregistré"),
                       "measure": entry["measure"], "outcome": outcome}
                if outcome == "skipped":
                    row["skip_reason"] = entry.get("skip_reason", "")
                rows.append(row)
    return sorted(rows, key=lambda r: (r["claim"], r["test"]))


#: Where the fault tests that forge their observations live: a run of them only is a unit run.
UNIT_TESTS = "tests/unit/"


def table_path(config, rows: list[dict]) -> Path:
    """$POPEK_FAULT_TABLE, else a temporary file when every fault test that ran is a unit test, else
    <rootdir>/popek-results/fault-table.json (what CI's full run writes and the README's table is made from)."""
    env = os.environ.get("POPEK_FAULT_TABLE")
    if env:
        return Path(env)
    if all(r["test"].startswith(UNIT_TESTS) for r in rows):
        return Path(tempfile.gettempdir()) / f"popek-fault-table-unit-{os.getuid()}.json"
    return paths.Results(Path(config.rootpath) / "popek-results").fault_table


def write_table(tr, rows: list[dict], path: Path) -> None:
    """Print the table in the terminal and write it as JSON to `path`."""
    shown = {r["claim"] for r in rows if r["outcome"] == "passed" and r["verdict"] == "ÉCHEC"}
    missing = [cid for cid, c in CLAIMS.items() if "E" in c.how and cid not in shown]
    tr.section("popek : tests de faute (claim → faute → verdict obtenu → issue du test)")
    for r in rows:
        tr.write_line(f"{r['claim']:<5} {r['fault'][:60]:<60} {r['verdict'] or '-':<14} {OUTCOME_FR[r['outcome']]}"
                      f"   {r['test']}")
    tr.write_line(f"{len(shown)} claims E montrés ÉCHEC par une faute dans ce lancement"
                  + (f" ; sans : {' '.join(missing)}" if missing else ""))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"rows": rows, "claims_shown_failing": sorted(shown),
                                    "e_claims_without": missing}, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        tr.write_line(f"table écrite : {path}")
    except OSError as exc:
        tr.write_line(f"table non écrite ({path}) : {exc.strerror}")
