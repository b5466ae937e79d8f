"""Fresh machine -> ready cloud (issue #17: < 4 min): `bash .ci/install` then a cold `popek cloud up` with the
dataplane and its images built, every cache empty, as a new user runs the README's first command from a clone.

What a new machine would not have of popek's is MOVED aside (renamed on the same file system), never deleted
before the measurement succeeded: popek's `cloud/` state (after `popek cloud down`: `destroy` without its
deletion), `cache/` (images, the services' wheelhouse, Debian 13's apt cache) and `node/` (Allure). The caches
that are not popek's (pip's, uv's, npm's, stevedore's entry points: other projects' too) are left alone: the
clone's `.ci/install` and `up` get empty ones instead (PIP_CACHE_DIR, UV_CACHE_DIR, npm_config_cache,
XDG_CACHE_HOME under the run's directory, deleted at the end). The services' own stevedore cache stays the
user's (popek gives them HOME, not XDG_CACHE_HOME): its entries are keyed by the venv's paths and their times,
so a new venv finds none. The Debian packages stay installed (apt is not undone: QEMU, MariaDB, RabbitMQ,
Open vSwitch, libvirt… cost nothing here that a new machine would pay once).

Then `git clone` of REPO's committed HEAD into a temporary directory, `bash .ci/install` there (timed), the
clone's `popek cloud up` (timed, its stage lines kept), and `popek cloud status` (services answering).
On success the moved-aside copies are deleted (what the new cloud does not make again, the boot benchmark's
image cache, goes back into the new cache), and the cloud is handed over to REPO's popek (`down`, then a warm
`up` from REPO, also timed), so that its configuration names REPO's scripts and not the clone's, which is then
deleted (`--no-handover` keeps the clone and the cloud as the clone started it).
On a failure, what this run made is stopped and removed, everything moved aside is put back, and REPO's popek
brings the previous cloud up again. The aside directory keeps a manifest of every move: `--restore DIR` puts
them back by hand after a crash.

Run as root with the host and the cloud reserved to it (it takes /tmp/popek-cloud.lock exclusively, and
waits at most `--lock-wait` s for it): `.venv/bin/python benchmarks/bench_fresh.py`.
Writes benchmarks/results/fresh.json. `--rehearse ok|fail`: the same sequence with POPEK_HOME under /tmp and
stand-ins for `.ci/install` and the `up`s (which must then not run): checks the moves, the deletions and the
put-backs without touching a cloud.
`--first-run`: the README's first command whole (issue #17: a report in < 6 min): `.ci/install` then the
clone's `popek run` (the cold up, the main job on the host and the new cloud, the HTML report) instead of
`popek cloud up`; the run's test summary and its report's presence are recorded. Failed scenarios are a
result, not a failure of the measurement: what counts is that the cloud came up and the report was written.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from popek import paths

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POPEK_HOME = paths.state_home()  # popek's own answer ($POPEK_HOME, else $XDG_DATA_HOME/popek)
#: what a machine that never ran popek does not have of popek's: moved aside, in this order
ASIDE = [POPEK_HOME / "cloud", POPEK_HOME / "cache", POPEK_HOME / "node"]
#: the tools' caches, not popek's (never moved nor deleted): the clone's processes get empty ones under these
#: variables instead (XDG_CACHE_HOME: pip's, uv's and stevedore's default place)
EMPTY_CACHES = {"PIP_CACHE_DIR": "pip", "UV_CACHE_DIR": "uv", "npm_config_cache": "npm", "XDG_CACHE_HOME": "xdg"}
#: under a moved-aside path, what the new cloud does not make again: put back after a success
KEEP = {POPEK_HOME / "cache": ["bench-boot"]}
LOCK = "/tmp/popek-cloud.lock"
STAGE = re.compile(r"^\[\s*([\d.]+) s\] (.*) \(([\d.]+) s\)$")
COUNT = re.compile(r"(\d+)/(\d+) services en marche")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(argv: list[str], log: Path, cwd: Path | None = None, env: dict | None = None,
          timeout: float = 900.0) -> tuple[float, int, str]:
    """(seconds, exit code, output) of `argv`, its output also appended to `log` and echoed line by line; after
    `timeout` s its whole process group is sent SIGTERM (exit code then negative)."""
    t0 = time.monotonic()
    lines = []
    with open(log, "a") as out:
        out.write(f"\n=== {' '.join(argv)} (load {load()})\n")
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, stdin=subprocess.DEVNULL, start_new_session=True)
        watchdog = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGTERM))
        watchdog.start()
        try:
            for line in proc.stdout:
                out.write(line)
                lines.append(line.rstrip("\n"))
                print(f"  | {line.rstrip()}", flush=True)
            rc = proc.wait()
        finally:
            watchdog.cancel()
    return time.monotonic() - t0, rc, "\n".join(lines)


def stages(output: str) -> list[dict]:
    """The `[  t s] step (d s)` lines of `popek cloud up` as {"at": t, "step": …, "seconds": d}."""
    found = []
    for line in output.splitlines():
        m = STAGE.match(line.strip())
        if m:
            found.append({"at": float(m.group(1)), "step": m.group(2), "seconds": float(m.group(3))})
    return found


def services_count(popek: str) -> tuple[int, int]:
    out = subprocess.run([popek, "cloud", "status"], capture_output=True, text=True, timeout=120).stdout
    m = COUNT.search(out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def move_aside(aside: Path) -> dict[str, str]:
    """Rename every existing path of ASIDE into `aside` (same file system), the manifest written after each."""
    moves: dict[str, str] = {}
    for i, path in enumerate(ASIDE):
        if not path.exists():
            continue
        if path.stat().st_dev != aside.stat().st_dev:
            raise SystemExit(f"{path} is on another file system than {aside}: not moved (a copy would be slow)")
        target = aside / f"{i}-{path.name}"
        os.rename(path, target)
        moves[str(path)] = str(target)
        (aside / "manifest.json").write_text(json.dumps(moves, indent=1))
    return moves


def put_back(moves: dict[str, str]) -> None:
    """Every moved path back where it was; what this run made there in between is deleted first."""
    for original, target in moves.items():
        if Path(target).exists():
            if Path(original).exists():
                shutil.rmtree(original)  # made by this run (.ci/install, up) after the move
            os.rename(target, original)


def keep_after_success(moves: dict[str, str]) -> None:
    """KEEP's entries back into the new directories; then the moved-aside copies deleted."""
    for original, target in moves.items():
        for name in KEEP.get(Path(original), []):
            if (Path(target) / name).exists() and not (Path(original) / name).exists():
                Path(original).mkdir(parents=True, exist_ok=True)
                os.rename(Path(target) / name, Path(original) / name)
        shutil.rmtree(target)


