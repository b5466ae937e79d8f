"""A repair that restarts RabbitMQ declares its running RPC servers' topic queues at once (REPAIR_QUEUES), before
anything else is restarted or awaited: the broker lost its transient queues, and the services still running
reconnect by themselves and publish what they held back, maybe before their server re-declares its queue.
Live (hU, 2026-12-07 13:08, RabbitMQ's beam.smp SIGKILLed, then `popek cloud up`): nova-compute's
update_available_resource and its service report to nova-conductor timed out 60 s after the broker was back."""
import pytest

from popek.checks.localcloud import lifecycle
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

TABLE = [Service("rabbitmq", [], stage=0), Service("mariadb", [], stage=0), Service("keystone", [], stage=1),
         Service("neutron-rpc-server", [], stage=1, log="rpc.log"), Service("nova-conductor", [], stage=2),
         Service("neutron-dhcp-agent", [], stage=2), Service("nova-compute", [], stage=3)]


@pytest.fixture
def repair(tmp_path, monkeypatch):
    st = CloudState(tmp_path / "cloud")
    calls, fail = [], []
    monkeypatch.setattr(lifecycle.services, "read_pid", lambda state, name: 42)
    monkeypatch.setattr(lifecycle.services, "kill_now", lambda state, names: [])
    monkeypatch.setattr(lifecycle.services, "start", lambda state, s: calls.append(("start", s.name)) or 43)
    monkeypatch.setattr(lifecycle.services, "wait_healthy",
                        lambda state, group, timeout=None: calls.append(("healthy", *[s.name for s in group])))
    monkeypatch.setattr(lifecycle, "_check_port_free", lambda s: None)
    monkeypatch.setattr(lifecycle, "wait_nova", lambda *a, **k: None)

    def wait_consumers(state, queues, timeout=120.0, declare=None):
        calls.append(("declare", declare) if declare else ("consumers", tuple(queues)))
        if declare and fail:
            raise CloudError("files RabbitMQ conductor non déclarées avant le démarrage de leurs serveurs")

    monkeypatch.setattr(lifecycle, "wait_consumers", wait_consumers)

    def go(sick, declare_fails=False):
        fail[:] = [True] if declare_fails else []
        monkeypatch.setattr(lifecycle, "diagnose", lambda state, svc: {n: "arrêté" for n in sick})
        lines = []
        lifecycle.repair(st, None, TABLE, lines.append, "x")
        return calls, lines
    return go


DECLARE = ("declare", lifecycle.REPAIR_QUEUES)
RPC_WAIT = ("consumers", lifecycle.NEUTRON_RPC_QUEUES)


def test_the_queues_of_the_running_servers_are_declared_as_soon_as_the_broker_answers(repair):
    calls, lines = repair(["rabbitmq"])
    assert calls == [("start", "rabbitmq"), ("healthy", "rabbitmq"), DECLARE, RPC_WAIT]
    assert lifecycle.REPAIR_QUEUES == {"nova": ["conductor", "scheduler"], "neutron": list(lifecycle.NEUTRON_RPC_QUEUES)}
    assert any("déclarées d'avance : conductor, scheduler, q-plugin" in line for line in lines), lines


def test_they_are_declared_before_any_later_stage_is_restarted(repair):
    calls, _ = repair(["rabbitmq", "mariadb", "nova-conductor", "neutron-dhcp-agent"])
    assert calls[:4] == [("start", "rabbitmq"), ("start", "mariadb"), ("healthy", "rabbitmq", "mariadb"), DECLARE]
    assert calls.index(DECLARE) < calls.index(("start", "nova-conductor"))


def test_no_broker_restart_no_declaration(repair):
    calls, _ = repair(["neutron-rpc-server", "nova-conductor"])
    assert not [c for c in calls if c[0] == "declare"]


def test_a_declaration_that_fails_is_said_and_the_repair_goes_on(repair):
    calls, lines = repair(["rabbitmq", "neutron-dhcp-agent"], declare_fails=True)
    assert calls == [("start", "rabbitmq"), ("healthy", "rabbitmq"), DECLARE, RPC_WAIT,
                     ("start", "neutron-dhcp-agent"), ("healthy", "neutron-dhcp-agent")]
    assert any("non déclarées d'avance" in line for line in lines) and "cloud réparé" in lines[-1]
