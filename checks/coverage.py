"""Claim coverage: which scenarios and quiz questions cover each claim, and their last status."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from gherkin.parser import Parser
from gherkin.token_scanner import TokenScanner

from popek.checks.claims import CLAIMS, check_ids

TAG = re.compile(r"^@claim:(\S+)$")


@dataclass
class Scenario:
    feature: str      # path relative to the features folder
    name: str
    line: int
    claims: list[str]
    tags: list[str]


@dataclass
class Coverage:
    claim: str
    how: str
    scenarios: list[Scenario] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    status: str = ""  # last status of its scenarios: passed/failed/skipped/"" (never run)


class FeatureError(ValueError):
    """A feature file that does not parse, with its file and line."""


def parse_feature(path: Path) -> dict:
    try:
        return Parser().parse(TokenScanner(path.read_text(encoding="utf-8")))
    except Exception as exc:  # gherkin's CompositeParserException carries the line
        raise FeatureError(f"{path}: {exc}") from None


def scenarios(features_dir: Path) -> list[Scenario]:
    """Every scenario of every feature under `features_dir`, with the claims its tags name.

    Feature-level and rule-level tags apply to the scenarios below them, as in pytest-bdd.
    Raises UnknownClaim for an unknown id and FeatureError for a file that does not parse.
    """
    out = []
    for path in sorted(features_dir.rglob("*.feature")):
        doc = parse_feature(path)
        feature = doc.get("feature") or {}
        rel = str(path.relative_to(features_dir))

        def walk(children, inherited):
            for child in children:
                if "rule" in child:
                    rule = child["rule"]
                    walk(rule.get("children", []), inherited + [t["name"] for t in rule.get("tags", [])])
                elif "scenario" in child:
                    sc = child["scenario"]
                    tags = inherited + [t["name"] for t in sc.get("tags", [])]
                    for ex in sc.get("examples", []):
                        tags += [t["name"] for t in ex.get("tags", [])]
                    ids = [m.group(1) for t in tags if (m := TAG.match(t))]
                    check_ids(ids, f"{rel}:{sc['location']['line']}")
                    out.append(Scenario(rel, sc["name"], sc["location"]["line"], ids, tags))

        walk(feature.get("children", []), [t["name"] for t in feature.get("tags", [])])
    return out


def last_statuses(allure_results: Path) -> dict[str, list[str]]:
    """claim id -> statuses of the results in an allure-results folder (empty if absent)."""
    out: dict[str, list[str]] = {}
    if not allure_results.is_dir():
        return out
    for path in allure_results.glob("*-result.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for label in data.get("labels", []):
            if label.get("name") == "claim":
                out.setdefault(label["value"], []).append(data.get("status", ""))
    return out


#: Result statuses that count against a claim (Allure's "broken": an error outside an assertion).
FAILING = ("failed", "broken")


def claim_status(statuses: list[str]) -> str:
    """The verdict of one claim from the statuses of the scenarios that check it (their tags name it):
    "failed" if any failed (or broke), else "passed" if at least one passed, else "skipped" if any ran
    (every one skipped, or ended in another state: nothing was checked), else "" (never run).

    A claim is RÉUSSI only when a scenario that checks it passed: a scenario must name a claim only if
    it checks it, and a check that could not run here skips (pytest.skip with the reason) rather than
    pass on what it could not measure.
    """
    if any(s in FAILING for s in statuses):
        return "failed"
    if "passed" in statuses:
        return "passed"
    return "skipped" if statuses else ""


def coverage(features_dir: Path, questions: dict[str, list[str]], allure_results: Path | None = None) -> list[Coverage]:
    """Coverage of every claim.

    features_dir: the features folder. questions: question id -> claim ids (from the quiz banks).
    allure_results: where the last run's results are, for the status column.
    """
    rows = {cid: Coverage(cid, "+".join(sorted(c.how)), []) for cid, c in CLAIMS.items()}
    for sc in scenarios(features_dir):
        for cid in sc.claims:
            rows[cid].scenarios.append(sc)
    for qid, ids in questions.items():
        for cid in check_ids(ids, f"question {qid}"):
            rows[cid].questions.append(qid)
    statuses = last_statuses(allure_results) if allure_results else {}
    for cid, row in rows.items():
        row.status = claim_status(statuses.get(cid, []))
    return list(rows.values())


# --- Fault tests: the tests that show a claim's verdict can be ÉCHEC -----------------------------------

@dataclass(frozen=True)
class FaultTest:
    test: str          # pytest node id relative to the tests folder's parent, e.g. tests/unit/test_x.py::test_y
    fault: str | None  # the `fault=` text; None when it is not a literal string (the registry test refuses it)
    claims: tuple[str, ...]


class FaultTestError(ValueError):
    """A test file that does not parse, or a falsifies mark that names no literal claim id."""


def _is_falsifies(node: ast.AST) -> bool:
    """`pytest.mark.falsifies(...)`, `mark.falsifies(...)` or any `<x>.falsifies(...)` call."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "falsifies"


