"""The warm `up`'s start order (issue #17): stage 1's services that do not use the bus start while RabbitMQ
still boots, neutron-rpc-server only once it answers and its agents only once it consumes its queues; the
volume and object services start at the lowest CPU priority, get it back before the smoke instance and are
awaited after it; every service answers at the end."""
import os
import subprocess

import pytest

from popek.checks.localcloud import lifecycle
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

TABLE = [Service("mariadb", [], stage=0), Service("rabbitmq", [], stage=0),
         Service("keystone", [], stage=1), Service("placement-api", [], stage=1),
         Service("neutron-rpc-server", [], stage=1), Service("privsep-fork-neutron", [], stage=1),
         Service("nova-conductor", [], stage=2), Service("nova-scheduler", [], stage=2),
         Service("privsep-fork-nova", [], stage=2), Service("neutron-dhcp-agent", [], stage=2),
         Service("cinder-volume", [], stage=2), Service("swift-proxy", [], stage=2),
         Service("nova-compute", [], stage=3)]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """_start_all over TABLE with every side effect replaced by a record in `events`."""
    events = []
    pids = {}
    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    monkeypatch.setattr(lifecycle.config, "generate", lambda state: {"nova/nova.conf": {"DEFAULT": {}}})
    monkeypatch.setattr(lifecycle.config, "write", lambda state, cfg: None)
    monkeypatch.setattr(lifecycle.config, "copy_shipped", lambda state: None)
    monkeypatch.setattr(lifecycle.bootstrap, "once", lambda state, name, fn, *a: None)
    monkeypatch.setattr(lifecycle.bootstrap, "init_rabbitmq", lambda state: None)
    monkeypatch.setattr(lifecycle.bootstrap, "write_client_config", lambda state: None)
    monkeypatch.setattr(lifecycle, "table", lambda state, mod: TABLE)
    monkeypatch.setattr(lifecycle, "_check_port_free", lambda s: None)
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: pids.get(name))

    def start(state, s):
        pids[s.name] = 1000 + len(pids)
        events.append(("start", s.name))
        return pids[s.name]

    monkeypatch.setattr(lifecycle.services, "start", start)
    monkeypatch.setattr(lifecycle.services, "wait_healthy",
                        lambda state, group, timeout=120: events.append(("healthy", sorted(s.name for s in group))))
    monkeypatch.setattr(lifecycle, "wait_consumers",
                        lambda state, queues, timeout=120: events.append(("consumers", sorted(queues))))
    monkeypatch.setattr(lifecycle, "_before_compute", lambda *a, **k: events.append(("before-compute",)))
    monkeypatch.setattr(lifecycle, "wait_compute", lambda *a: events.append(("compute-up",)))
    monkeypatch.setattr(lifecycle, "_set_nice", lambda pid, nice: events.append(
        ("nice", {v: k for k, v in pids.items()}[pid], nice)))

    def go():
        lifecycle._start_all(st, None, {"dataplane": True}, lifecycle.Progress(lambda line: None), lambda line: None,
                             meanwhile=lambda: events.append(("resources",)),
                             smoke=lambda: events.append(("smoke",)))
        return events
    return go


def index(events, event):
    return events.index(event)


def test_services_without_the_bus_start_while_it_boots(run):
    ev = run()
    assert index(ev, ("healthy", ["mariadb"])) < index(ev, ("start", "keystone"))  # rabbitmq not awaited
    for name in ("keystone", "placement-api", "privsep-fork-neutron"):
        assert index(ev, ("start", name)) < index(ev, ("healthy", ["rabbitmq"])) < index(ev, ("start", "neutron-rpc-server"))


def test_the_agents_start_once_the_rpc_server_consumes(run):
    ev = run()
    queues = ("consumers", sorted(lifecycle.NEUTRON_RPC_QUEUES))
    assert index(ev, ("start", "neutron-rpc-server")) < index(ev, queues) < index(ev, ("start", "neutron-dhcp-agent"))


def test_volumes_and_objects_start_low_and_are_awaited_after_the_smoke(run):
    ev = run()
    for name in ("cinder-volume", "swift-proxy"):
        assert index(ev, ("start", name)) + 1 == index(ev, ("nice", name, lifecycle.BACKGROUND_NICE))
        assert index(ev, ("compute-up",)) < index(ev, ("nice", name, 0)) < index(ev, ("smoke",))
    awaited_early = [e for e in ev[:index(ev, ("smoke",))] if e[0] == "healthy"]
    assert not any("cinder-volume" in e[1] or "swift-proxy" in e[1] for e in awaited_early)
    assert ev[index(ev, ("smoke",)) + 1] == ("healthy", ["cinder-volume", "swift-proxy"])
    assert ev[-1] == ("healthy", sorted(s.name for s in TABLE))  # every service answers at the end


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gives a priority back")
def test_set_nice_lowers_then_restores_the_session_priority():
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        lifecycle._set_nice(proc.pid, 19)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == 19
        autogroup = f"/proc/{proc.pid}/autogroup"
        if os.path.exists(autogroup):
            assert open(autogroup).read().strip().endswith("nice 19")
        lifecycle._set_nice(proc.pid, 0)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == 0
        if os.path.exists(autogroup):
            assert open(autogroup).read().strip().endswith("nice 0")
    finally:
        proc.kill()
        proc.wait()
