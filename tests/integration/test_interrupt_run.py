"""A `popek run cloud -n 2` killed hard (SIGKILL: no cleanup can run) at a moment of its scenarios, for real on the
embedded cloud, with a second run B started beside what it left (hT's trial, 2026-12-07). What must hold:

- B's own start-up sweep leaves the dead run's resources alone while its heartbeat is young (the sweep cannot
  tell a dead run from a live one on another machine before AUTO_SWEEP_MIN_AGE; B still runs and cleans up);
- `popek cloud sweep --older-than 2.5` (longer than ledger.HEARTBEAT_EVERY, 2 min: any live run has refreshed
  its heartbeat since), run while B runs, deletes every resource the dead run left (its heartbeat older
  than 150 s: the evidence) and none of B's (its heartbeat fresh);
- in the end nothing of either run is left.
test_cloud_features.test_sweep_removes_what_a_hard_killed_run_left covers the sweep's ages on a forged orphan
(one security group, no heartbeat); this one kills a real run.

Live 2026-12-07 10:42-10:49 (under flock -s, load from the other engineers' runs): [tree] passed in 395 s (run B:
39 passed, 2 skipped in 327 s; the dead run's /tmp/popek-shared-* folder gone too); [controller] not run yet;
[pair] (the tree killed as soon as a server of its shared pair is in BUILD) added by hU 13:25, not run live yet.

Opt-in (~4-7 min a case: a run killed 40-80 s in, a minute for its heartbeat to age, a second whole run):
POPEK_SLOW_FAULTS=1, under `flock -s /tmp/popek-cloud.lock` (it only uses the cloud, as a student would).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from popek import paths
from popek.checks.cloud import connection, ledger

from faults import slow
from helpers import VENV_BIN, running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("un run tué (SIGKILL) puis un second run entier à côté (~4 min)", " (sous flock -s)")]

POPEK = str(VENV_BIN / "popek")
SWEEP_MINUTES = 2.5


def by_run(conn) -> dict[str, list[str]]:
    """{run id: ["kind name", …]} of every popek-named resource of the project (ledger.orphans, no age)."""
    runs = defaultdict(list)
    for entry in ledger.orphans(conn, None):
        runs[ledger.NAME_RE.match(entry.name).group(1)].append(f"{entry.kind} {entry.name}")
    return dict(runs)


def descendants(pid: int) -> list[int]:
    kids = defaultdict(list)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                kids[int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])].append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += kids.get(p, [])
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_run(tmp_path: Path, name: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([POPEK, "run", "cloud", "-n", "2", "--no-report", "--no-cloud-up",
                             "--results", str(tmp_path / name)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=tmp_path)


def pair_building(conn, before: set, started: float, timeout: float = 240.0) -> float:
    """Seconds since `started` when a server of the run's shared pair (`popek-<run>-run-…`, shared.RunShared)
    of a run not in `before` is seen in BUILD; the timeout when none was."""
    while time.monotonic() - started < timeout:
        for server in conn.compute.servers(details=False, status="BUILD"):
            found = ledger.NAME_RE.match(server.name or "")
            if found and found.group(1) not in before and server.name.startswith(f"popek-{found.group(1)}-run-"):
                return time.monotonic() - started
        time.sleep(1)
    return timeout


@pytest.mark.parametrize("victims", ["tree", "controller", "pair"])
def test_a_hard_killed_run_is_swept_by_its_heartbeat_and_a_live_run_beside_it_is_not(tmp_path, victims,
                                                                                   record_property):
    """`pair`: the whole tree killed while the run's shared pair is being built (one of its servers in BUILD)."""
    running_cloud(dataplane=True)
    conn = connection.connect("popek", {}, paths.embedded_clouds_yaml()).conn
    before = set(by_run(conn))
    a = start_run(tmp_path, "A")
    started = time.monotonic()
    family: list[int] = []
    b = None
    try:
        if victims == "pair":
            at = pair_building(conn, before, started)
        else:
            at = random.uniform(40, 80)
            time.sleep(at)
        family = descendants(a.pid)
        for pid in (family if victims != "controller" else [a.pid]):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        a.wait()
        if victims == "controller":     # its workers, orphaned: they end on their own (xdist's channel closed)
            deadline = time.monotonic() + 240
            while any(alive(p) for p in family[1:]) and time.monotonic() < deadline:
                time.sleep(2)
        survivors = [p for p in family if alive(p)]
        left = {run: names for run, names in by_run(conn).items() if run not in before}
        run_a = sorted(left)
        record_property("killed", f"SIGKILL ({victims}) {at:.0f} s après le début : {len(family)} processus ; "
                                  f"survivants {survivors} ; laissé : {sum(map(len, left.values()))} ressource(s) "
                                  f"{ {r: len(v) for r, v in left.items()} }")
        assert not survivors, f"des processus du run tué tournent encore : {survivors}"
        b = start_run(tmp_path, "B")
        swept, run_b = None, None
        while b.poll() is None:
            time.sleep(3)
            ages = ledger.heartbeat_ages(conn)
            new = sorted(set(by_run(conn)) - before - set(run_a))
            run_b = new[0] if new else run_b
            a_age = min([ages.get(r, float("inf")) for r in run_a] or [float("inf")])
            if swept is None and run_a and run_b in ages and a_age > SWEEP_MINUTES * 60:
                still = {r: by_run(conn).get(r, []) for r in run_a}
                sweep = subprocess.run([POPEK, "cloud", "sweep", "--older-than", str(SWEEP_MINUTES)],
                                       capture_output=True, text=True, timeout=600)
                swept = sweep.stdout
                after = by_run(conn)
                record_property("sweep", f"cœur du run tué {a_age:.0f} s, du run vivant {ages[run_b]:.0f} s ; "
                                         f"{sweep.stdout.strip().splitlines()[-1:]}")
                assert sweep.returncode == 0, sweep.stdout + sweep.stderr
                assert not any(after.get(r) for r in run_a), f"laissé par le balayage : {[after[r] for r in run_a]}"
                for names in still.values():
                    for name in names:
                        assert name.split()[1] in swept, f"{name} pas nommé par le balayage :\n{swept}"
                assert f"popek-{run_b}-" not in swept, f"le balayage a touché le run vivant :\n{swept}"
        out_b = (tmp_path / "B.log").read_text()
        record_property("run B", f"code {b.returncode} ; "
                                 + " ; ".join(l for l in out_b.splitlines() if "balayage" in l or " passed" in l))
        assert b.returncode == 0, out_b[-3000:]
        assert not any(f"popek-{r}-" in out_b for r in run_a), "le run B a balayé le run tué, trop jeune pour ça"
        if run_a:
            assert swept is not None, "le cœur du run tué n'a pas vieilli de 150 s pendant le run B"
        assert set(by_run(conn)) <= before, f"il reste : {by_run(conn)}"
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in family:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        conn.close()
