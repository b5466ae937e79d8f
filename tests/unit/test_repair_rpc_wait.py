"""A repair that restarts neutron-rpc-server, or the broker (whose restart loses the transient topic queues),
waits for the server's consumers before it starts the Neutron agents, as a start does. Measured live (hY5,
2026-12-07, rabbitmq + neutron-rpc-server + DHCP/L3 agents killed, `popek cloud up`): without the wait, the
agents' first RPC was dropped and timed out, « DHCP agent started » 88.6 s and « L3 agent started » 87.1 s
after « cloud réparé »."""
import pytest

from popek.checks.localcloud import lifecycle
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

TABLE = [Service("rabbitmq", [], stage=0), Service("keystone", [], stage=1),
         Service("neutron-rpc-server", [], stage=1, log="rpc.log"),
         Service("neutron-dhcp-agent", [], stage=2), Service("neutron-l3-agent", [], stage=2),
         Service("nova-compute", [], stage=3)]


@pytest.fixture
def repair(tmp_path, monkeypatch):
    """lifecycle.repair on a fake table: `sick` restarted; every start and consumer wait recorded in order."""
    st = CloudState(tmp_path / "cloud")
    calls, consumers_fail = [], []
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: 42)
    monkeypatch.setattr(lifecycle.services, "kill_now", lambda state, names: [])
    monkeypatch.setattr(lifecycle.services, "start", lambda state, s: calls.append(("start", s.name)) or 43)
    monkeypatch.setattr(lifecycle.services, "wait_healthy", lambda state, group, timeout=None: None)
    monkeypatch.setattr(lifecycle.services, "stop", lambda state, names, grace=None: calls.append(("stop", *names)))
    monkeypatch.setattr(lifecycle.services, "log_tail", lambda path: "")
    monkeypatch.setattr(lifecycle, "_check_port_free", lambda s: None)
    monkeypatch.setattr(lifecycle, "wait_nova", lambda *a, **k: None)

    def wait_consumers(state, queues, timeout=120.0, declare=None):
        calls.append(("consumers", sorted({b for b, _ in queues.values()}), tuple(queues)))
        if consumers_fail:
            raise CloudError("neutron-rpc-server n'écoute pas sa file RabbitMQ « q-plugin » après 60 s")

    monkeypatch.setattr(lifecycle, "wait_consumers", wait_consumers)

    def go(sick, fail=False):
        consumers_fail[:] = [True] if fail else []
        monkeypatch.setattr(lifecycle, "diagnose", lambda state, svc: {n: "arrêté" for n in sick})
        lines = []
        lifecycle.repair(st, None, TABLE, lines.append, "x")
        return calls, lines
    go.calls = calls
    return go


WAIT = ("consumers", ["neutron-rpc-server"], lifecycle.NEUTRON_RPC_QUEUES)


def test_the_agents_start_once_the_restarted_server_consumes(repair):
    calls, lines = repair(["neutron-rpc-server", "neutron-dhcp-agent", "neutron-l3-agent"])
    assert calls == [("start", "neutron-rpc-server"), WAIT,
                     ("start", "neutron-dhcp-agent"), ("start", "neutron-l3-agent")]
    assert any("neutron-rpc-server à l'écoute" in line for line in lines)


def test_a_restarted_broker_waits_for_the_running_server_too(repair):
    calls, _ = repair(["rabbitmq", "neutron-dhcp-agent"])
    # the broker's restart also declares its servers' queues at once (test_repair_broker_queues)
    assert [c for c in calls if c[:2] != ("consumers", [])] == [("start", "rabbitmq"), WAIT, ("start", "neutron-dhcp-agent")]


def test_the_server_alone_is_awaited_before_the_cloud_is_called_repaired(repair):
    calls, lines = repair(["neutron-rpc-server"])
    assert calls == [("start", "neutron-rpc-server"), WAIT]
    assert "à l'écoute" in lines[-2] and "cloud réparé" in lines[-1]


def test_agents_alone_need_no_wait(repair):
    calls, _ = repair(["neutron-dhcp-agent", "nova-compute"])
    assert calls == [("start", "neutron-dhcp-agent"), ("start", "nova-compute")]


def test_a_server_that_never_consumes_is_stopped_and_named_and_its_agents_not_started(repair):
    with pytest.raises(CloudError, match="réparation impossible : neutron-rpc-server ne redémarre pas"):
        repair(["neutron-rpc-server", "neutron-dhcp-agent"], fail=True)
    assert repair.calls == [("start", "neutron-rpc-server"), WAIT, ("stop", "neutron-rpc-server")]
