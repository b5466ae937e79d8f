"""Install benchmark: the embedded cloud's services venv filled by pip (`install.ensure_venv`, what popek
does) vs by uv with the same arguments, side by side, into scratch directories (never the cloud's own venv).

popek keeps pip for the services (claim C32: the cloud is installed by `pip install`, INSTALLER files are
its evidence); this says what that costs. The wheelhouse is popek's (filled by the cloud's first `up`; read
only here). uv's cache is a scratch directory, emptied before the first uv run of each round: "cold" is a
machine whose wheelhouse is filled but which never ran uv, "warm" the same machine on its next rebuild.
With `--popek-venv`, also popek's own venv as `.ci/install` makes it (pip before, uv now; empty caches,
from a copy of the repository's files).

Writes benchmarks/results/install.json. Example: `.venv/bin/python benchmarks/bench_install.py --runs 2`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from popek import paths
from popek.checks.localcloud import install
from popek.checks.localcloud.state import CloudState

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def services_venv(wheelhouse: Path, work: Path, tool: str, cold: bool) -> float:
    """Seconds for the services venv in a fresh venv under `work`: ensure_venv (pip), or uv with the same
    requirements, wheelhouse and drivers' wheel."""
    venv = work / f"{tool}-venv"
    shutil.rmtree(venv, ignore_errors=True)
    if cold:
        shutil.rmtree(work / "uv-cache", ignore_errors=True)
    t0 = time.monotonic()
    if tool == "pip":
        install.ensure_venv(venv, work / "pip.log", wheelhouse)
    else:
        uv = [str(install_uv()), "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
        env = {**os.environ, "UV_CACHE_DIR": str(work / "uv-cache")}
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*uv, "--no-index", "--find-links", str(wheelhouse), "-r", str(install.REQUIREMENTS)],
                       check=True, env=env)
        subprocess.run([*uv, "--reinstall", "--no-deps", str(install.alwaysbind_wheel(work / "wheels"))],
                       check=True, env=env)
    took = time.monotonic() - t0
    shutil.rmtree(venv, ignore_errors=True)
    return took


def install_uv() -> Path:
    """uv from PyPI (pinned in constraints.txt) in popek's venv, installed by .ci/install."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), "uv"],
                       check=True)
    return uv


def popek_venv(work: Path, tool: str) -> float:
    """Seconds for popek's own venv as .ci/install makes it (python -m venv, then popek editable with its test
    extra at constraints.txt), caches empty, from a copy of the repository's files."""
    src = work / "src"
    if not src.exists():
        sys.path.insert(0, str(REPO / "tests"))
        from helpers import source_tree  # the packaging test's copy of the repository's files

        source_tree(src)
    venv, caches = work / f"popek-{tool}", work / f"caches-{tool}"
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(caches, ignore_errors=True)
    env = {**os.environ, "PIP_CACHE_DIR": str(caches / "pip"), "UV_CACHE_DIR": str(caches / "uv")}
    constraints = str(src / "constraints.txt")
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-c", constraints]
    t0 = time.monotonic()
    quiet([sys.executable, "-m", "venv", str(venv)], env)
    if tool == "uv":
        quiet([*pip, "uv"], env)
        quiet([str(venv / "bin" / "uv"), "pip", "install", "-q", "--system-certs", "--python",
               str(venv / "bin" / "python"), "-c", constraints, "-e", f"{src}[test]"], env)
    else:
        quiet([*pip, "-e", f"{src}[test]"], env)
    took = time.monotonic() - t0
    shutil.rmtree(venv, ignore_errors=True)
    return took


def quiet(argv: list[str], env: dict) -> None:
    """Run `argv`, its output kept (this machine's pip warns about every missing local index) unless it fails."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}… exited {proc.returncode}:\n{proc.stderr[-2000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--popek-venv", action="store_true", help="also popek's own venv (.ci/install)")
    args = parser.parse_args(argv)
    wheelhouse = CloudState(paths.embedded_cloud_dir()).wheelhouse
    if not (wheelhouse / "popek-requirements.sha256").exists():
        print(f"pas de wheelhouse rempli ({wheelhouse}) : lancez d'abord `popek cloud up`", file=sys.stderr)
        return 2
    figures: dict[str, list[float]] = {"services pip": [], "services uv (cold cache)": [],
                                       "services uv (warm cache)": []}
    if args.popek_venv:
        figures |= {"popek venv pip": [], "popek venv uv": []}
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        work = Path(tmp)
        for _ in range(args.runs):
            figures["services pip"].append(services_venv(wheelhouse, work, "pip", cold=False))
            figures["services uv (cold cache)"].append(services_venv(wheelhouse, work, "uv", cold=True))
            figures["services uv (warm cache)"].append(services_venv(wheelhouse, work, "uv", cold=False))
            if args.popek_venv:
                figures["popek venv pip"].append(popek_venv(work, "pip"))
                figures["popek venv uv"].append(popek_venv(work, "uv"))
    rows = {k: (min(v), statistics.median(v), max(v)) for k, v in figures.items()}
    print("| venv | min s | median s | max s | vs pip (median) |\n|---|---|---|---|---|")
    for name, (lo, med, hi) in rows.items():
        base = rows["popek venv pip" if name.startswith("popek") else "services pip"][1]
        print(f"| {name} | {lo:.1f} | {med:.1f} | {hi:.1f} | {base / med:.1f}x |")
    out = HERE / "results" / "install.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "seconds": figures}, indent=1))
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
