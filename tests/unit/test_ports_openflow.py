"""The Open vSwitch agent's OpenFlow controller port (TCP on 127.0.0.1, `ss -ltnp`: 127.0.0.1:6633 neutron-openvsw;
ovsdb-server and ovs-vswitchd listen on unix sockets only) is a key of the cloud's port map: a squatter on 6633
moves it at `up` as any other, the agent's configuration and its declared ports follow, and only the agent restarts
when a repair moves it. An API-only cloud neither probes nor moves it. Pure logic: who holds a port is a fake."""
import json

from popek.checks.localcloud import dataplane, lifecycle, ports, services
from popek.checks.localcloud.state import PORTS, CloudState

EPHEMERAL = (32768, 60999)
WHO = "le processus 4242 (python3)"


def squat(monkeypatch, *busy):
    monkeypatch.setattr(services, "port_taken", lambda port, host="127.0.0.1": WHO if port in busy and host == "127.0.0.1" else None)
    monkeypatch.setattr(ports, "ephemeral_range", lambda: EPHEMERAL)


def test_a_squatted_openflow_port_moves_and_the_agent_follows(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    squat(monkeypatch, 6633)
    said = []
    assert lifecycle.settle_ports(state, dataplane, said.append) == [("openflow", 6633, 16633, WHO)]
    assert said == [f"openflow : 6633 occupé par {WHO}, pris 16633"]
    assert json.loads(state.ports_file.read_text())["openflow"] == 16633
    agent = next(s for s in dataplane.services(state) if s.name == "neutron-openvswitch-agent")
    assert services.ports_of(agent) == [16633]
    ini = dataplane.config_overrides(state)["neutron/plugins/ml2/openvswitch_agent.ini"]["ovs"]
    assert (ini["of_listen_address"], ini["of_listen_port"]) == ("127.0.0.1", 16633)


def test_an_api_only_cloud_neither_probes_nor_moves_the_openflow_port_and_keeps_a_recorded_one(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    state.record_ports(PORTS | {"openflow": 16633})
    probed = []
    monkeypatch.setattr(services, "port_taken", lambda port, host="127.0.0.1": probed.append(port) or (WHO if port == 5000 and host == "127.0.0.1" else None))
    monkeypatch.setattr(ports, "ephemeral_range", lambda: EPHEMERAL)
    assert [m[0] for m in lifecycle.settle_ports(state, None, print)] == ["keystone"]
    assert 16633 not in probed and 6633 not in probed
    assert state.ports["openflow"] == 16633 and state.ports["keystone"] == 15000


def test_a_moved_openflow_port_restarts_the_agent_only():
    names = ["rabbitmq", "keystone", "nova-compute", "neutron-rpc-server", "neutron-openvswitch-agent",
             "neutron-dhcp-agent", "ovs-vswitchd"]
    assert ports.readers({"openflow"}, names) == ["neutron-openvswitch-agent"]
