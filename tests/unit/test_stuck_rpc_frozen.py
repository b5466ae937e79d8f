"""A frozen neutron-rpc-server (or bus, or database) is named before the agent whose heartbeat went stale first
(hF3, live 20:4x: neutron-rpc-server SIGSTOPped, C21 ÉCHEC in 53 s blaming neutron-openvswitch-agent). The
agents' heartbeats reach Neutron through neutron-rpc-server, so they go stale one after another, each at its
own last report: the first stale one is innocent. Fake records and trouble lines, in the shapes stuck.py and
components.stalled_services give."""
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import compute, connection, stuck

H = stuck.Health
SERVICES = [H("nova-conductor", "compute1", True), H("nova-scheduler", "compute1", True),
            H("nova-compute", "compute1", True)]
#: 53 s after the freeze: the OVS agent's last report is the oldest, the others reported just before it.
OVS_STALE_FIRST = [H("neutron-openvswitch-agent", "compute1", False, updated="2026-12-07T20:41:02"),
                   H("neutron-dhcp-agent", "compute1", True), H("neutron-metadata-agent", "compute1", True)]
RPC_FROZEN = ["neutron-rpc-server est gelé (processus 4242 à l'état T : arrêté par un signal)"]


def test_a_frozen_rpc_server_is_named_before_the_ovs_agent_it_silences():
    said = stuck.stuck_finding("popek-x-server", 53, "spawning", "compute1", SERVICES, OVS_STALE_FIRST,
                               lambda: list(RPC_FROZEN))
    assert said.startswith("l'instance popek-x-server reste en BUILD (étape spawning) depuis 53 s ; sur le cloud "
                           "embarqué : neutron-rpc-server est gelé (processus 4242")
    # the stale agent is said as the consequence, after the component it waits for
    assert said.index("neutron-rpc-server") < said.index("neutron-openvswitch-agent")
    assert "d'où, par conséquence : l'agent neutron-openvswitch-agent" in said


def test_a_frozen_bus_is_named_too_and_an_unrelated_trouble_line_is_not():
    bus = ["le bus RabbitMQ (127.0.0.1:5673) ne répond pas en 2 s (aucun salut)"]
    said = stuck.stuck_finding("x", 30, "spawning", "compute1", SERVICES, OVS_STALE_FIRST, lambda: bus)
    assert "sur le cloud embarqué : le bus RabbitMQ (127.0.0.1:5673)" in said
    # a frozen ovs-vswitchd carries no heartbeat: the stale agent's own record stays the verdict
    other = ["ovs-vswitchd est gelé (processus 16256 à l'état T : arrêté par un signal)"]
    said = stuck.stuck_finding("x", 30, "spawning", "compute1", SERVICES, OVS_STALE_FIRST, lambda: other)
    assert said == ("l'instance x reste en BUILD (étape spawning) depuis 30 s : l'agent neutron-openvswitch-agent "
                    "ne donne plus signe de vie (openstack network agent list : alive False), les ports de "
                    "l'instance ne peuvent être liés : neutron-openvswitch-agent@compute1 (dernier signe de vie "
                    "2026-12-07T20:41:02)")


def test_the_trouble_list_is_not_read_while_every_record_is_alive():
    def never():
        raise AssertionError("read")
    agents = [H("neutron-openvswitch-agent", "compute1", True)]
    assert stuck.stuck_finding("x", 30, "spawning", "compute1", SERVICES, agents, never) is None


def test_any_cloud_every_agent_stale_at_once_points_at_the_rpc_side_not_one_agent():
    # one binary on two hosts, all stale: before, the server's host's OVS agent was blamed
    agents = [H("neutron-openvswitch-agent", "compute1", False), H("neutron-openvswitch-agent", "compute2", False)]
    said = stuck.dead_component("compute1", SERVICES, agents)
    assert said.startswith("aucun agent de Neutron ne donne plus signe de vie")
    assert "neutron-rpc-server" in said and "le bus" in said
    # a single agent, stale: nothing says it is not the agent itself
    assert stuck.dead_component("compute1", SERVICES, agents[:1]).startswith("l'agent neutron-openvswitch-agent")


def record(binary, up):
    return NS(binary=binary, host="compute1", state="up", status="enabled", updated_at="", is_alive=up,
              is_admin_state_up=True, last_heartbeat_at="2026-12-07T20:41:02")


@pytest.fixture
def frozen_rpc(monkeypatch):
    monkeypatch.setattr(stuck, "GRACE", 0.0)
    monkeypatch.setattr(connection, "embedded_trouble", lambda: list(RPC_FROZEN))


def test_wait_active_names_the_frozen_rpc_server_not_the_ovs_agent(frozen_rpc):
    nova = [record(b, True) for b in ("nova-conductor", "nova-scheduler", "nova-compute")]
    neutron = [record("neutron-openvswitch-agent", False), record("neutron-dhcp-agent", True)]
    admin = NS(compute=NS(services=lambda: nova), network=NS(agents=lambda: neutron))
    server = NS(id="i", name="popek-x-server", status="BUILD", task_state="spawning", compute_host="compute1")
    member = NS(compute=NS(get_server=lambda _id: server, servers=lambda **_: [server]))
    with pytest.raises(AssertionError, match=r"sur le cloud embarqué : neutron-rpc-server est gelé .* d'où, par "
                                             r"conséquence : l'agent neutron-openvswitch-agent"):
        compute.wait_active(member, NS(id="i", name="popek-x-server"), timeout=30, admin=admin)
