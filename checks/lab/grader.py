"""Grading a lab: each task's check on the student's snapshot, points with partial credit, French
feedback; a class graded concurrently (one connection per student); the same outputs as quizzes.

Output folder layout (`write_outputs`):
    gradebook.csv                      one row per student (checks/quiz/gradebook.py)
    statistics.csv                     per task: success rate, discrimination, point-biserial
    gradescope/<student>/results.json  Gradescope autograder format
    copies/<student>.txt               the student's graded copy, feedback per task (French)
    inspections/<student>.json         what was seen in the project (the grading evidence)
A student whose credentials fail is reported (errors.txt) and gets no row: the grade is unknown, not 0.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from popek.checks.lab.definition import Lab, LabTask
from popek.checks.lab.registry import Outcome
from popek.checks.lab.retry import retry
from popek.checks.lab.snapshot import Snapshot, inspect
from popek.checks.quiz import gradebook as gb


@dataclasses.dataclass(frozen=True)
class TaskResult:
    task: LabTask
    outcome: Outcome
    score: float
    feedback: str


def score(task: LabTask, outcome: Outcome) -> float:
    """Points earned: the shares of the met criteria (partial), else all-or-nothing."""
    if outcome.unchecked:
        return 0.0
    met = outcome.met()
    if task.partial:
        share = sum(w for c, w in task.partial.items() if c in met)
    else:
        share = 1.0 if all(c.ok for c in outcome.criteria) else 0.0
    return round(task.points * share, 2)


def feedback(task: LabTask, outcome: Outcome, earned: float) -> str:
    """The French feedback of one task: verdict, what was found, what is missing, the hint."""
    if outcome.unchecked:
        return f"Non vérifiable ({outcome.unchecked}) : 0/{task.points:g}, à revoir avec l'enseignant."
    if earned >= task.points:
        seen = "; ".join(c.detail for c in outcome.criteria if c.detail)
        return f"Réussi ({earned:g}/{task.points:g}) : {seen}."
    lines = [f"{'Partiellement réussi' if earned > 0 else 'Non réussi'} ({earned:g}/{task.points:g})."]
    ok = [c.detail for c in outcome.criteria if c.ok and c.detail]
    if ok:
        lines.append("Trouvé : " + "; ".join(ok) + ".")
    missing = list(dict.fromkeys(c.detail for c in outcome.criteria if not c.ok and c.detail))
    lines += [f"Manque : {d}." for d in missing]
    lines.append(task.feedback)
    return "\n".join(lines)


def grade_snapshot(lab: Lab, snap: Snapshot) -> list[TaskResult]:
    """Every task of `lab` judged on `snap` (pure)."""
    out = []
    for task in lab.tasks:
        outcome = task.check.run(snap, task.params)
        earned = score(task, outcome)
        out.append(TaskResult(task, outcome, earned, feedback(task, outcome, earned)))
    return out


def submission(lab: Lab, student: str, results: list[TaskResult]) -> gb.Submission:
    """The gradebook entry (same format as a quiz's)."""
    sub = gb.Submission(student, lab.id, [gb.Task(r.task.id, r.score, r.task.points, r.feedback, name=r.task.title)
                                          for r in results])
    unchecked = [r.task.id for r in results if r.outcome.unchecked]
    sub.output = (f"TP « {lab.title} » : {sub.score:g}/{sub.max_score:g} ({sub.percent:.0f} %)."
                  + (f"\nNon vérifiable sur ce cloud : {', '.join(unchecked)}." if unchecked else "")
                  + "\nLe détail de chaque tâche suit.")
    return sub


@dataclasses.dataclass
class Graded:
    """One student's grading: submission, snapshot, the tasks that could not be checked, seconds spent."""
    submission: gb.Submission
    snapshot: Snapshot
    unchecked: list[str]
    seconds: float


def grade_connection(lab: Lab, student: str, conn) -> Graded:
    """Inspect the project of `conn` (read-only) and grade it."""
    t0 = time.perf_counter()
    snap = inspect(conn)
    results = grade_snapshot(lab, snap)
    return Graded(submission(lab, student, results), snap, [r.task.id for r in results if r.outcome.unchecked],
                  time.perf_counter() - t0)


@dataclasses.dataclass
class ClassGrading:
    graded: list[Graded] = dataclasses.field(default_factory=list)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)   # student -> French reason
    seconds: float = 0.0

    @property
    def submissions(self) -> list[gb.Submission]:
        return [g.submission for g in self.graded]


