"""Host suite benchmark: wall time of `popek run host` and every figure it measures, over N runs.

Prints a markdown table (min / median / max, and the spread max/min − 1 of each ratio) and writes
benchmarks/results/host.json. Ratios come from the scenarios' own figures (figures.json), so the
benchmark measures exactly what the report shows.
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

HERE = Path(__file__).resolve().parent


def one_run(popek: str) -> tuple[float, dict[str, float], int]:
    with tempfile.TemporaryDirectory(prefix="popek-bench-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([popek, "run", "host", "--no-report", "--results", tmp], cwd=tmp,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        figures: dict[str, float] = {}
        for path in Path(tmp).glob("figures*.json"):
            for per_test in json.loads(path.read_text()).values():
                for key, value in per_test.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        figures[key] = float(value)
        return wall, figures, proc.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--popek", default=str(Path(sys.executable).parent / "popek"))
    args = parser.parse_args(argv)
    walls, series, codes = [], {}, []
    for _ in range(args.runs):
        wall, figures, code = one_run(args.popek)
        walls.append(wall)
        codes.append(code)
        for key, value in figures.items():
            series.setdefault(key, []).append(value)
    rows = [("wall time of `popek run host` (s)", walls)] + sorted(series.items())
    print(f"| figure ({args.runs} runs) | min | median | max | spread |\n|---|---:|---:|---:|---:|")
    for key, values in rows:
        lo, med, hi = min(values), statistics.median(values), max(values)
        spread = f"{(hi / lo - 1) * 100:.0f} %" if lo > 0 else "—"
        print(f"| {key} | {lo:.4g} | {med:.4g} | {hi:.4g} | {spread} |")
    print(f"\nexit codes: {codes}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "host.json").write_text(json.dumps({"wall_s": walls, "figures": series, "exit_codes": codes}, indent=2))
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
