"""RunShared: one set of shared resources for all the pytest-xdist workers of a run, checked with real
processes (forked here, each with its own RunShared on one folder, as xdist's workers have), no cloud."""
import json
import multiprocessing
import os
import signal
import time
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud.compute import NothingToBoot
from popek.checks.cloud.ledger import Ledger
from popek.checks.cloud.shared import RereadFailed, RunShared

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


def worker(folder, make, out, linger=0.0, close=True, barrier=None, after=None):
    """One worker: asks for the resource, writes what it got (or the error), stays `linger` s, closes.
    barrier: waited on before asking (workers that must ask at once); after: another worker's output file
    waited for before closing (that worker has asked, and holds the run's resources too)."""
    shared = probe(folder)
    if barrier is not None:
        barrier.wait(20)
    try:
        got = {"value": shared.get("thing", lambda: make(shared))}
    except Exception as exc:
        got = {"error": type(exc).__name__, "message": str(exc)}
    (folder / out).write_text(json.dumps(got))
    time.sleep(linger)
    deadline = time.monotonic() + 30
    while after is not None and not (folder / after).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
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
    both = FORK.Barrier(2)      # a worker forked late under load must still ask while the other makes
    run_all(*(FORK.Process(target=worker, args=(tmp_path, make, n), kwargs={"linger": 1.0, "barrier": both})
              for n in "ab"))
    assert len(calls(tmp_path)) == 1
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert got == [{"value": ["server-a", "server-b"]}] * 2


def test_a_failed_making_reaches_every_worker_once_with_the_same_reason(tmp_path):
    make = make_counted(tmp_path, fail=TimeoutError("server ERROR: No valid host"))
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")),
            FORK.Process(target=worker, args=(tmp_path, make, "b")))
    assert len(calls(tmp_path)) == 1, "a second boot was tried after the first one failed"
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert [g["error"] for g in got] == ["Unavailable"] * 2    # an AssertionError: the scenarios' ÉCHEC
    assert got[0]["message"] == got[1]["message"]              # the same cause, measured once, and its time
    assert "« thing » : server ERROR: No valid host (cause mesurée une fois pour tout le run, à " in got[0]["message"]


def test_nothing_to_boot_stays_nothing_to_boot_in_every_worker(tmp_path):
    make = make_counted(tmp_path, fail=NothingToBoot("aucune image active"))
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")),
            FORK.Process(target=worker, args=(tmp_path, make, "b")))
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert got == [{"error": "NothingToBoot", "message": "aucune image active"}] * 2
    assert len(calls(tmp_path)) == 1


@pytest.mark.parametrize("fail", [IndexError("list index out of range"), KeyError("fixed_ips")])
def test_another_lookup_error_in_the_making_is_a_fault_not_nothing_to_boot(tmp_path, fail):
    """An IndexError or KeyError (a bug, an odd API answer) must not become « rien à démarrer » (IGNORÉ),
    nor an ÉCHEC blamed on the cloud (hR F2): popek's own error (MakingFailed, a RuntimeError: broken) in
    every worker, made once."""
    make = make_counted(tmp_path, fail=fail)
    run_all(FORK.Process(target=worker, args=(tmp_path, make, "a")),
            FORK.Process(target=worker, args=(tmp_path, make, "b")))
    got = [json.loads((tmp_path / n).read_text()) for n in ("a", "b")]
    assert [g["error"] for g in got] == ["MakingFailed"] * 2
    assert all(type(fail).__name__ in g["message"] and "pas une cause du cloud" in g["message"] for g in got)
    assert len(calls(tmp_path)) == 1


def test_only_the_last_user_deletes_and_it_deletes_what_the_other_recorded(tmp_path):
    make = make_counted(tmp_path, pause=0.1)
    # makes it, ends as soon as the other has asked (under load 7, hC 2026-12-07 13:12, the other could start
    # after this one had already closed as the only user: two deletions, the test's premise not met)
    first = FORK.Process(target=worker, args=(tmp_path, make, "a"), kwargs={"after": "b"})
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


# --- a pair left changed by its last holder is not handed on (hR M1) -----------------------------------------
def servers_conn():
    """A connection whose Nova gives back any server by id (what a worker that did not make the pair reads)."""
    return NS(compute=NS(get_server=lambda i: NS(id=i)))


def counted_pair(folder, shared):
    def make():
        with open(folder / "calls", "a") as out:
            out.write(f"{os.getpid()}\n")
        n = len(calls(folder))
        return [NS(id=f"s{n}a"), NS(id=f"s{n}b")]
    return [s.id for s in shared.get("pair", make)]


def dying_holder(folder):
    shared = Probe(servers_conn(), folder, PREFIX, ("private", "public"))
    book = Ledger(None, "popek-0123abcd-gw0")
    shared.hold(book)
    ids = counted_pair(folder, shared)
    book.record("port_security_groups", "port", id="p1", groups=["g"])     # a change it will never undo
    (folder / "held").write_text(json.dumps(ids))
    time.sleep(60)


def next_holder(folder, out):
    shared = Probe(servers_conn(), folder, PREFIX, ("private", "public"))
    got = []
    for _ in range(2):                      # its next scenario takes the new pair as it is: no third boot
        book = Ledger(None, "popek-0123abcd-gw1")
        shared.hold(book)
        got.append(counted_pair(folder, shared))
        assert book.cleanup() == []
    (folder / out).write_text(json.dumps(got))
    shared.close()


