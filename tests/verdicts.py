"""A run's verdict per scenario, read back from its allure results, and side-by-side tables of several
runs (importable as `verdicts`: pytest adds tests/ to sys.path). Used by the live tests that compare
whole `popek run cloud` runs (tests/integration/test_renamed_cloud.py)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, NamedTuple

#: Allure's statuses as popek's verdicts: "broken" is the cloud failing mid-scenario, an ÉCHEC too.
VERDICT = {"passed": "RÉUSSI", "failed": "ÉCHEC", "broken": "ÉCHEC", "skipped": "IGNORÉ"}


class Row(NamedTuple):
    claims: tuple[str, ...]
    verdict: str             # RÉUSSI / ÉCHEC / IGNORÉ
    reason: str              # the skip reason or the failure message ("" when passed)
    figures: dict            # every other parameter of the result (the figures the scenario measured)


def outline_columns(features_dir: Path) -> dict[str, set[str]]:
    """{outline's name, as a regular expression (its <placeholders> match anything): the column names of
    its `Exemples:` table} — the parameters that tell an outline's rows apart, as opposed to the figures
    a scenario records as parameters too (a figure may bear a column's name: "commande")."""
    outlines: dict[str, set[str]] = {}
    for feature in Path(features_dir).rglob("*.feature"):
        lines = feature.read_text(encoding="utf-8").splitlines()
        name = None
        for i, line in enumerate(lines):
            text = line.strip()
            if text.startswith(("Plan du scénario:", "Scenario Outline:")):
                name = text.split(":", 1)[1].strip()
            elif text.startswith(("Scénario:", "Scenario:")):
                name = None
            elif text.startswith(("Exemples:", "Examples:")) and name:
                header = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
                if header.startswith("|"):
                    pattern = re.sub(r"<[^<>]+>", ".+", re.escape(name))
                    outlines.setdefault(pattern, set()).update(c.strip() for c in header.strip("|").split("|"))
    return outlines


def scenario_rows(results: Mapping | list, outlines: Mapping[str, set[str]]) -> dict[str, Row]:
    """{scenario label: Row} of a run's allure results (the parsed `*-result.json` dicts); `outlines` as
    outline_columns() gives them. The label is the scenario's name, then its outline row's values in
    brackets, e.g. "… chacun répond [compute, Nova]"."""
    rows: dict[str, Row] = {}
    for r in results:
        params = r.get("parameters") or []
        columns = {c for pattern, cols in outlines.items() if re.fullmatch(pattern, r["name"]) for c in cols}
        row_values = [str(p["value"]) for p in params if p["name"] in columns]
        label = r["name"] + (f" [{', '.join(row_values)}]" if row_values else "")
        claims = tuple(sorted({x["value"] for x in r.get("labels") or [] if x["name"] == "claim"}))
        reason = "" if r["status"] == "passed" else ((r.get("statusDetails") or {}).get("message") or "").strip()
        figures = {p["name"]: p["value"] for p in params if p["name"] not in columns}
        if label in rows:
            raise ValueError(f"deux résultats pour le même scénario : {label}")
        rows[label] = Row(claims, VERDICT.get(r["status"], r["status"]), reason, figures)
    return rows


def read_run(results_dir: Path, features_dir: Path) -> dict[str, Row]:
    """scenario_rows() of the allure results in `results_dir/allure-results`."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in (Path(results_dir) / "allure-results").glob("*-result.json")]
    return scenario_rows(found, outline_columns(features_dir))


def _cell(row: Row | None, width: int) -> str:
    if row is None:
        return "absent"
    if not row.reason:
        return row.verdict
    reason = re.sub(r"\s+", " ", row.reason)
    reason = reason[:width] + ("…" if len(reason) > width else "")
    return f"{row.verdict} : {_escape(reason)}"


def table(runs: Mapping[str, Mapping[str, Row]], width: int = 160, collapse: bool = False) -> str:
    """A Markdown table, one line per scenario (sorted by claims, then label), one column per run:
    its verdict, and the reason when it is not RÉUSSI (cut at `width` characters). `collapse`: the rows
    of one outline whose cells are all the same make one line, "name (×6)"."""
    labels = sorted({label for rows in runs.values() for label in rows},
                    key=lambda lb: (next((rows[lb].claims for rows in runs.values() if lb in rows), ()), lb))
    lines = ["| claims | scénario | " + " | ".join(runs) + " |", "|---|---|" + "---|" * len(runs)]
    shown: dict[tuple, list] = {}  # (claims, scenario name, cells) -> [line index, rows]
    for label in labels:
        claims = next(rows[label].claims for rows in runs.values() if label in rows)
        cells = [_cell(rows.get(label), width) for rows in runs.values()]
        name = label.split(" [", 1)[0] if collapse else label
        key = (claims, name, tuple(cells))
        if key in shown:
            shown[key][1] += 1
            lines[shown[key][0]] = f"| {', '.join(claims)} | {_escape(name)} (×{shown[key][1]}) | " + " | ".join(cells) + " |"
            continue
        shown[key] = [len(lines), 1]
        lines.append(f"| {', '.join(claims)} | {_escape(label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", chr(92) + "|")


def counts(rows: Mapping[str, Row]) -> str:
    """"RÉUSSI 31, ÉCHEC 0, IGNORÉ 3"."""
    n = {v: sum(r.verdict == v for r in rows.values()) for v in ("RÉUSSI", "ÉCHEC", "IGNORÉ")}
    return ", ".join(f"{k} {v}" for k, v in n.items())
