"""The pair's early start in an xdist run (RunShared.start_pair, steps.cloud_common.selection_uses_pair):
real processes and the real features' collection, no cloud."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from popek.checks.cloud import shared as shared_mod
from tests.unit.test_shared_across_workers import FORK, PREFIX, Probe, calls, cleaned, run_all


class Booting(Probe):
    """A RunShared whose pair boots like compute.boot (each server recorded by name in the run's ledger
    before Nova is asked), Nova being a `pause` s wait, and whose ACTIVE wait returns the server."""
    pause, fail = 0.2, None

    def _boot_pair(self):
        with open(self.directory / "calls", "a") as out:
            out.write(f"{os.getpid()}\n")
        made = []
        for _ in range(2):
            name = self.ledger.name("shared")
            self.ledger.record("server", name)
            (self.directory / "recorded").write_text(name)
            time.sleep(self.pause)
            if self.fail is not None:
                raise self.fail
            made.append(name)
            self._created.append(name)
        return made

    def _dump(self, key, value, error):
        if error is None and key in ("pair", "pair-boot"):
            return {"value": list(value)}
        return super()._dump(key, value, error)

    def _load(self, key, record):
        if "error" not in record and key in ("pair", "pair-boot"):
            return list(record["value"]), None
        return super()._load(key, record)


def booting(folder, fail=None, pause=0.2) -> Booting:
    found = Booting(None, folder, PREFIX, ("private", "public"))
    found.fail, found.pause = fail, pause
    return found


def no_wait(monkeypatch_target=shared_mod.compute):
    monkeypatch_target.wait_active = lambda conn, server, **kw: server


def starter(folder, out, fail=None, linger=0.5):
    """The first worker: starts the pair when it builds `shared`, never asks for pair() itself."""
    no_wait()
    found = booting(folder, fail)
    try:
        found.start_pair()
        (folder / out).write_text("started")
        time.sleep(linger)
    finally:
        found.close()


def asker(folder, out, fail=None):
    """Another worker's scenario: asks for pair() (waits for ACTIVE only), writes what it got."""
    no_wait()
    found = booting(folder, fail)
    deadline = time.monotonic() + 10
    while not (folder / "recorded").exists() and time.monotonic() < deadline:
        time.sleep(0.02)                # ask while the other worker's boots are under way
    try:
        got = {"value": found.pair()}
    except Exception as exc:
        got = {"error": type(exc).__name__, "message": str(exc)}
    (folder / out).write_text(json.dumps(got))
    found.close()


def test_started_early_the_pair_is_booted_once_and_the_scenario_only_waits(tmp_path):
    run_all(FORK.Process(target=starter, args=(tmp_path, "a")), FORK.Process(target=asker, args=(tmp_path, "b")))
    assert len(calls(tmp_path)) == 1, "pair() booted a second pair"
    got = json.loads((tmp_path / "b").read_text())
    assert len(got["value"]) == 2 and all(n.startswith(PREFIX + "-shared-") for n in got["value"])
    assert [len(d["names"]) for d in cleaned(tmp_path)] == [2]


@pytest.mark.parametrize("fail, kind, message", [
    (AssertionError("Quota exceeded for instances"), "Unavailable",   # compute.boot's verdict
     "ressource partagée du run indisponible — la paire d'instances du run : Quota exceeded for instances "
     "(cause mesurée une fois pour tout le run, à HH:MM:SS UTC, par le premier scénario qui l'a demandée ; "
     "ce scénario ne la refait pas)"),
    (shared_mod.compute.NothingToBoot("aucune image active"), "NothingToBoot", "aucune image active"),
])
def test_a_boot_refused_at_the_early_start_reaches_the_scenario_as_today(tmp_path, fail, kind, message):
    run_all(FORK.Process(target=starter, args=(tmp_path, "a", fail)),
            FORK.Process(target=asker, args=(tmp_path, "b", fail)))
    got = json.loads((tmp_path / "b").read_text())
    got["message"] = re.sub(r"à \d\d:\d\d:\d\d UTC", "à HH:MM:SS UTC", got["message"])
    assert got == {"error": kind, "message": message}
    assert len(calls(tmp_path)) == 1, "a second boot was tried after the first one was refused"
    # what it recorded before the refusal is deleted by the last user
    assert [len(d["names"]) for d in cleaned(tmp_path)] == [1]


