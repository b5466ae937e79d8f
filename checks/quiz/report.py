"""Grading a class: answer files in, per-student copies, gradebook CSV, Gradescope results.json and
per-question statistics out. A bad file is reported and skipped; the others are still graded.

Output folder layout (one part graded):
    gradebook.csv                      one row per student
    statistics.csv                     per question: success rate, discrimination (27 %), point-biserial
    gradescope/<student>/results.json  Gradescope autograder format
    copies/<student>.txt               the student's graded copy, feedback per question (French)
    .popek-quiz-results                marks the folder as popek's
Several parts graded at once: the same layout under <out>/<part>/.

`out` must be absent, empty, or a folder popek wrote before (marker present, nothing else in it):
its previous files are removed first, so that an earlier student's copy never sits beside a new
gradebook. Any other content makes grading refuse to write (OutputNotOurs) before grading anything.

A file is rejected alone, with its French reason, whatever is wrong with it (see sheet.load for the
bounds); two copies of a class-wide exam page carrying the same per-copy nonce under two ids are both
rejected (one copy handed in twice).
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from popek.checks.quiz import gradebook as gb
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import Bank
from popek.checks.quiz.grading import fr


MARKER = ".popek-quiz-results"
OURS = {MARKER, "gradebook.csv", "statistics.csv", "gradescope", "copies"}


class OutputNotOurs(ValueError):
    """The output folder holds files popek did not write: nothing is removed nor written."""


def _ours(folder: Path, top: bool) -> bool:
    names = {p.name for p in folder.iterdir()}
    if top and MARKER not in names:
        return False
    extra = names - OURS
    return all((folder / n).is_dir() and not (folder / n).is_symlink() and top and _ours_part(folder / n)
               for n in extra)


def _ours_part(folder: Path) -> bool:
    return {p.name for p in folder.iterdir()} <= OURS - {MARKER}


def prepare_out(out: Path) -> None:
    """Empty `out` of popek's previous results, or raise OutputNotOurs when it holds anything else."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputNotOurs(f"{out} n'est pas un dossier")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
    elif not _ours(out, top=True):
        raise OutputNotOurs(f"{out} contient d'autres fichiers que des résultats de popek : "
                            "choisissez un dossier vide ou nouveau (--out)")
    else:
        for p in out.iterdir():
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    (out / MARKER).write_text("Résultats de `popek quiz grade` : ce dossier est vidé à chaque correction.\n",
                              encoding="utf-8")


@dataclass
class ClassResult:
    submissions: list[gb.Submission] = field(default_factory=list)
    errors: list[sheets.AnswerFileError] = field(default_factory=list)
    stats: dict[str, list[gb.TaskStats]] = field(default_factory=dict)   # part -> per-question stats
    out: Path | None = None


def grade_one(path: Path, banks: dict[str, Bank], secret: str, with_nonce: bool = False):
    """Grade one answer file (raises AnswerFileError); with_nonce: return (submission, the copy's nonce)."""
    s = sheets.load(path)
    variant = sheets.variant_of(s, banks, secret, path)
    outcomes = sheets.grade_sheet(s, variant)
    shared = "" if variant.key == s.student else f" (variante commune « {variant.key} »)"
    sub = gb.Submission(s.student, s.part, [gb.Task(o.question, o.score, o.points, o.feedback) for o in outcomes])
    sub.output = (f"Quiz « {banks[s.part].title} » : {fr(sub.score)}/{fr(sub.max_score)} pt ({fr(sub.percent, 0)} %){shared}.\n"
                  "Le détail et la correction de chaque question suivent.")
    return (sub, s.nonce) if with_nonce else sub


def copy_text(sub: gb.Submission) -> str:
    lines = [sub.output, ""]
    for n, t in enumerate(sub.tasks, 1):
        lines += [f"Question {n} ({t.id})", t.feedback, ""]
    return "\n".join(lines)


def grade_files(files: list[Path], banks: dict[str, Bank], secret: str, out: Path | None,
                visibility: str = "after_published") -> ClassResult:
    """Grade every file; write the class outputs under `out` (nothing written when out is None).

    visibility: Gradescope's `visibility` of each results.json (default: hidden until published)."""
    result = ClassResult(out=out)
    if out is not None:
        prepare_out(out)
    seen: dict[tuple[str, str], Path] = {}
    nonces: dict[str, tuple[Path, gb.Submission]] = {}
    for path in files:
        try:
            sub, nonce = grade_one(path, banks, secret, with_nonce=True)
        except sheets.AnswerFileError as exc:
            result.errors.append(exc)
            continue
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
            # Never let one file stop the class: a file that trips the grader is rejected alone.
            result.errors.append(sheets.AnswerFileError(path, f"fichier non noté ({type(exc).__name__})"))
            continue
        if (sub.student, sub.assignment) in seen:
            result.errors.append(sheets.AnswerFileError(
                path, f"{sub.student} a déjà une copie pour {sub.assignment} ({seen[sub.student, sub.assignment]})"))
            continue
        if nonce and nonce in nonces:
            first_path, first = nonces[nonce]
            result.errors.append(sheets.AnswerFileError(
                path, f"même copie (nonce) que {first_path}, rendue sous « {first.student} » puis « {sub.student} » : "
                      "les deux sont refusées"))
            if first in result.submissions:
                result.submissions.remove(first)
                result.errors.append(sheets.AnswerFileError(first_path, f"même copie (nonce) que {path} : refusée"))
            continue
        seen[sub.student, sub.assignment] = path
        if nonce:
            nonces[nonce] = (path, sub)
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
        gb.write_gradescope(where / "gradescope", subs, visibility)
        for s in subs:
            copy = where / "copies" / f"{s.student}.txt"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(copy_text(s), encoding="utf-8")
    return result


def summary(result: ClassResult) -> str:
    """The teacher's view in French: one line per student, then the questions' statistics."""
    lines = []
    for s in sorted(result.submissions, key=lambda s: (s.assignment, s.student)):
        lines.append(f"{s.student:<20} {s.assignment:<16} {fr(s.score):>6}/{fr(s.max_score):<6} {fr(s.percent, 1):>5} %")
    for part, stats in result.stats.items():
        lines.append(f"\nStatistiques par question — {part} (réussite, discrimination 27 %, point-bisérial) :")
        for st in stats:
            disc = "—" if math.isnan(st.discrimination) else f"{st.discrimination:+.2f}".replace(".", ",")
            pbis = "—" if math.isnan(st.point_biserial) else f"{st.point_biserial:+.2f}".replace(".", ",")
            flag = "  à revoir" if not math.isnan(st.discrimination) and st.discrimination < 0.2 and st.n >= 10 else ""
            lines.append(f"  {st.id:<34} n={st.n:<4} réussite {fr(100 * st.success, 1):>5} %  disc. {disc}  r_pbis {pbis}{flag}")
    n_ok, n_bad = len(result.submissions), len(result.errors)
    lines.append(f"\n{n_ok} copie(s) corrigée(s), {n_bad} fichier(s) rejeté(s)"
                 + (f" ; résultats dans {result.out}" if result.out and n_ok else "") + ".")
    return "\n".join(lines)
