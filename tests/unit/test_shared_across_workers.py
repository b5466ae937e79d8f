"""RunShared: one set of shared resources for all the pytest-xdist workers of a run, checked with real
processes (forked here, each with its own RunShared on one folder, as xdist's workers have), no cloud."""
import json
import multiprocessing
import os
import signal
import time

import pytest

from popek.checks.cloud.ledger import Ledger
from popek.checks.cloud.shared import RunShared

PREFIX = "popek-0123abcd-run"
FORK = multiprocessing.get_context("fork")


class Probe(RunShared):
    """A RunShared whose final deletion is written down (`cleaned`) instead of asked of a cloud."""

    def _clean(self, entries):
        with open(self.directory / "cleaned", "a") as out:
            out.write(json.dumps({"pid": os.getpid(), "names": [e.name for e in entries]}) + "\n")
        return [], len(entries)


def probe(folder) -> Probe:
    return Probe(None, folder, PREFIX, ("private", "public"))


def make_counted(folder, value="pair", fail=None, pause=0.5):
    """A make() that records its call (pid) in `calls`, records a resource in the shared ledger (by name,
    as a real make does before creating), waits `pause` s (a boot), then returns `value` or raises `fail`."""
    def make(shared):
        with open(folder / "calls", "a") as out:
            out.write(f"{os.getpid()}\n")
        shared.ledger.record("server", shared.ledger.name("shared"))
        time.sleep(pause)
        if fail is not None:
            raise fail
        return value
    return make


def calls(folder) -> list[str]:
    return (folder / "calls").read_text().split() if (folder / "calls").exists() else []


def cleaned(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "cleaned").read_text().splitlines()] \
        if (folder / "cleaned").exists() else []


def worker(folder, make, out, linger=0.0, close=True):
    """One worker: asks for the resource, writes what it got (or the error), stays `linger` s, closes."""
    shared = probe(folder)
    try:
        got = {"value": shared.get("thing", lambda: make(shared))}
    except Exception as exc:
        got = {"error": type(exc).__name__, "message": str(exc)}
    (folder / out).write_text(json.dumps(got))
    time.sleep(linger)
    if close:
        problems, deleted = shared.close()
        (folder / f"{out}.closed").write_text(json.dumps([problems, deleted]))


def run_all(*procs, timeout=30):
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"worker exit code {p.exitcode}"


def test_two_workers_asking_at_once_make_it_once_and_both_get_it(tmp_path):
    make = make_counted(tmp_path, value=["server-a", "server-b"])
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")),
            FORK.Process(target=worker, args=(tmp_path, make, "b")))
    assert len(calls(tmp_path)) == 1
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert got == [{"value": ["server-a", "server-b"]}] * 2


def test_a_failed_making_reaches_every_worker_once_with_the_same_reason(tmp_path):
    make = make_counted(tmp_path, fail=TimeoutError("server ERROR: No valid host"))
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")),
            FORK.Process(target=worker, args=(tmp_path, make, "b")))
    assert len(calls(tmp_path)) == 1, "a second boot was tried after the first one failed"
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert [g["error"] for g in got] == ["RuntimeError"] * 2
    assert got[0]["message"] == got[1]["message"]
    assert "« thing » indisponible : server ERROR: No valid host" in got[0]["message"]


def test_nothing_to_boot_stays_a_lookup_error_in_every_worker(tmp_path):
    make = make_counted(tmp_path, fail=LookupError("aucune image active"))
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")),
            FORK.Process(target=worker, args=(tmp_path, make, "b")))
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert got == [{"error": "LookupError", "message": "aucune image active"}] * 2
    assert len(calls(tmp_path)) == 1


def test_only_the_last_user_deletes_and_it_deletes_what_the_other_recorded(tmp_path):
    make = make_counted(tmp_path, pause=0.1)
    first = FORK.Process(target=worker, args=(tmp_path, make, "a"))             # makes it, ends at once
    last = FORK.Process(target=worker, args=(tmp_path, make, "b"), kwargs={"linger": 1.0})
    run_all(first, last)
    done = cleaned(tmp_path)
    assert len(done) == 1, done
    assert done[0]["pid"] == last.pid, "deleted by a worker while the other still used it"
    assert len(done[0]["names"]) == 1 and done[0]["names"][0].startswith(PREFIX + "-shared-")
    assert json.loads((tmp_path / "a.closed").read_text()) == [[], 0]
    assert json.loads((tmp_path / "b.closed").read_text()) == [[], 1]


def test_a_worker_killed_hard_does_not_keep_the_survivor_from_deleting(tmp_path):
    make = make_counted(tmp_path, pause=0.1)
    doomed = FORK.Process(target=worker, args=(tmp_path, make, "a"), kwargs={"linger": 60, "close": False})
    doomed.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "a").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    survivor = FORK.Process(target=worker, args=(tmp_path, make, "b"), kwargs={"linger": 1.0})
    survivor.start()
    while not (tmp_path / "b").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(doomed.pid, signal.SIGKILL)     # no close(): the kernel drops its locks
    doomed.join(10)
    survivor.join(30)
    assert survivor.exitcode == 0
    done = cleaned(tmp_path)
    assert [d["pid"] for d in done] == [survivor.pid]
    assert len(calls(tmp_path)) == 1


