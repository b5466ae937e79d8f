"""The fence's watcher (checks/localcloud/fence_watch.py): its decision on fake `nft -j monitor tables` events
and fake readings of the table (nothing of this host's ruleset is read or changed here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from popek.checks.localcloud import dataplane, fence, fence_watch
from popek.checks.localcloud.state import CloudState


def event(kind: str, family: str, name: str, handle: int = 7) -> str:
    """One line as `nft -j monitor tables` prints it (nftables 1.0.6, measured in a network namespace)."""
    return json.dumps({kind: {"table": {"family": family, "name": name, "handle": handle}}})


class World:
    """A fake nft: the table is there or not; apply puts it back; every call counted."""

    def __init__(self, present: bool = True, refuse: str = ""):
        self.present, self.refuse = present, refuse
        self.readings = self.applies = 0
        self.logged: list[str] = []

    def reading(self) -> str:
        self.readings += 1
        return fence.PRESENT if self.present else fence.ABSENT

    def apply(self) -> str:
        self.applies += 1
        if self.refuse:
            raise fence.FenceError(self.refuse)
        self.present = True
        return "clôture des instances : table nftables inet popek en place"

    def watcher(self, **kw) -> fence_watch.Watcher:
        return fence_watch.Watcher(self.reading, self.apply, self.logged.append, **kw)


def test_monitor_lines_are_read_as_table_deletions():
    assert fence_watch.deleted_table(event("delete", "inet", "popek")) == ("inet", "popek")
    assert fence_watch.deleted_table(event("add", "inet", "popek")) is None
    assert fence_watch.deleted_table(json.dumps({"delete": {"chain": {"family": "inet", "table": "popek"}}})) is None
    assert fence_watch.deleted_table("not json") is None
    assert fence_watch.deleted_table("[1, 2]") is None
    assert fence_watch.deleted_table("") is None


def test_own_apply_is_seen_as_a_delete_but_the_table_is_there_no_reapply():
    # fence.apply deletes and re-creates the table in one transaction: add, delete, add are announced
    world = World(present=True)
    w = world.watcher()
    for line in (event("add", "inet", "popek"), event("delete", "inet", "popek"), event("add", "inet", "popek", 8)):
        assert w.event(line) is False
    assert world.readings == 1 and world.applies == 0 and world.logged == []


def test_a_real_deletion_is_put_back_once_and_its_own_events_do_not_loop():
    world = World(present=False)
    w = world.watcher()
    assert w.event(event("delete", "inet", "popek")) is True
    assert world.applies == 1 and world.present
    assert len(world.logged) == 1 and "remise par popek" in world.logged[0] and "nft monitor" in world.logged[0]
    # the re-application announces add, delete, add: nft says the table is there, nothing more is done
    for line in (event("add", "inet", "popek", 9), event("delete", "inet", "popek", 9), event("add", "inet", "popek", 10)):
        assert w.event(line) is False
    assert world.applies == 1 and len(world.logged) == 1


def test_other_tables_are_ignored_without_even_reading_popeks():
    world = World(present=False)
    w = world.watcher()
    for line in (event("delete", "inet", "filter"), event("delete", "ip", "popek"), event("delete", "ip", "nat"),
                 event("add", "inet", "filter"), event("delete", "inet", "popek_fault_metadata")):
        assert w.event(line) is False
    assert world.readings == 0 and world.applies == 0 and world.logged == []


def test_someone_deleting_it_in_a_loop_is_bounded_and_said_once():
    world = World(present=False)
    now = [0.0]
    w = world.watcher(clock=lambda: now[0], limit=3, window=60.0)
    for _ in range(3):
        world.present = False
        assert w.event(event("delete", "inet", "popek")) is True
        now[0] += 1.0
    for _ in range(5):
        world.present = False
        assert w.event(event("delete", "inet", "popek")) is False
        now[0] += 1.0
    assert world.applies == 3
    held = [line for line in world.logged if "en boucle" in line]
    assert len(held) == 1 and "3 fois" in held[0]
    now[0] += 60.0  # the window passed: the periodic check puts it back
    assert w.check("absence constatée au contrôle périodique") is True and world.applies == 4


def test_nft_refusing_the_table_is_said_and_not_retried_in_a_loop():
    world = World(present=False, refuse="clôture des instances refusée par nft : Error: Could not process rule")
    w = world.watcher()
    assert w.event(event("delete", "inet", "popek")) is False
    assert world.applies == 1 and "pas remise" in world.logged[0] and "refusée par nft" in world.logged[0]


def test_an_unreadable_table_is_no_absence_said_once():
    said = []
    w = fence_watch.Watcher(lambda: fence.UNREADABLE, lambda: pytest.fail("applied"), said.append)
    assert w.check("x") is False and w.check("y") is False
    assert len(said) == 1 and "illisible" in said[0]


def test_lines_are_cut_whole_and_silence_calls_the_periodic_check():
    r, wfd = os.pipe()
    got, idle = [], []

    def feed():
        os.write(wfd, b'{"delete": {"table": {"family": "inet", ')
        threading.Event().wait(0.15)  # silence longer than the period: one idle call at least
        os.write(wfd, b'"name": "popek", "handle": 3}}}\n{"add": {}}\npartial')
        os.close(wfd)

    t = threading.Thread(target=feed)
    t.start()
    fence_watch.lines(r, got.append, lambda: idle.append(1), period=0.05)
    t.join()
    os.close(r)
    assert got == [event("delete", "inet", "popek", 3), '{"add": {}}']
    assert fence_watch.deleted_table(got[0]) == ("inet", "popek")
    assert idle


def test_nft_missing_ends_the_watcher_with_the_reason(monkeypatch, capsys):
    monkeypatch.setattr(fence_watch, "MONITOR", ("/nonexistent/nft", "-j", "monitor", "tables"))
    monkeypatch.setattr(fence_watch.signal, "signal", lambda *a: None)  # pytest's own SIGTERM handling kept
    assert fence_watch.main(["popek-int"]) == 1
    out = capsys.readouterr().out
    assert "garde de la clôture arrêtée" in out and "popek cloud up" in out


def test_a_monitor_that_keeps_ending_is_restarted_then_the_watcher_ends(monkeypatch, capsys):
    monkeypatch.setattr(fence_watch, "MONITOR", ("true",))
    monkeypatch.setattr(fence_watch.signal, "signal", lambda *a: None)
    monkeypatch.setattr(fence_watch.time, "sleep", lambda s: None)
    monkeypatch.setattr(fence, "reading", lambda: fence.PRESENT)
    assert fence_watch.main(["popek-int"]) == 1
    out = capsys.readouterr().out
    assert out.count("relancé") == fence_watch.MONITOR_FAILURES - 1
    assert f"{fence_watch.MONITOR_FAILURES} fois" in out


def test_the_watcher_is_one_more_supervised_service_of_the_dataplane(tmp_path):
    state = CloudState(tmp_path / "cloud")
    table = {s.name: s for s in dataplane.services(state)}
    watch = table[fence_watch.SERVICE]
    assert watch.stage == 0 and watch.health == "" and watch.log == str(state.log(fence_watch.SERVICE))
    assert watch.argv[:4] == [sys.executable, "-I", "-m", "popek.checks.localcloud.fence_watch"]
    # popek's own Open vSwitch: each re-application lists its integration bridge's ports (the guests' taps)
    assert watch.argv[4] == f"--ovs-rundir={dataplane.ovs_dir(state)}"
    assert tuple(watch.argv[5:]) == dataplane.fence_interfaces()
    # its module is importable the way the service runs it (-I: no PYTHONPATH, no current directory)
    done = subprocess.run([sys.executable, "-I", "-c", "import popek.checks.localcloud.fence_watch as m; print(m.SERVICE)"],
                          cwd="/", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == fence_watch.SERVICE, done.stderr


def test_no_interface_given_is_refused(capsys):
    assert fence_watch.main([]) == 2


def test_status_says_when_the_watcher_is_not_running():
    said = dataplane.watch_note(["fence-watch"])
    assert said.startswith("MAIS") and "fence-watch" in said and "popek cloud up" in said
    assert dataplane.watch_note([]) == "" and dataplane.watch_note(["neutron-l3-agent"]) == ""


def test_down_stops_the_watcher_with_stage_0_and_before_the_fence_is_removed(tmp_path, monkeypatch):
    """Else the watcher would put back the fence `down` removes (a table left after down)."""
    from popek.checks.localcloud import lifecycle

    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    st.venv.mkdir(parents=True)
    (st.run_dir / "mode.json").write_text(json.dumps({"dataplane": True}))
    for name in ("nova-api", "mariadb", fence_watch.SERVICE):
        st.pidfile(name).write_text("{}")
    done = []
    monkeypatch.setattr(lifecycle.services, "stop", lambda state, names: done.append(sorted(names)))
    monkeypatch.setattr(lifecycle.services, "sweep", lambda state: [])
    monkeypatch.setattr(lifecycle.dataplane_hooks, "teardown", lambda state: done.append("teardown"))
    monkeypatch.setattr(lifecycle.fence, "remove", lambda: done.append("fence removed"))
    assert lifecycle.stop_all(st, print, settle=False) == []
    assert done == [["nova-api"], [fence_watch.SERVICE, "mariadb"], "teardown", "fence removed"]


def test_a_port_moved_does_not_restart_the_watcher():
    """It reaches no port of the cloud: a moved keystone or RabbitMQ port restarts the OpenStack processes, not it."""
    from popek.checks.localcloud import ports

    names = ["keystone", "rabbitmq", "nova-api", "neutron-l3-agent", fence_watch.SERVICE]
    for moved in ({"keystone"}, {"rabbitmq"}, {"nova"}, {"epmd"}):
        assert fence_watch.SERVICE not in ports.readers(moved, names), moved
    assert "neutron-l3-agent" in ports.readers({"rabbitmq"}, names)


def test_a_run_on_a_fenced_cloud_whose_watcher_is_dead_says_so(tmp_path, monkeypatch):
    from popek.checks.localcloud import lifecycle

    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    (st.run_dir / "mode.json").write_text(json.dumps({"dataplane": True}))
    for name in ("nova-api", fence_watch.SERVICE):
        st.pidfile(name).write_text("{}")
    monkeypatch.setattr(fence, "reading", lambda: fence.PRESENT)
    monkeypatch.setattr(fence, "apply", lambda *a: pytest.fail("applied"))
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: 4242)
    assert lifecycle.refence(st, root=True) is None          # fenced and watched: nothing to say
    monkeypatch.setattr(lifecycle.services, "read_pid",
                        lambda state, name: None if name == fence_watch.SERVICE else 4242)
    said = lifecycle.refence(st, root=True)
    assert said.startswith("clôture des instances en place, MAIS") and "fence-watch" in said and "popek cloud up" in said
