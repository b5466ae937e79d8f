"""`popek lab list|checks|grade`: practical labs (TP) graded on a real cloud, read-only.

`grade LAB --os-cloud NAME` grades one student (id = NAME, or --student); `--class clouds.yaml`
grades every entry of that file (id = entry name), concurrently, each with its own credentials.
Outputs: the quiz gradebook formats (checks/lab/grader.py). A student whose credentials fail is
reported and the others are graded; the exit code is then EXIT_FAILED.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from popek import paths

EXIT_FAILED = 4         # some students could not be graded, or some tasks could not be checked


def labs_dir(args) -> Path:
    return Path(args.labs) if getattr(args, "labs", None) else paths.QUIZZES_DIR / "labs"


def register(sub):
    p = sub.add_parser("lab", help="practical labs (TP) graded read-only on a real cloud")
    ls = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    lst = ls.add_parser("list", help="list the labs, their tasks and points")
    lst.add_argument("--labs", default=None, help="folder of lab definitions (default: popek's quizzes/labs)")
    lst.set_defaults(func=list_labs)

    chk = ls.add_parser("checks", help="the checks a lab definition can use: parameters and criteria")
    chk.set_defaults(func=list_checks)

    g = ls.add_parser("grade", help="grade a lab: inspect each student's project (read-only) and score it")
    g.add_argument("lab", help="lab id (see `popek lab list`) or path to a lab YAML file")
    who = g.add_mutually_exclusive_group(required=True)
    who.add_argument("--os-cloud", default=None, help="one student: this cloud of clouds.yaml")
    who.add_argument("--class", dest="class_yaml", default=None,
                     help="a clouds.yaml whose entries are the students (from `popek class provision`)")
    g.add_argument("--student", default=None, help="with --os-cloud: the student's id (default: the cloud name)")
    g.add_argument("--out", default=None, help="output folder (default ./popek-results/lab/LAB)")
    g.add_argument("--workers", type=int, default=8, help="students graded at once (default 8)")
    g.add_argument("--labs", default=None, help="folder of lab definitions (default: popek's quizzes/labs)")
    g.set_defaults(func=grade)


def _lab(args):
    from popek.checks.lab.definition import LabError, find_lab
    from popek.errors import UserError
    try:
        return find_lab(args.lab, labs_dir(args))
    except LabError as exc:
        raise UserError(f"TP invalide : {exc}") from None


def list_labs(args) -> int:
    from popek.checks.lab.definition import LabError, load_labs
    from popek.errors import UserError
    try:
        labs = load_labs(labs_dir(args))
    except LabError as exc:
        raise UserError(f"TP invalide : {exc}") from None
    if not labs:
        raise UserError(f"aucun TP dans {labs_dir(args)}")
    for lab in labs.values():
        print(f"{lab.id} — {lab.title} ({lab.max_score:g} points)")
        for t in lab.tasks:
            partial = " (crédit partiel)" if t.partial else ""
            print(f"  {t.id:<16} {t.points:>4g} pt  {t.check.name}{partial} — {t.title}")
    return 0


def list_checks(args) -> int:
    from popek.checks.lab.registry import CHECKS
    for c in CHECKS.values():
        print(f"{c.name} — {c.doc}")
        for name, p in c.params.items():
            default = "" if p.default is None else f" (défaut : {p.default})"
            print(f"  with.{name}: {p.type.__name__}{default}{' — ' + p.help if p.help else ''}")
        print(f"  critères (tous paramètres donnés) : {', '.join(c.criteria({n: True for n in c.params}))}")
    return 0


def _class_entries(path: Path) -> list[str]:
    """The student ids of a class clouds.yaml (its entry names)."""
    import yaml
    from popek.errors import UserError
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"clouds.yaml de la classe illisible : {path} ({type(exc).__name__})") from None
    clouds = data.get("clouds") if isinstance(data, dict) else None
    if not isinstance(clouds, dict) or not clouds:
        raise UserError(f"clouds.yaml de la classe sans entrée : {path} (il faut « clouds: » et une entrée par étudiant)")
    return sorted(clouds)


def grade(args) -> int:
    from popek.checks.cloud.connection import CloudUnavailable, connect
    from popek.checks.lab import grader
    from popek.checks.secrets import REDACT
    from popek.errors import UserError

    lab = _lab(args)
    embedded = paths.embedded_clouds_yaml()
    if args.class_yaml:
        class_yaml = Path(args.class_yaml).resolve()
        students = _class_entries(class_yaml)
        environ = {"OS_CLIENT_CONFIG_FILE": str(class_yaml)}
        names = {s: s for s in students}
    else:
        if args.student and not args.os_cloud:
            raise UserError("--student va avec --os-cloud")
        students = [args.student or args.os_cloud]
        environ = dict(os.environ)
        names = {students[0]: args.os_cloud}
    from popek.checks.quiz.sheet import valid_student
    bad = [s for s in students if not valid_student(s)]
    if bad:   # ids name output files and CSV rows: "alice\n" or "../x" must never get that far
        raise UserError(f"identifiant(s) d'étudiant invalide(s) : {', '.join(repr(s)[:40] for s in bad)} "
                        "(1 à 64 lettres, chiffres, . _ @ -)")

    def open_conn(student):
        return connect(names[student], environ, embedded).conn

    def explain(exc):
        return REDACT(str(exc) if isinstance(exc, CloudUnavailable) else f"{type(exc).__name__}: {exc}")

    from popek.progress import Counter

    with Counter(len(students), "étudiants notés", count_lines=False) as bar:
        result = grader.grade_class(lab, students, open_conn, workers=args.workers, explain=explain, done=bar.advance)
    out = Path(args.out) if args.out else paths.results().lab(lab.id)
    try:
        written = grader.write_outputs(out, result)
    except OSError as exc:
        raise UserError(f"écriture impossible dans {out} : {exc}") from None
    print(grader.summary(result))
    print(f"carnet de notes : {written['gradebook']} ; Gradescope : {written['gradescope']}")
    for student, why in sorted(result.errors.items()):
        print(f"popek: {student} non noté : {why}", file=sys.stderr)
    unchecked = [g.submission.student for g in result.graded if g.unchecked]
    if unchecked:
        print(f"popek: tâches non vérifiables pour {', '.join(unchecked)} (service absent du cloud)", file=sys.stderr)
    return EXIT_FAILED if result.errors or unchecked else 0
