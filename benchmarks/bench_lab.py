"""Lab grading benchmark on the embedded cloud: provision a class of N students (default 30), let
them work (most do half of the TP, `--full` of them all but the volume), grade the class with 1 thread and with
a pool side by side, then as the real `popek lab grade --class` process, and tear the class down.

The issue's target is grading 30 students in under 60 s: the table says where the time goes, no
assertion is made. Each student is graded through their own openstacksdk connection (their own
credentials). Writes benchmarks/results/lab.json. Needs `popek cloud up` (admin entry popek-admin).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from popek import paths
from popek.checks.cloud.connection import connect
from popek.checks.lab import classroom, grader, solution
from popek.checks.lab.definition import find_lab
from popek.checks.lab.roster import Student

HERE = Path(__file__).resolve().parent
HALF = ("keypair", "security_group", "container", "object")
#: The "full" students skip the volume attachment: whether a cloud can attach depends on its volume
#: driver and hypervisor (fake cinder + libvirt cannot), not on what is measured here.
FULL = tuple(s for s in solution.STEPS if s != "volume")


def student_conn(out: Path, sid: str):
    return connect(sid, {"OS_CLIENT_CONFIG_FILE": str(out / "clouds.yaml")}, paths.embedded_clouds_yaml()).conn


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--full", type=int, default=2, help="students who do the whole TP (boot a server…)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8], help="grading thread pools to compare")
    parser.add_argument("--os-cloud", default="popek-admin")
    parser.add_argument("--popek", default=str(Path(sys.executable).parent / "popek"))
    args = parser.parse_args(argv)

    admin = connect(args.os_cloud, {}, paths.embedded_clouds_yaml()).conn
    lab = find_lab("tp-openstack", paths.QUIZZES_DIR / "labs")
    tag = uuid.uuid4().hex[:6]
    prefix = f"bench{tag}"
    students = [Student(f"e{n:02d}") for n in range(args.students)]
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="popek-bench-lab-") as tmp:
        out = Path(tmp) / "classe"
        try:
            report = classroom.provision(admin, students, out, classroom.parse_quota(None), prefix)
            if report.problems:
                raise SystemExit(f"provision failed: {report.problems[:3]}")
            figures["provision (s)"] = report.seconds

            t0 = time.perf_counter()

            def work(i_student):
                i, s = i_student
                conn = student_conn(out, s.id)
                try:
                    solution.perform(conn, FULL if i < args.full else HALF)
                finally:
                    conn.close()
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(work, enumerate(students)))
            figures["students' work, not graded (s)"] = time.perf_counter() - t0

            ids = [s.id for s in students]
            percents = None
            for w in args.workers:
                result = grader.grade_class(lab, ids, lambda sid: student_conn(out, sid), workers=w)
                if result.errors:
                    raise SystemExit(f"grading failed: {list(result.errors.items())[:3]}")
                figures[f"grade {len(ids)} students, {w} thread(s) (s)"] = result.seconds
                percents = sorted(round(s.percent) for s in result.submissions)
                figures[f"per student, {w} thread(s) (mean inspection, s)"] = \
                    sum(g.seconds for g in result.graded) / len(result.graded)
            t0 = time.perf_counter()
            proc = subprocess.run([args.popek, "lab", "grade", "tp-openstack", "--class", str(out / "clouds.yaml"),
                                   "--out", str(Path(tmp) / "notes")], capture_output=True, text=True)
            figures["`popek lab grade --class` process (s)"] = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"popek lab grade failed ({proc.returncode}): {proc.stderr[-800:]}")
        finally:
            plans, seconds = classroom.teardown(admin, students, prefix, dry_run=False)
            figures["teardown (s)"] = seconds
            failed = [p for p in plans if p.problem]
            if failed:
                print(f"teardown problems: {[classroom.describe(p, False) for p in failed[:3]]}", file=sys.stderr)

    n = args.students
    base = figures.get(f"grade {n} students, 1 thread(s) (s)")
    print(f"Class of {n} students ({args.full} with the whole TP, the others half), embedded cloud\n")
    print("| stage | seconds | per student (s) | vs 1 thread |")
    print("|---|---:|---:|---:|")
    for key, value in figures.items():
        ratio = f"{base / value:.2f}×" if base and key.startswith("grade ") else ""
        per = "" if key.startswith("per student") else f"{value / n:.3f}"
        print(f"| {key} | {value:.2f} | {per} | {ratio} |")
    print(f"\nscores (%) : {percents}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "lab.json").write_text(json.dumps(
        {"students": n, "full": args.full, "figures": figures, "percents": percents}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