def interrupted_starter(folder):
    # a process that starts with SIGINT ignored (a background job of a non-interactive shell: how CI ran
    # on 2026-12-07) keeps it ignored, and so does this fork: Ctrl-C's KeyboardInterrupt is what this test
    # is about, so install Python's own handler here
    signal.signal(signal.SIGINT, signal.default_int_handler)
    no_wait()
    found = booting(folder, pause=30)
    try:
        found.start_pair()
    except KeyboardInterrupt:
        (folder / "interrupted").write_text("yes")
    finally:
        found.close()


def test_the_early_start_records_before_creating_and_an_interruption_leaves_nothing(tmp_path):
    proc = FORK.Process(target=interrupted_starter, args=(tmp_path,))
    proc.start()
    deadline, recorded = time.monotonic() + 10, ""
    while not recorded and time.monotonic() < deadline:     # (write_text: the file exists empty at first)
        time.sleep(0.02)
        recorded = (tmp_path / "recorded").read_text() if (tmp_path / "recorded").exists() else ""
    os.kill(proc.pid, signal.SIGINT)    # Ctrl-C while Nova is asked for the first server
    proc.join(20)
    assert proc.exitcode == 0 and (tmp_path / "interrupted").exists()
    assert [d["names"] for d in cleaned(tmp_path)] == [[recorded]], "the server asked for was not deleted"


def test_a_worker_that_finds_the_making_busy_does_not_wait_for_it(tmp_path):
    import fcntl
    found = booting(tmp_path)
    busy = os.open(tmp_path / "making.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(busy, fcntl.LOCK_EX)        # another worker makes the pair, or waits for it under the lock
    try:
        t0 = time.monotonic()
        found.start_pair()
        assert time.monotonic() - t0 < 1 and calls(tmp_path) == []
    finally:
        os.close(busy)
    assert found.close() == ([], 0)


COLLECT = '''
import os, sys, pytest
from popek import paths
from popek.steps.cloud_common import selection_uses_pair
class Tell:
    def pytest_collection_finish(self, session):
        print("USES_PAIR", len(session.items), selection_uses_pair(session))
argv = [str(paths.STEPS_DIR / m) for m in sys.argv[1].split(",")]
argv += ["-c", os.devnull, "--rootdir", os.path.commonpath([paths.STEPS_DIR, paths.FEATURES_DIR]),
         "-p", "no:cacheprovider", "-p", "no:allure_pytest", "--collect-only", "-q"] + sys.argv[2:]
pytest.main(argv, plugins=[Tell()])
'''


@pytest.mark.parametrize("modules, extra, expected", [
    ("test_host.py", [], False),                        # popek run host: nothing to boot
    ("test_cloud.py", ["--claim", "C16"], False),       # a cloud selection without pair scenario
    ("test_cloud.py", ["--claim", "C17"], True),        # lists the run's server (shared.listed)
    ("test_host.py,test_cloud.py", [], True),           # the main job
])
def test_only_a_selection_with_a_pair_scenario_starts_the_pair(modules, extra, expected):
    out = subprocess.run([sys.executable, "-c", COLLECT, modules, *extra], capture_output=True, text=True,
                         timeout=120)
    line = [x for x in out.stdout.splitlines() if x.startswith("USES_PAIR")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    _, items, uses = line[0].split()
    assert int(items) > 0 and uses == str(expected)


def test_a_pytest_bdd_without_the_registries_boots_on_first_use(monkeypatch):
    """pytest-bdd < 9 (or other internals): no early boot, never an error of the scenarios."""
    import types

    from popek.steps.cloud_common import selection_uses_pair
    monkeypatch.setitem(sys.modules, "pytest_bdd.steps", types.ModuleType("pytest_bdd.steps"))
    assert selection_uses_pair(object()) is False


def test_other_pytest_bdd_internals_boot_on_first_use():
    from types import SimpleNamespace

    from popek.steps.cloud_common import selection_uses_pair
    assert selection_uses_pair(SimpleNamespace(_fixturemanager=None)) is False    # no .items: other internals