def restore(aside: Path) -> int:
    moves = json.loads((aside / "manifest.json").read_text())
    put_back(moves)
    print(f"put back: {', '.join(moves)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-handover", action="store_true",
                        help="leave the cloud as the clone's popek started it, and the clone")
    parser.add_argument("--lock-wait", type=float, default=180.0)
    parser.add_argument("--timeout", type=float, default=None,
                        help="the cold up (--first-run: the whole popek run) is stopped after this many s (.ci/install "
                             "after a third of it): a failure; default 600, 900 with --first-run")
    parser.add_argument("--first-run", action="store_true",
                        help="time the README's first command: `.ci/install` then `popek run` (cold up, main job, report)")
    parser.add_argument("--restore", type=Path, help="put back what a crashed run moved aside into DIR")
    parser.add_argument("--rehearse", choices=["ok", "fail"],
                        help="stand-ins for .ci/install and the ups, every moved path under /tmp")
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 900.0 if args.first_run else 600.0
    if args.restore:
        return restore(args.restore)
    if os.geteuid() != 0:
        print("root required (the cloud's dataplane)", file=sys.stderr)
        return 2
    if args.rehearse and not all(str(p).startswith("/tmp/") for p in ASIDE):
        print("--rehearse: POPEK_HOME must be under /tmp", file=sys.stderr)
        return 2
    main_popek = str(REPO / ".venv" / "bin" / "popek")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    lock = open(LOCK, "a")
    deadline = time.monotonic() + args.lock_wait
    while not args.rehearse:  # a rehearsal touches no cloud
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                print(f"{LOCK}: still held after {args.lock_wait:.0f} s; nothing done", file=sys.stderr)
                return 3
            time.sleep(1)
    aside = Path(tempfile.mkdtemp(prefix="popek-fresh-aside-", dir=POPEK_HOME.parent))
    work = Path(tempfile.mkdtemp(prefix="popek-fresh-"))
    log = work / "fresh.log"
    caches = work / "caches"  # the clone's empty caches (EMPTY_CACHES), deleted at the end
    result: dict = {"tree": head, "aside": str(aside), "log": str(log), "load": {}}
    print(f"tree {head}; aside {aside}; log {log}", flush=True)
    moves: dict[str, str] = {}
    ok = False
    clone = work / "popek"
    clone_popek = str(clone / ".venv" / "bin" / "popek")
    cmd = {"install": ["bash", ".ci/install"], "up": [clone_popek, "cloud", "up"],
           "clone down": [clone_popek, "cloud", "down"], "main up": [main_popek, "cloud", "up"]}
    if args.first_run:
        cmd["up"] = [clone_popek, "run"]
        result["measured"] = "README's first command: .ci/install && popek run"
    if args.rehearse:
        fake = (f"mkdir -p {POPEK_HOME}/cloud/venv {POPEK_HOME}/cache/wheels \"$PIP_CACHE_DIR/http\" "
                "\"$npm_config_cache/_cacache\" && echo '[   1.5 s] stand-in (1.5 s)'")
        cmd = {"install": ["bash", "-c", f"mkdir -p {POPEK_HOME}/node && echo install stand-in"],
               "up": ["bash", "-c", fake + ("; exit 1" if args.rehearse == "fail" else "")],
               "clone down": ["true"], "main up": ["true"]}
        result["rehearsal"] = args.rehearse
    try:
        result["load"]["before down"] = load()
        result["down old s"], rc, _ = timed([main_popek, "cloud", "down"], log)
        if rc != 0:
            raise RuntimeError("popek cloud down failed: nothing moved")
        moves = move_aside(aside)
        result["moved"] = list(moves)
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "VIRTUAL_ENV"))}
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p + "/")
        env |= {var: str(caches / name) for var, name in EMPTY_CACHES.items()}
        result["empty caches"] = str(caches)
        result["load"]["install start"] = load()
        result["install s"], rc, _ = timed(cmd["install"], log, cwd=clone, env=env, timeout=args.timeout / 3)
        result["load"]["install end"] = load()
        if rc != 0:
            raise RuntimeError(f".ci/install exited {rc}")
        result["load"]["up start"] = load()
        result["up s"], rc, out = timed(cmd["up"], log, cwd=clone, env=env, timeout=args.timeout)
        result["load"]["up end"] = load()
        result["stages"] = stages(out)
        if args.first_run and not args.rehearse:
            report = clone / "popek-results" / "report" / "index.html"
            summary = re.findall(r"=+ (.*(?:passed|failed|error).*) in [0-9.]+s", out)
            result |= {"popek run exit": rc, "tests": summary[-1] if summary else None,
                       "report written": report.is_file()}
            if not report.is_file() or services_count(clone_popek)[0] == 0:
                raise RuntimeError(f"popek run exited {rc} without a report or a cloud")
        elif rc != 0:
            raise RuntimeError(f"popek cloud up exited {rc}")
        result["install + up s"] = result["install s"] + result["up s"]
        if args.first_run:  # "up s" was the whole popek run: the cold up, the main job, the report
            result["popek run s"] = result.pop("up s")
            result["install + popek run s"] = result.pop("install + up s")
        result["services"] = services_count(main_popek if args.rehearse else clone_popek)
        ok = True
        keep_after_success(moves)
        if not args.no_handover:
            result["handover down s"], rc, _ = timed(cmd["clone down"], log)
            result["handover warm up s"], rc2, _ = timed(cmd["main up"], log, cwd=REPO)
            result["services after handover"] = services_count(main_popek)
            if rc == 0 and rc2 == 0:
                shutil.rmtree(clone)
            else:
                result["handover"] = f"failed (down {rc}, up {rc2}): clone kept in {clone}"
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(f"FAILED: {result['error']}", flush=True)
        if not ok:
            if Path(clone_popek).exists() or args.rehearse:
                timed(cmd["clone down"], log)
            put_back(moves)
            shutil.rmtree(clone, ignore_errors=True)
            result["old cloud up again"] = timed(cmd["main up"], log, cwd=REPO)[1] == 0
            result["services after restore"] = services_count(main_popek)
    finally:
        shutil.rmtree(caches, ignore_errors=True)
        if not any(Path(t).exists() for t in moves.values()):  # nothing left aside: the manifest goes too
            shutil.rmtree(aside, ignore_errors=True)
        else:
            result["left aside"] = f"{aside} (manifest.json; --restore {aside})"
        fcntl.flock(lock, fcntl.LOCK_UN)
    out = HERE / "results" / "fresh.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "stages"}, indent=1))
    for s in result.get("stages", []):
        print(f"  [{s['at']:6.1f} s] {s['step']} ({s['seconds']:.1f} s)")
    print(f"figures: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