def test_a_worker_that_asks_after_the_deletion_makes_it_afresh(tmp_path):
    make = make_counted(tmp_path, pause=0.05)
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")))
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "b")))
    assert len(calls(tmp_path)) == 2        # the first set was deleted: the late worker does not get dead ids
    assert len(cleaned(tmp_path)) == 2


def test_a_worker_that_never_asked_deletes_nothing(tmp_path):
    shared = probe(tmp_path)
    assert shared.close() == ([], 0)
    assert cleaned(tmp_path) == []


def holder(folder, out, rounds=3, pause=0.2):
    """One worker's scenarios that change the pair: hold it, write the interval, release via the ledger."""
    shared = probe(folder)
    spans = []
    for _ in range(rounds):
        book = Ledger(None, "popek-0123abcd-gw0")
        shared.hold(book)
        shared.hold(book)                   # a second step of the same scenario: no second lock, no deadlock
        start = time.monotonic()
        time.sleep(pause)
        spans.append((start, time.monotonic()))
        book.cleanup()                      # the scenario's changes undone: the pair is free
    (folder / out).write_text(json.dumps(spans))


def test_scenarios_holding_the_pair_never_overlap_across_workers(tmp_path):
    run_all(FORK.Process(target=holder, args=(tmp_path, "a")), FORK.Process(target=holder, args=(tmp_path, "b")))
    spans = sorted(json.loads((tmp_path / "a").read_text()) + json.loads((tmp_path / "b").read_text()))
    assert len(spans) == 6
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two holds overlap: one ended at {end}, the next began at {start}"


def test_the_hold_is_given_back_also_when_the_undoing_fails(tmp_path):
    shared = probe(tmp_path)
    book = Ledger(None, "popek-0123abcd-gw0")
    shared.hold(book)
    book.record("port_security_groups", "port", id="p1", groups=["g"])   # conn None: its undoing fails
    problems = book.cleanup()
    assert problems
    other = probe(tmp_path)
    t0 = time.monotonic()
    other.hold(Ledger(None, "popek-0123abcd-gw1"))     # would block forever if the hold were kept
    assert time.monotonic() - t0 < 1


def test_one_process_keeps_today_s_semantics():
    from popek.checks.cloud.shared import Shared

    shared = Shared(conn=None, ledger=None)
    book = Ledger(None, "popek-0123abcd-main")
    shared.hold(book)
    assert book.finally_calls == [] and shared.close() == ([], 0)


@pytest.mark.parametrize("key", ["routed", "access", "pair"])
def test_every_shared_kind_is_kept_as_ids_and_rebuilt_from_them(key):
    """What the state file keeps of routed(), access(), pair(): plain ids, rebuilt by id in another worker."""
    class Obj:
        def __init__(self, id, name=None):
            self.id, self.name = id, name or id

    class Conn:
        class network:
            get_network = staticmethod(lambda i: Obj(i))
            get_router = staticmethod(lambda i: Obj(i))
            get_security_group = staticmethod(lambda i: Obj(i))

        class compute:
            get_keypair = staticmethod(lambda n: Obj(n))
            get_server = staticmethod(lambda i: Obj(i))

    from popek.checks.cloud.shared import Access, Routed
    value = {"routed": Routed(external=Obj("ext"), network=Obj("net"), router=Obj("rtr")),
             "access": Access(private="private", public="public", keypair=Obj("k", "kname"), group=Obj("grp")),
             "pair": [Obj("s1"), Obj("s2")]}[key]
    shared = RunShared(Conn(), "/nonexistent", PREFIX, ("private", "public"))
    record = json.loads(json.dumps(shared._dump(key, value, None)))
    assert "private" not in json.dumps(record), "the private key reached the state file"
    rebuilt, error = shared._load(key, record)
    assert error is None
    if key == "routed":
        assert (rebuilt.external.id, rebuilt.network.id, rebuilt.router.id) == ("ext", "net", "rtr")
    elif key == "access":
        assert (rebuilt.keypair.name, rebuilt.group.id, rebuilt.private) == ("kname", "grp", "private")
    else:
        assert [s.id for s in rebuilt] == ["s1", "s2"]


WORKER_SIDE = '''
import hashlib, json, os
import pytest

@pytest.mark.parametrize("i", range(4))
def test_seen(request, i):
    given = request.config.workerinput["popek_shared"]
    private, public = given["key"]
    with open(os.path.join(os.path.dirname(__file__), "seen"), "a") as out:
        out.write(json.dumps({"worker": request.config.workerinput["workerid"], "dir": given["dir"],
                              "isdir": os.path.isdir(given["dir"]), "files": os.listdir(given["dir"]),
                              "public": public, "private": hashlib.sha256(private.encode()).hexdigest()}) + "\\n")
'''


def test_the_controller_hands_every_worker_one_folder_and_one_key_and_removes_the_folder(pytester):
    pytester.makepyfile(test_workers=WORKER_SIDE)
    out = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2")
    out.assert_outcomes(passed=4)
    seen = [json.loads(line) for line in (pytester.path / "seen").read_text().splitlines()]
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    assert len({(s["dir"], s["public"], s["private"]) for s in seen}) == 1, "workers got different folders or keys"
    assert all(s["isdir"] and s["files"] == [] for s in seen), "the key (or anything) was written to the folder"
    assert seen[0]["public"].startswith("ssh-ed25519 ")
    assert not os.path.exists(seen[0]["dir"]), "the controller left the folder behind"
