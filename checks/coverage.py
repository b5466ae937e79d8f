"""Claim coverage: which scenarios and quiz questions cover each claim, and their last status."""
from __future__ import annotations

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
