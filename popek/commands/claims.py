"""`popek claims [--json]`: each claim, its E/Q mark, the scenarios and questions covering it, last status."""
from __future__ import annotations

import json

from popek import paths
from popek.checks import coverage as cov
from popek.checks.claims import CLAIMS, UnknownClaim

STATUS_FR = {"passed": "réussi", "failed": "échec", "skipped": "ignoré", "": "jamais lancé"}


def register(sub):
    p = sub.add_parser("claims", help="claim coverage: scenarios and quiz questions per claim, last status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--results", default=None, help="results directory for the last status (default ./popek-results)")
    p.set_defaults(func=show)


def question_claims() -> dict[str, list[str]]:
    from popek.checks.quiz.bank import question_claims as load
    return load(paths.QUIZZES_DIR)


def show(args) -> int:
    from popek.cli import UserError

    from popek.checks.quiz.bank import BankError

    try:
        rows = cov.coverage(paths.FEATURES_DIR, question_claims(), paths.results_dir(args.results) / "allure-results")
    except (UnknownClaim, cov.FeatureError, BankError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps([{"claim": r.claim, "how": r.how, "text": CLAIMS[r.claim].text,
                           "scenarios": [f"{s.feature}:{s.line} {s.name}" for s in r.scenarios],
                           "questions": r.questions, "status": r.status} for r in rows],
                         indent=2, ensure_ascii=False))
        return 0
    missing = []
    print(f"{'claim':<6}{'E/Q':<5}{'scén.':>6}{'quest.':>7}  dernier statut")
    for r in rows:
        gaps = [k for k, ok in (("E", bool(r.scenarios)), ("Q", bool(r.questions))) if k in r.how and not ok]
        if gaps:
            missing.append(f"{r.claim}({'/'.join(gaps)})")
        print(f"{r.claim:<6}{r.how:<5}{len(r.scenarios):>6}{len(r.questions):>7}  {STATUS_FR.get(r.status, r.status)}"
              + (f"   MANQUE : {', '.join(gaps)}" if gaps else ""))
    print(f"\n{len(rows) - len(missing)}/{len(rows)} claims couverts comme le cours le demande"
          + (f" ; manquent : {' '.join(missing)}" if missing else ""))
    return 0
