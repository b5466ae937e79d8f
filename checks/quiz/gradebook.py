"""Gradebook writers shared by the quiz grader and the lab grader: class CSV, Gradescope results.json,
per-task statistics for the teacher.

Input is the same for both graders: a `Submission(student, assignment, tasks)` where each task is
`Task(id, score, max_score, feedback)`. The lab grader builds them from `(student, [(task_id, score,
max, feedback)])` with `Submission.from_tuples`.

Gradescope: the autograder specification (gradescope-autograders.readthedocs.io, "Autograder
Specifications") has one `results.json` per submission, at /autograder/results/results.json, with
`score`, `max_score`, `output` and `tests` [{name, score, max_score, output, ...}]. Gradescope runs
one submission at a time, so `write_gradescope` writes DIR/<student>/results.json for each; the
autograder script copies its student's file into place.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import StatisticsError, correlation


@dataclass(frozen=True)
class Task:
    id: str
    score: float
    max_score: float
    feedback: str = ""
    name: str = ""      # shown instead of the id where a display name is wanted


@dataclass
class Submission:
    student: str
    assignment: str                       # quiz part or lab name
    tasks: list[Task] = field(default_factory=list)
    output: str = ""                      # text for the whole submission

    @classmethod
    def from_tuples(cls, student: str, assignment: str, tasks, output: str = "") -> "Submission":
        """From `[(task_id, score, max_score, feedback), …]`."""
        return cls(student, assignment, [Task(str(t), float(s), float(m), str(f)) for t, s, m, f in tasks], output)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tasks)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tasks)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


def _num(x: float) -> str:
    return f"{round(x, 4):g}"


def write_csv(path: Path, submissions: list[Submission]) -> Path:
    """Class gradebook: one row per submission; a column per task id (empty when not drawn)."""
    task_ids: list[str] = []
    for s in submissions:
        for t in s.tasks:
            if t.id not in task_ids:
                task_ids.append(t.id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["student", "assignment", "score", "max_score", "percent", *task_ids])
        for s in sorted(submissions, key=lambda s: (s.assignment, s.student)):
            by_id = {t.id: t for t in s.tasks}
            w.writerow([s.student, s.assignment, _num(s.score), _num(s.max_score), f"{s.percent:.1f}",
                        *[_num(by_id[i].score) if i in by_id else "" for i in task_ids]])
    return path


def _fr(x: float) -> str:
    """French display of a score (decimal comma), for the text students read."""
    return _num(round(x, 2)).replace(".", ",")


#: Gradescope's `visibility` values (autograder specification): when students see the results.
VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")


def gradescope_results(sub: Submission, visibility: str = "after_published") -> dict:
    """The results.json object of one submission (Gradescope autograder format).

    visibility: when the student sees it (default: hidden until the teacher publishes the grades)."""
    if visibility not in VISIBILITY:
        raise ValueError(visibility)
    return {
        "score": round(sub.score, 4),
        "max_score": round(sub.max_score, 4),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "output": sub.output or f"{sub.assignment} : {_fr(sub.score)}/{_fr(sub.max_score)} pt ({sub.percent:.0f} %)",
        "tests": [{"name": t.name or t.id, "score": round(t.score, 4), "max_score": round(t.max_score, 4),
                   "output": t.feedback} for t in sub.tasks],
    }


def write_gradescope(directory: Path, submissions: list[Submission], visibility: str = "after_published") -> list[Path]:
    """DIR/<student>/results.json for each submission."""
    paths = []
    for sub in submissions:
        p = Path(directory) / sub.student / "results.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(gradescope_results(sub, visibility), ensure_ascii=False, indent=1), encoding="utf-8")
        paths.append(p)
    return paths


@dataclass(frozen=True)
class TaskStats:
    id: str
    n: int                  # submissions in which the task appeared
    success: float          # mean fraction of its points earned, 0..1
    discrimination: float   # mean fraction in the upper 27 % minus in the lower 27 % (by total score); nan if n < 2
    point_biserial: float   # correlation of the task's fraction with the rest of the score; nan if undefined


def _correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's correlation (statistics.correlation); nan when undefined (fewer than two values, or constant)."""
    try:
        return correlation(xs, ys)
    except StatisticsError:
        return math.nan


def statistics(submissions: list[Submission]) -> list[TaskStats]:
    """Per task: success rate, discrimination index (upper vs lower 27 %, Kelley) and point-biserial
    correlation against the rest of the score (the task itself left out, so it does not correlate with itself)."""
    order: list[str] = []
    rows: dict[str, list[tuple[float, float, float]]] = {}   # id -> (fraction, total %, rest %)
    for s in submissions:
        for t in s.tasks:
            if t.id not in rows:
                order.append(t.id)
                rows[t.id] = []
            frac = t.score / t.max_score if t.max_score else 0.0
            rest_max = s.max_score - t.max_score
            rest = (s.score - t.score) / rest_max if rest_max else 0.0
            rows[t.id].append((frac, s.percent, rest))
    out = []
    for tid in order:
        data = rows[tid]
        n = len(data)
        success = sum(d[0] for d in data) / n
        if n >= 2:
            k = max(1, round(0.27 * n))
            ranked = sorted(data, key=lambda d: d[1])
            disc = sum(d[0] for d in ranked[-k:]) / k - sum(d[0] for d in ranked[:k]) / k
        else:
            disc = math.nan
        out.append(TaskStats(tid, n, success, disc, _correlation([d[0] for d in data], [d[2] for d in data])))
    return out


def write_statistics(path: Path, stats: list[TaskStats]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["task", "n", "success_rate", "discrimination_27", "point_biserial"])
        for s in stats:
            w.writerow([s.id, s.n, f"{s.success:.3f}",
                        "" if math.isnan(s.discrimination) else f"{s.discrimination:.3f}",
                        "" if math.isnan(s.point_biserial) else f"{s.point_biserial:.3f}"])
    return path