def grade_class(lab: Lab, students: list[str], connect: Callable[[str], object], workers: int = 8,
                explain: Callable[[BaseException], str] = lambda e: f"{type(e).__name__}: {e}",
                done: Callable[[str], None] = lambda student: None) -> ClassGrading:
    """Grade every student concurrently, each through its own connection.

    students: ids; connect(student) -> an authenticated Connection (raises when credentials fail);
    workers: threads (the cloud's APIs, not this CPU, are the limit); explain: the French reason of
    a failure; done(student): called as each student is finished (progress). A student who fails is in
    `errors`; the others are graded."""
    result = ClassGrading()
    t0 = time.perf_counter()

    def one(student):
        conn = connect(student)
        try:
            return retry(grade_connection, lab, student, conn)     # reads only: safe to try again
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(one, s): s for s in students}
        for fut in concurrent.futures.as_completed(futures):
            student = futures[fut]
            try:
                result.graded.append(fut.result())
            except Exception as exc:  # one student's broken credentials or project must not stop the class
                result.errors[student] = explain(exc)
            done(student)
    result.graded.sort(key=lambda g: g.submission.student)
    result.seconds = time.perf_counter() - t0
    return result


def copy_text(sub: gb.Submission) -> str:
    lines = [sub.output, ""]
    for t in sub.tasks:
        lines += [f"{t.name or t.id} ({t.id}) : {t.score:g}/{t.max_score:g}", t.feedback, ""]
    return "\n".join(lines)


def write_outputs(out: Path, result: ClassGrading) -> dict[str, Path]:
    """Write the class outputs under `out` (layout in the module doc); returns the main paths."""
    out = Path(out)
    subs = result.submissions
    paths = {"gradebook": gb.write_csv(out / "gradebook.csv", subs),
             "statistics": gb.write_statistics(out / "statistics.csv", gb.statistics(subs)) if subs else None,
             "gradescope": out / "gradescope"}
    gb.write_gradescope(out / "gradescope", subs)
    for g in result.graded:
        student = g.submission.student
        (out / "copies").mkdir(parents=True, exist_ok=True)
        (out / "copies" / f"{student}.txt").write_text(copy_text(g.submission), encoding="utf-8")
        (out / "inspections").mkdir(parents=True, exist_ok=True)
        (out / "inspections" / f"{student}.json").write_text(
            json.dumps(g.snapshot.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    errors = out / "errors.txt"
    if result.errors:
        errors.write_text("".join(f"{s}: {why}\n" for s, why in sorted(result.errors.items())), encoding="utf-8")
        paths["errors"] = errors
    elif errors.exists():
        errors.unlink()      # a previous run's errors would mislead
    return paths


def summary(result: ClassGrading) -> str:
    """French table for the terminal: one line per student, then the failures."""
    lines = []
    for g in result.graded:
        s = g.submission
        tasks = " ".join(f"{t.id}={t.score:g}/{t.max_score:g}" for t in s.tasks)
        lines.append(f"{s.student:<20} {s.score:>5g}/{s.max_score:g} ({s.percent:3.0f} %)  {tasks}")
        if g.unchecked:
            lines.append(f"{'':<20} non vérifiable : {', '.join(g.unchecked)}")
    for student, why in sorted(result.errors.items()):
        lines.append(f"{student:<20} ÉCHEC : {why}")
    lines.append(f"{len(result.graded)} étudiant(s) noté(s), {len(result.errors)} en échec, {result.seconds:.1f} s")
    return "\n".join(lines)
