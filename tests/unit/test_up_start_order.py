"""The warm `up`'s start order (issue #17): stage 1's services that do not use the bus start while RabbitMQ
still boots, neutron-rpc-server only once it answers and its agents only once it consumes its queues; the
volume and object services start at the lowest CPU priority, get back the one popek started with once the
smoke instance is done (or when `up` fails) and are awaited after it; every service answers at the end. nova-compute
starts with stage 2 once nova-conductor's and nova-scheduler's queues are declared (lifecycle.EARLY_QUEUES),
except on a mode switch, where it starts last as before."""
import os
import subprocess

import pytest

from popek.checks.localcloud import lifecycle
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

TABLE = [Service("mariadb", [], stage=0), Service("rabbitmq", [], stage=0),
         Service("keystone", [], stage=1), Service("placement-api", [], stage=1),
         Service("neutron-rpc-server", [], stage=1),
         Service("nova-conductor", [], stage=2), Service("nova-scheduler", [], stage=2),
         Service("neutron-dhcp-agent", [], stage=2),
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
    monkeypatch.setattr(lifecycle, "wait_consumers", lambda state, queues, timeout=120, declare=None: events.append(
        ("consumers", sorted(queues)) + ((("declare", declare),) if declare else ())))
    monkeypatch.setattr(lifecycle, "_before_compute", lambda *a, **k: events.append(("before-compute",)))
    monkeypatch.setattr(lifecycle, "wait_compute", lambda *a, **k: events.append(("compute-up",)))
    monkeypatch.setattr(lifecycle, "_set_nice", lambda pid, nice, autogroup=None: events.append(
        ("nice", {v: k for k, v in pids.items()}[pid], nice) + (() if autogroup is None else (autogroup,))))

    def go(last_mode=None):
        if last_mode:
            st.marker("compute-mode").parent.mkdir(parents=True, exist_ok=True)
            st.marker("compute-mode").write_text(last_mode + "\n")
        lifecycle._start_all(st, None, {"dataplane": True}, lifecycle.Progress(lambda line: None), lambda line: None,
                             meanwhile=lambda: events.append(("resources",)),
                             smoke=lambda: events.append(("smoke",)))
        return events
    go.events = events
    return go


#: popek's own priority, which the services it starts inherit and get back
STARTED = os.getpriority(os.PRIO_PROCESS, 0)


def index(events, event):
    return events.index(event)


def test_services_without_the_bus_start_while_it_boots(run):
    ev = run()
    assert index(ev, ("healthy", ["mariadb"])) < index(ev, ("start", "keystone"))  # rabbitmq not awaited
    for name in ("keystone", "placement-api"):
        assert index(ev, ("start", name)) < index(ev, ("healthy", ["rabbitmq"])) < index(ev, ("start", "neutron-rpc-server"))


def test_the_agents_start_once_the_rpc_server_consumes(run):
    ev = run()
    queues = ("consumers", sorted(lifecycle.NEUTRON_RPC_QUEUES), ("declare", lifecycle.EARLY_QUEUES))
    assert index(ev, ("start", "neutron-rpc-server")) < index(ev, queues) < index(ev, ("start", "neutron-dhcp-agent"))


def test_volumes_and_objects_start_low_and_are_awaited_after_the_smoke(run):
    ev = run()
    for name in ("cinder-volume", "swift-proxy"):
        assert index(ev, ("start", name)) + 1 == index(ev, ("nice", name, lifecycle.BACKGROUND_NICE))
        # still low while the smoke instance boots: their normal priority back once it is done
        assert index(ev, ("compute-up",)) < index(ev, ("smoke",)) < index(ev, ("nice", name, STARTED, 0))
    awaited_early = [e for e in ev[:index(ev, ("smoke",))] if e[0] == "healthy"]
    assert not any("cinder-volume" in e[1] or "swift-proxy" in e[1] for e in awaited_early)
    after_smoke = ev[index(ev, ("smoke",)) + 1:]
    assert [e for e in after_smoke if e[0] != "nice"][0] == ("healthy", ["cinder-volume", "swift-proxy"])
    assert index(ev, ("nice", "swift-proxy", STARTED, 0)) < index(ev, ("healthy", ["cinder-volume", "swift-proxy"]))
    assert ev[-1] == ("healthy", sorted(s.name for s in TABLE))  # every service answers at the end


def test_priorities_come_back_when_up_fails(run, monkeypatch):
    def compute_not_up(*a, **k):
        raise lifecycle.CloudError("nova-compute n'est pas « up »")
    monkeypatch.setattr(lifecycle, "wait_compute", compute_not_up)
    with pytest.raises(lifecycle.CloudError):
        run()
    for name in ("cinder-volume", "swift-proxy"):
        lowered = index(run.events, ("nice", name, lifecycle.BACKGROUND_NICE))
        assert index(run.events, ("nice", name, STARTED, 0)) > lowered


def test_cap_sys_nice_is_what_raising_a_priority_needs():
    status = "Name:\tpopek\nCapPrm:\t000001ffffffffff\nCapEff:\t{}\nCapBnd:\t000001ffffffffff\n"
    assert lifecycle._may_raise_priority(status.format("000001ffffffffff"))      # root with every capability
    assert lifecycle._may_raise_priority(status.format("0000000000800000"))      # CAP_SYS_NICE alone
    assert not lifecycle._may_raise_priority(status.format("00000000a87fffff"))  # root in a container without it
    assert not lifecycle._may_raise_priority(status.format("0000000000000000"))  # a user
    assert not lifecycle._may_raise_priority("Name:\tpopek\n")


def test_set_nice_on_a_gone_process_does_nothing(monkeypatch):
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    calls = []
    monkeypatch.setattr(lifecycle.os, "setpriority", lambda *a: calls.append(a))
    lifecycle._set_nice(proc.pid, lifecycle.BACKGROUND_NICE)  # quietly: no exception either
    lifecycle._set_nice(None, lifecycle.BACKGROUND_NICE)
    assert calls == []


@pytest.mark.skipif(not lifecycle._may_raise_priority(), reason="only CAP_SYS_NICE gives a priority back")
def test_set_nice_lowers_then_restores_the_session_priority():
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        lifecycle._set_nice(proc.pid, 19)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == 19
        autogroup = f"/proc/{proc.pid}/autogroup"
        if os.path.exists(autogroup):
            assert open(autogroup).read().strip().endswith("nice 19")
        lifecycle._set_nice(proc.pid, STARTED, autogroup=0)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == STARTED
        if os.path.exists(autogroup):
            assert open(autogroup).read().strip().endswith("nice 0")
    finally:
        proc.kill()
        proc.wait()


def test_compute_starts_with_stage_2_once_its_conductors_queue_is_declared(run):
    ev = run()
    declared = ("consumers", sorted(lifecycle.NEUTRON_RPC_QUEUES), ("declare", lifecycle.EARLY_QUEUES))
    assert lifecycle.EARLY_QUEUES == {"nova": ["conductor", "scheduler"]}
    assert index(ev, ("healthy", ["rabbitmq"])) < index(ev, declared) < index(ev, ("start", "nova-conductor"))
    # with the others of stage 2 (nothing of theirs awaited first), before they are awaited
    stage_2 = [e for e in ev[index(ev, ("start", "nova-conductor")):index(ev, ("start", "nova-compute"))]]
    assert stage_2 and all(e[0] in ("start", "nice") for e in stage_2), stage_2
    assert index(ev, ("start", "nova-compute")) < index(ev, ("healthy", ["neutron-dhcp-agent", "nova-conductor",
                                                                          "nova-scheduler"]))
    assert ("before-compute",) not in ev and ev.count(("start", "nova-compute")) == 1
    assert index(ev, ("start", "nova-compute")) < index(ev, ("compute-up",)) < index(ev, ("smoke",))


def test_after_a_mode_switch_compute_starts_last_as_before(run):
    ev = run(last_mode="fake")  # the last compute was the API-only mode's: forgotten before it starts
    assert ("consumers", sorted(lifecycle.NEUTRON_RPC_QUEUES)) in ev  # no queue declared ahead
    assert not any(e[0] == "consumers" and len(e) > 2 for e in ev)
    assert index(ev, ("before-compute",)) < index(ev, ("start", "nova-compute")) < index(ev, ("compute-up",))
    every_api = ("healthy", ["cinder-volume", "neutron-dhcp-agent", "nova-conductor", "nova-scheduler", "swift-proxy"])
    assert index(ev, every_api) < index(ev, ("start", "nova-compute"))
