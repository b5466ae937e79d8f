"""`popek claims [--json | --faults]`: each claim, its E/Q mark, the scenarios, questions and fault tests
covering it, last status."""
from __future__ import annotations

import json
import os
from pathlib import Path

from popek import paths
from popek.checks import coverage as cov
from popek.checks.claims import CLAIMS, UnknownClaim

STATUS_FR = {"passed": "réussi", "failed": "échec", "skipped": "ignoré", "": "jamais lancé"}


def register(sub):
    p = sub.add_parser("claims", help="claim coverage: scenarios and quiz questions per claim, last status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--results", default=None, help="results directory for the last status (default ./popek-results)")
    p.add_argument("--faults", action="store_true",
                   help="the fault-test table (claim -> fault -> verdict obtained) as Markdown")
    p.add_argument("--tests", default=None,
                   help="popek's tests folder, where fault tests are found (default: the source tree's tests/)")
    p.add_argument("--fault-table", action="append", default=[],
                   help="fault-table.json written by a test session, repeatable: later files win for the "
                        "same test (default: $POPEK_FAULT_TABLE, else popek-results/fault-table.json beside "
                        "the tests folder)")
    p.set_defaults(func=show)


#: Why fault tests cannot be listed when popek runs without its source tree (an installed wheel).
NO_TESTS = "dossier tests/ introuvable (popek installé sans ses sources) : tests de faute inconnus"


def tests_dir(value: str | None) -> Path | None:
    """The tests folder: --tests, else the source tree's (beside pyproject.toml), else None."""
    if value:
        return Path(value)
    root = paths.PACKAGE_DIR.parent
    return root / "tests" if (root / "pyproject.toml").is_file() and (root / "tests").is_dir() else None


def fault_table_rows(values: list[str], tests: Path | None) -> list[dict] | None:
    """The rows of the fault-table.json files `values` (merged, later ones win), or None if none is there."""
    paths_ = [Path(v) for v in values] or [Path(os.environ.get("POPEK_FAULT_TABLE") or (
        paths.Results((tests.parent if tests else Path.cwd()) / "popek-results").fault_table))]
    merged: dict[tuple[str, str], dict] = {}
    for path in paths_:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if values:  # a file the user named must be there and be a fault table
                from popek.errors import UserError
                why = exc.strerror if isinstance(exc, OSError) else "pas une table de tests de faute (JSON, « rows »)"
                raise UserError(f"--fault-table {path} : {why}") from None
            continue
        merged.update({(r["claim"], r["test"]): r for r in rows})
    return list(merged.values()) if merged else None


def question_claims() -> dict[str, list[str]]:
    from popek.checks.quiz.bank import question_claims as load
    return load(paths.QUIZZES_DIR)


def show(args) -> int:
    from popek.errors import UserError

    from popek.checks.quiz.bank import BankError

    try:
        tests = tests_dir(args.tests)
        if args.tests and not tests.is_dir():
            raise UserError(f"--tests {args.tests} : ce dossier n'existe pas")
        found = cov.fault_tests(tests) if tests else None
        if args.faults:  # the fault table needs neither the features nor the quiz banks
            if found is None:
                raise UserError(NO_TESTS)
            print(cov.fault_table_markdown(found, fault_table_rows(args.fault_table, tests)))
            return 0
        faults = cov.fault_tests_by_claim(found) if found is not None else None
        rows = cov.coverage(paths.FEATURES_DIR, question_claims(), paths.results(args.results).allure)
    except (UnknownClaim, cov.FeatureError, BankError, cov.FaultTestError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        out = []
        for r in rows:
            item = {"claim": r.claim, "how": r.how, "text": CLAIMS[r.claim].text,
                    "scenarios": [f"{s.feature}:{s.line} {s.name}" for s in r.scenarios],
                    "questions": r.questions, "status": r.status,
                    "fault_tests": None if faults is None else
                    [{"test": ft.test, "fault": ft.fault} for ft in faults.get(r.claim, [])]}
            if faults is None:
                item["fault_tests_unknown"] = NO_TESTS
            out.append(item)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    missing = []
    print(f"{'claim':<6}{'E/Q':<5}{'scén.':>6}{'quest.':>7}{'fautes':>7}  dernier statut")
    for r in rows:
        gaps = [k for k, ok in (("E", bool(r.scenarios)), ("Q", bool(r.questions))) if k in r.how and not ok]
        if gaps:
            missing.append(f"{r.claim}({'/'.join(gaps)})")
        nfault = "?" if faults is None else (len(faults.get(r.claim, [])) if "E" in r.how else "")
        print(f"{r.claim:<6}{r.how:<5}{len(r.scenarios):>6}{len(r.questions):>7}{nfault:>7}  "
              f"{STATUS_FR.get(r.status, r.status)}" + (f"   MANQUE : {', '.join(gaps)}" if gaps else ""))
    print(f"\n{len(rows) - len(missing)}/{len(rows)} claims couverts comme le cours le demande"
          + (f" ; manquent : {' '.join(missing)}" if missing else ""))
    if faults is None:
        print(f"tests de faute : {NO_TESTS}")
    else:
        without = [c for c, claim in CLAIMS.items() if "E" in claim.how and not faults.get(c)]
        print(f"tests de faute : {sum(1 for c, claim in CLAIMS.items() if 'E' in claim.how) - len(without)} claims E "
              f"couverts" + (f" ; sans : {' '.join(without)}" if without else ""))
    return 0
