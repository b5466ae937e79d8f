"""Install benchmark: the embedded cloud's services venv filled by pip (`install.ensure_venv`, what popek
does) vs by uv with the same arguments, side by side, into scratch directories (never the cloud's own venv).

popek keeps pip for the services (claim C32: the cloud is installed by `pip install`, INSTALLER files are
its evidence); this says what that costs. The wheelhouse is popek's (filled by the cloud's first `up`; read
only here). uv's cache is a scratch directory, emptied before the first uv run of each round: "cold" is a
machine whose wheelhouse is filled but which never ran uv, "warm" the same machine on its next rebuild.
With `--popek-venv`, also popek's own venv as `.ci/install` makes it (pip before, uv now; empty caches,
from a copy of the repository's files).

With `--fresh`, a machine that never filled the wheelhouse: the services venv made by `install.ensure_venv`
from an empty wheelhouse and empty pip and uv caches, the wheelhouse filled the old way (one serial
`pip wheel -r`, `jobs=0`) and the new one (uv resolves, then `install.DOWNLOAD_JOBS` `pip wheel --no-deps`
side by side: what `popek cloud up` does when uv is in popek's venv), in turn within each round (the
order swapped every round); the download and the whole venv are timed apart.

With `--from-wheelhouse`, the services venv from a filled wheelhouse (a copy of popek's, the cloud's own only
read) through `install.ensure_venv`: one `pip install -r` (pip resolves, before) vs `uv pip compile` then
`--jobs` `pip install --no-deps` processes side by side (now), in turn within each round (the order turned every
round), each venv checked (`pip check`, the same distributions and versions as the serial one's).

Writes benchmarks/results/install.json. Example: `.venv/bin/python benchmarks/bench_install.py --runs 2`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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


def fresh_services_venv(work: Path, jobs: int, uv: str | None) -> tuple[float, float]:
    """(download s, whole venv s) for the services venv as a fresh machine makes it through ensure_venv: empty
    wheelhouse, pip and uv caches under `work`; `jobs` 0 (or `uv` None) fills the wheelhouse the old, serial
    way, else `uv` resolves for ensure_wheelhouse; `uv` None installs by one `pip install -r`, else by
    parallel pip processes (install.install_parallel)."""
    venv, wheelhouse, caches = work / "fresh-venv", work / "fresh-wheels", work / "fresh-caches"
    for path in (venv, wheelhouse, caches):
        shutil.rmtree(path, ignore_errors=True)
    saved = {k: os.environ.get(k) for k in ("PIP_CACHE_DIR", "UV_CACHE_DIR")}
    os.environ.update(PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"))  # runcmd inherits them
    try:
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install.ensure_wheelhouse(wheelhouse, str(venv / "bin" / "pip"), work / "fresh-pip.log", jobs=jobs, uv=uv)
        downloaded = time.time() - t0
        install.ensure_venv(venv, work / "fresh-pip.log", wheelhouse, uv=uv)  # uv: parallel pip installs too
        took = time.time() - t0
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for path in (venv, wheelhouse, caches):
        shutil.rmtree(path, ignore_errors=True)
    return downloaded, took


def wheelhouse_venv(wheelhouse: Path, work: Path, jobs: int, uv: str) -> tuple[float, float, list[str]]:
    """(seconds, CPU seconds of the processes it ran, sorted `name==version` lines of pip list) for the services
    venv made by ensure_venv from the filled `wheelhouse`, `jobs` 0 (serial `pip install -r`) or parallel pip
    processes; uv's cache empty. The CPU time does not depend on others' load as the wall time does."""
    venv, caches = work / "wh-venv", work / "wh-caches"
    for path in (venv, caches):
        shutil.rmtree(path, ignore_errors=True)
    saved = os.environ.get("UV_CACHE_DIR")
    os.environ["UV_CACHE_DIR"] = str(caches / "uv")
    try:
        cpu0, t0 = children_cpu(), time.monotonic()
        install.ensure_venv(venv, work / "wh-pip.log", wheelhouse, uv=uv, jobs=jobs)
        took, cpu = time.monotonic() - t0, children_cpu() - cpu0
    finally:
        if saved is None:
            os.environ.pop("UV_CACHE_DIR", None)
        else:
            os.environ["UV_CACHE_DIR"] = saved
    subprocess.run([str(venv / "bin" / "pip"), "check", "--disable-pip-version-check"], check=True,
                   capture_output=True)
    freeze = subprocess.run([str(venv / "bin" / "pip"), "list", "--format", "freeze", "--disable-pip-version-check"],
                            check=True, capture_output=True, text=True).stdout.split()
    shutil.rmtree(venv, ignore_errors=True)
    return took, cpu, sorted(freeze)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def from_wheelhouse(runs: int, jobs_list: list[int]) -> int:
    """--from-wheelhouse: serial `pip install -r` vs parallel pip processes from a copy of the wheelhouse."""
    live = CloudState(paths.embedded_cloud_dir()).wheelhouse
    if not (live / "popek-requirements.sha256").exists():
        print(f"pas de wheelhouse rempli ({live}) : lancez d'abord `popek cloud up`", file=sys.stderr)
        return 2
    uv = str(install_uv())
    ways = {"one `pip install -r` (before)": 0,
            **{f"uv pip compile, {j} `pip install --no-deps` side by side": j for j in jobs_list}}
    figures: dict[str, dict[str, list[float]]] = {w: {"seconds": [], "cpu": [], "load": []} for w in ways}
    with tempfile.TemporaryDirectory(prefix="bench-install-wh-") as tmp:
        wheelhouse = Path(tmp) / "wheels"
        shutil.copytree(live, wheelhouse, ignore=shutil.ignore_patterns("popek-resolution*"))
        reference = None
        for r in range(runs):
            order = list(ways)[r % len(ways):] + list(ways)[:r % len(ways)]
            for way in order:
                load = os.getloadavg()[0]
                took, cpu, freeze = wheelhouse_venv(wheelhouse, Path(tmp), ways[way], uv)
                if reference is None:
                    reference = freeze
                elif freeze != reference:
                    raise SystemExit(f"{way}: not the same distributions: {sorted(set(freeze) ^ set(reference))[:10]}")
                figures[way]["seconds"].append(took)
                figures[way]["cpu"].append(cpu)
                figures[way]["load"].append(load)
                print(f"round {r + 1} {way}: {took:.1f} s, CPU {cpu:.1f} s ({len(freeze)} distributions, pip check "
                      f"clean), load {load:.2f}", flush=True)
    base = statistics.median(figures["one `pip install -r` (before)"]["seconds"])
    print("| services venv from the wheelhouse | median s (min–max) | vs before | CPU s median | load at start |\n"
          "|---|---|---|---|---|")
    for way, f in figures.items():
        sec = f["seconds"]
        print(f"| {way} | {statistics.median(sec):.1f} ({min(sec):.1f}–{max(sec):.1f}) "
              f"| {base / statistics.median(sec):.2f}x | {statistics.median(f['cpu']):.1f} "
              f"| {min(f['load']):.1f}–{max(f['load']):.1f} |")
    out = HERE / "results" / "install-wheelhouse.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "figures": figures}, indent=1))
    print(f"figures: {out}")
    return 0


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
    parser.add_argument("--fresh", action="store_true",
                        help="only the services venv from an empty wheelhouse: serial download vs uv's "
                             "resolution and parallel pip downloads")
    parser.add_argument("--from-wheelhouse", action="store_true",
                        help="only the services venv from a filled wheelhouse: one `pip install -r` vs parallel "
                             "`pip install --no-deps` processes")
    parser.add_argument("--jobs", default=str(install.INSTALL_JOBS),
                        help="with --from-wheelhouse: comma-separated process counts to try (default %(default)s)")
    args = parser.parse_args(argv)
    if args.from_wheelhouse:
        return from_wheelhouse(args.runs, [int(j) for j in args.jobs.split(",")])
    if args.fresh:
        return fresh(args.runs)
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


def fresh(runs: int) -> int:
    """--fresh: the old and new wheelhouse fills in turn, `runs` rounds, one table of medians."""
    jobs, uv = install.DOWNLOAD_JOBS, str(install_uv())
    ways = {"one serial `pip wheel -r` (before)": (0, None),
            f"uv resolves, {jobs} `pip wheel --no-deps` side by side (now)": (jobs, uv)}
    figures: dict[str, dict[str, list[float]]] = {w: {"download": [], "venv": [], "load": []} for w in ways}
    with tempfile.TemporaryDirectory(prefix="bench-install-fresh-") as tmp:
        for r in range(runs):
            order = list(ways)[r % len(ways):] + list(ways)[:r % len(ways)]
            for way in order:
                load = os.getloadavg()[0]
                downloaded, took = fresh_services_venv(Path(tmp), *ways[way])
                figures[way]["download"].append(downloaded)
                figures[way]["venv"].append(took)
                figures[way]["load"].append(load)
                print(f"round {r + 1} {way}: download {downloaded:.1f} s, venv {took:.1f} s, load {load:.2f}",
                      flush=True)
    print("| wheelhouse fill | download median s (min–max) | whole venv median s (min–max) | load at start |\n"
          "|---|---|---|---|")
    for way, f in figures.items():
        print(f"| {way} | {statistics.median(f['download']):.1f} ({min(f['download']):.1f}–{max(f['download']):.1f}) "
              f"| {statistics.median(f['venv']):.1f} ({min(f['venv']):.1f}–{max(f['venv']):.1f}) "
              f"| {min(f['load']):.1f}–{max(f['load']):.1f} |")
    out = HERE / "results" / "install-fresh.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "jobs": jobs, "figures": figures}, indent=1))
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
