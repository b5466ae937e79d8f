"""Grading a class: answer files in, per-student copies, gradebook CSV, Gradescope results.json and
per-question statistics out. A bad file is reported and skipped; the others are still graded.

Output folder layout (one part graded):
    gradebook.csv                      one row per student
    statistics.csv                     per question: success rate, discrimination (27 %), point-biserial
    gradescope/<student>/results.json  Gradescope autograder format
    copies/<student>.txt               the student's graded copy, feedback per question (French)
Several parts graded at once: the same layout under <out>/<part>/.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from popek.checks.quiz import gradebook as gb
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import Bank


@dataclass
class ClassResult:
    submissions: list[gb.Submission] = field(default_factory=list)
    errors: list[sheets.AnswerFileError] = field(default_factory=list)
    stats: dict[str, list[gb.TaskStats]] = field(default_factory=dict)   # part -> per-question stats
    out: Path | None = None


def grade_one(path: Path, banks: dict[str, Bank], secret: str) -> gb.Submission:
    """Grade one answer file (raises AnswerFileError)."""
    s = sheets.load(path)
    variant = sheets.variant_of(s, banks, secret, path)
    outcomes = sheets.grade_sheet(s, variant)
    shared = "" if variant.key == s.student else f" (variante commune « {variant.key} »)"
    sub = gb.Submission(s.student, s.part, [gb.Task(o.question, o.score, o.points, o.feedback) for o in outcomes])
    sub.output = (f"Quiz « {banks[s.part].title} » : {sub.score:g}/{sub.max_score:g} ({sub.percent:.0f} %){shared}.\n"
                  "Le détail et la correction de chaque question suivent.")
    return sub


def copy_text(sub: gb.Submission) -> str:
    lines = [sub.output, ""]
    for n, t in enumerate(sub.tasks, 1):
        lines += [f"Question {n} ({t.id})", t.feedback, ""]
    return "\n".join(lines)


def grade_files(files: list[Path], banks: dict[str, Bank], secret: str, out: Path | None) -> ClassResult:
    """Grade every file; write the class outputs under `out` (nothing written when out is None)."""
    result = ClassResult(out=out)
    seen: dict[tuple[str, str], Path] = {}
    for path in files:
        try:
            sub = grade_one(path, banks, secret)
        except sheets.AnswerFileError as exc:
            result.errors.append(exc)
            continue
        if (sub.student, sub.assignment) in seen:
            result.errors.append(sheets.AnswerFileError(
                path, f"{sub.student} a déjà une copie pour {sub.assignment} ({seen[sub.student, sub.assignment]})"))
            continue
        seen[sub.student, sub.assignment] = path
        result.submissions.append(sub)
    parts = sorted({s.assignment for s in result.submissions})
    for part in parts:
        subs = [s for s in result.submissions if s.assignment == part]
        result.stats[part] = gb.statistics(subs)
        if out is None:
            continue
        where = Path(out) if len(parts) == 1 else Path(out) / part
        gb.write_csv(where / "gradebook.csv", subs)
        gb.write_statistics(where / "statistics.csv", result.stats[part])
        gb.write_gradescope(where / "gradescope", subs)
        for s in subs:
            copy = where / "copies" / f"{s.student}.txt"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(copy_text(s), encoding="utf-8")
    return result


def summary(result: ClassResult) -> str:
    """The teacher's view in French: one line per student, then the questions' statistics."""
    lines = []
    for s in sorted(result.submissions, key=lambda s: (s.assignment, s.student)):
        lines.append(f"{s.student:<20} {s.assignment:<16} {s.score:>6g}/{s.max_score:<6g} {s.percent:5.1f} %")
    for part, stats in result.stats.items():
        lines.append(f"\nStatistiques par question — {part} (réussite, discrimination 27 %, point-bisérial) :")
        for st in stats:
            disc = "—" if math.isnan(st.discrimination) else f"{st.discrimination:+.2f}"
            pbis = "—" if math.isnan(st.point_biserial) else f"{st.point_biserial:+.2f}"
            flag = "  à revoir" if not math.isnan(st.discrimination) and st.discrimination < 0.2 and st.n >= 10 else ""
            lines.append(f"  {st.id:<34} n={st.n:<4} réussite {100 * st.success:5.1f} %  disc. {disc}  r_pbis {pbis}{flag}")
    n_ok, n_bad = len(result.submissions), len(result.errors)
    lines.append(f"\n{n_ok} copie(s) corrigée(s), {n_bad} fichier(s) rejeté(s)"
                 + (f" ; résultats dans {result.out}" if result.out and n_ok else "") + ".")
    return "\n".join(lines)
