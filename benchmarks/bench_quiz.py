"""Quiz grading benchmark: grade N synthetic submissions (default 1,000) end to end, and each stage
side by side as a share of the whole.

Stages: reading + checking the answer files and recomputing each student's variant (HMAC draw),
grading every question, writing the class outputs (gradebook CSV, N Gradescope results.json,
N graded copies, statistics); and, for the real command, `popek quiz grade` as a process (Python
start-up and imports included). The issue's target is under 10 s for 1,000 submissions: the table
says where the time goes, no assertion is made. Writes benchmarks/results/quiz.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from popek import paths
from popek.checks.quiz import report, synthetic
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import load_banks

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret"


def one_run(files: list[Path], banks, banks_dir: Path, out: Path, popek: str) -> dict[str, float]:
    t0 = time.perf_counter()
    loaded = [(s, sheets.variant_of(s, banks, SECRET, f)) for f in files for s in [sheets.load(f)]]
    t1 = time.perf_counter()
    for s, v in loaded:
        sheets.grade_sheet(s, v)
    t2 = time.perf_counter()
    report.grade_files(files, banks, SECRET, out)
    t3 = time.perf_counter()
    proc = subprocess.run([popek, "quiz", "grade", *map(str, files), "--secret", SECRET, "--out", str(out / "cli"),
                           "--banks", str(banks_dir)],
                          capture_output=True, text=True)
    t4 = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"popek quiz grade failed ({proc.returncode}): {proc.stderr[-500:]}")
    whole = t3 - t2
    return {"load + variants (s)": t1 - t0, "grading (s)": t2 - t1,
            "outputs (s)": max(0.0, whole - (t2 - t0)), "grade_files end to end (s)": whole,
            "`popek quiz grade` process (s)": t4 - t3}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part", default="virtualisation", help="bank of popek's quizzes/ to use")
    parser.add_argument("--banks", default=str(paths.QUIZZES_DIR), help="folder of the banks (default: popek's quizzes/)")
    parser.add_argument("--popek", default=str(Path(sys.executable).parent / "popek"))
    args = parser.parse_args(argv)
    banks = load_banks(Path(args.banks))
    if args.part not in banks:
        raise SystemExit(f"no bank {args.part!r} in {args.banks} (have: {', '.join(banks) or 'none'})")
    bank = banks[args.part]
    series: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="popek-bench-quiz-") as tmp:
        kinds = ["perfect", "random", "random", "empty"] * (args.submissions // 4) + ["random"] * (args.submissions % 4)
        files = synthetic.write_class(bank, SECRET, Path(tmp) / "answers", kinds)
        for run in range(args.runs):
            for k, v in one_run(files, banks, Path(args.banks), Path(tmp) / f"out{run}", args.popek).items():
                series.setdefault(k, []).append(v)
    whole = statistics.median(series["grade_files end to end (s)"])
    n = args.submissions
    print(f"Grading {n} submissions of « {bank.title} » ({len(bank.pools())} questions each), {args.runs} runs\n")
    print("| stage | min (s) | median (s) | max (s) | per submission (ms) | share of grade_files |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, values in series.items():
        med = statistics.median(values)
        print(f"| {key} | {min(values):.3f} | {med:.3f} | {max(values):.3f} | {1000 * med / n:.2f} | {med / whole:.2f} |")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "quiz.json").write_text(json.dumps({"submissions": n, "part": args.part, "series": series}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