def _falsifies_marks(nodes, where: str) -> list[tuple[tuple[str, ...], str | None]]:
    """(claims, fault) of every falsifies mark found anywhere inside `nodes` (decorators, pytestmark, params)."""
    out = []
    for top in nodes:
        for node in ast.walk(top):
            if not _is_falsifies(node):
                continue
            claims = []
            for arg in node.args:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    raise FaultTestError(f"{where}:{node.lineno}: falsifies() veut des identifiants de claim "
                                         f"littéraux (\"C18\"), pas {ast.unparse(arg)}")
                claims.append(arg.value)
            fault = None
            for kw in node.keywords:
                if kw.arg == "fault" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    fault = kw.value.value
            out.append((tuple(claims), fault))
    return out


def _pytestmark(body) -> list[ast.AST]:
    return [st.value for st in body if isinstance(st, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in st.targets)]


def fault_tests(tests_dir: Path, prefix: str = "test") -> list[FaultTest]:
    """Every test under `tests_dir` marked `@pytest.mark.falsifies(*claims, fault=...)`, read by AST.

    Nothing is imported and pytest is not run: this reads the source of the `test_*.py` files. A mark
    on a function, on its class, in a module's or a class's `pytestmark`, or inside one of its
    `pytest.param(..., marks=...)` counts for that test (one entry per mark; a parametrized test is
    named by its function). Node ids are relative to the parent of `tests_dir`, as pytest names
    them from the repository root. `prefix`: the test function/method name prefix (pytest's default).
    Raises FaultTestError for a file that does not parse or a claim id that is not a literal string.
    """
    out = []
    root = tests_dir.parent
    for path in sorted(tests_dir.rglob("test_*.py")):
        if any(part.startswith(".") for part in path.relative_to(tests_dir).parts):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise FaultTestError(f"{rel}: {exc}") from None
        module_marks = _falsifies_marks(_pytestmark(tree.body), rel)

        def add(fn, nodeid, inherited):
            for claims, fault in inherited + _falsifies_marks(fn.decorator_list, rel):
                out.append(FaultTest(nodeid, fault, claims))

        for st in tree.body:
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.name.startswith(prefix):
                add(st, f"{rel}::{st.name}", module_marks)
            elif isinstance(st, ast.ClassDef) and st.name.startswith("Test"):
                class_marks = module_marks + _falsifies_marks(st.decorator_list + _pytestmark(st.body), rel)
                for fn in st.body:
                    if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name.startswith(prefix):
                        add(fn, f"{rel}::{st.name}::{fn.name}", class_marks)
    return out


def fault_tests_by_claim(tests: list[FaultTest]) -> dict[str, list[FaultTest]]:
    """claim id -> the fault tests naming it, for every claim of the registry (empty list where none)."""
    out: dict[str, list[FaultTest]] = {cid: [] for cid in CLAIMS}
    for ft in tests:
        for cid in ft.claims:
            out.setdefault(cid, []).append(ft)
    return out


OUTCOME_FR = {"passed": "réussi", "failed": "échec", "error": "erreur", "skipped": "ignoré", "": "non lancé"}


def fault_table_markdown(tests: list[FaultTest], rows: list[dict] | None) -> str:
    """The README's table "claim → fault → verdict obtained → test", one line per (E claim, fault test).

    tests: the fault tests found in the sources (fault_tests). rows: the `rows` of a fault-table.json
    written by a test session (tests/conftest.py), or None when no session wrote one: the verdict
    column then says "non lancé". An E claim with no fault test gets a line that says so.
    """
    ran: dict[tuple[str, str], list[dict]] = {}
    for r in rows or []:  # a parametrized test's ids (test[a], test[b]) fold into its function's
        ran.setdefault((r["claim"], r["test"].split("[", 1)[0]), []).append(r)
    lines = ["| claim | faute injectée | verdict obtenu | test (issue) |", "|---|---|---|---|"]
    by_claim = fault_tests_by_claim(tests)
    for cid, claim in CLAIMS.items():
        if "E" not in claim.how:
            continue
        found = by_claim.get(cid, [])
        if not found:
            lines.append(f"| {cid} | **aucun test de faute** | | |")
        for ft in found:
            got = ran.get((cid, ft.test), [])
            verdict = "/".join(sorted({r["verdict"] or "-" for r in got})) or "non lancé"
            outcome = next((o for o in ("error", "failed", "skipped", "passed") if any(r["outcome"] == o for r in got)), "")
            outcome = OUTCOME_FR.get(outcome, outcome)
            fault = (ft.fault or "").replace("|", "\\|")
            lines.append(f"| {cid} | {fault} | {verdict} | `{ft.test}` ({outcome}) |")
    return "\n".join(lines)