def test_a_pair_whose_holder_was_killed_is_replaced_once_for_every_worker(tmp_path):
    stale = Probe(servers_conn(), tmp_path, PREFIX, ("private", "public"))     # this process: another worker
    doomed = FORK.Process(target=dying_holder, args=(tmp_path,))
    doomed.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "held").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    old = json.loads((tmp_path / "held").read_text())
    assert counted_pair(tmp_path, stale) == old                       # read (and kept) before the kill
    os.kill(doomed.pid, signal.SIGKILL)     # its ledger never runs: the pair keeps its change
    doomed.join(10)
    run_all(FORK.Process(target=next_holder, args=(tmp_path, "b")))
    new = json.loads((tmp_path / "b").read_text())
    assert len(calls(tmp_path)) == 2, "the pair the killed holder left changed was handed on as made"
    assert new[0] == new[1] and new[0] != old
    book = Ledger(None, "popek-0123abcd-gw2")
    stale.hold(book)                        # the worker that kept the old pair in memory gets the new one
    assert counted_pair(tmp_path, stale) == new[0] and len(calls(tmp_path)) == 2
    book.cleanup()
    stale.close()


def test_a_pair_whose_holder_could_not_undo_its_changes_is_replaced(tmp_path):
    shared = Probe(servers_conn(), tmp_path, PREFIX, ("private", "public"))
    book = Ledger(None, "popek-0123abcd-gw0")
    shared.hold(book)
    old = counted_pair(tmp_path, shared)
    book.record("port_security_groups", "port", id="p1", groups=["g"])   # conn None: its undoing fails
    assert book.cleanup()
    run_all(FORK.Process(target=next_holder, args=(tmp_path, "b")))
    new = json.loads((tmp_path / "b").read_text())
    assert new[0] != old and len(calls(tmp_path)) == 2
    shared.close()


# --- a reader's failure is not the resource's (hR M2) ------------------------------------------------------
def test_a_reread_that_fails_once_is_not_kept_for_the_rest_of_the_session(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"made": {"pair": {"value": ["s1", "s2"]},
                                                             "routed": {"value": None}}, "entries": []}))
    asked = []

    def get_server(i):
        asked.append(i)
        if len(asked) == 1:
            raise ConnectionError("503 Service Unavailable")
        return NS(id=i)
    shared = Probe(NS(compute=NS(get_server=get_server)), tmp_path, PREFIX, ("private", "public"))
    with pytest.raises(RereadFailed, match="relecture par id impossible : 503"):
        shared.pair()
    assert [s.id for s in shared.pair()] == ["s1", "s2"]
    assert asked == ["s1", "s1", "s2"]
    shared.close()


def test_a_reread_failing_inside_another_making_is_not_recorded_as_that_one_s_error(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"made": {"routed": {"value": {
        "external": "e", "network": "n", "router": "r"}}}, "entries": []}))
    tries = []

    def get_network(i):
        tries.append(i)
        if len(tries) == 1:
            raise ConnectionError("connection reset")
        return NS(id=i)
    conn = NS(network=NS(get_network=get_network, get_router=lambda i: NS(id=i)))
    shared = Probe(conn, tmp_path, PREFIX, ("private", "public"))
    with pytest.raises(RereadFailed):
        shared.get("thing", lambda: shared.routed().network.id)
    assert "thing" not in json.loads((tmp_path / "state.json").read_text())["made"]
    assert shared.get("thing", lambda: shared.routed().network.id) == "n"
    shared.close()


# --- an interrupted wait for the making lock leaves no fd (hR L1) ---------------------------------------------
def lock_making(folder):
    import fcntl
    fd = os.open(folder / "making.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (folder / "locked").write_text("yes")
    time.sleep(30)


def test_an_interrupt_while_waiting_for_the_making_lock_closes_its_fd(tmp_path):
    other = FORK.Process(target=lock_making, args=(tmp_path,))
    other.start()
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "locked").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shared = probe(tmp_path)
        before = set(os.listdir("/proc/self/fd"))

        def interrupt(*_):
            raise KeyboardInterrupt
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(KeyboardInterrupt):
                with shared._making():
                    pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert shared._making_fd is None and shared._making_depth == 0
        assert set(os.listdir("/proc/self/fd")) == before, "the making lock's fd was left open"
    finally:
        other.kill()
        other.join(10)


def test_the_folders_of_dead_controllers_are_removed_and_a_living_one_s_kept(tmp_path):
    """A controller SIGKILLed leaves its popek-shared-<pid>-… folder: the next controller removes it."""
    from popek.plugin import remove_dead_shared_folders

    ended = FORK.Process(target=time.sleep, args=(0,))
    ended.start()
    ended.join(10)
    dead = tmp_path / f"popek-shared-{ended.pid}-abcd"
    alive = tmp_path / f"popek-shared-{os.getpid()}-efgh"
    other = tmp_path / "popek-shared-notapid-ijkl"
    for folder in (dead, alive, other):
        folder.mkdir()
        (folder / "users.lock").write_text("")
    remove_dead_shared_folders(tmp_path)
    assert not dead.exists() and alive.exists() and other.exists()
