"""Port conflicts found up front (hG): one helper, services.port_taken, tells whether a server of popek's could
listen on 127.0.0.1:PORT (the bind itself is the test) and names the holder; `up` checks every port of the
services it is about to start with it (their health checks' ports and their other ones: RabbitMQ's distribution
port, the Open vSwitch agent's OpenFlow port) before it installs or starts anything, and refuses in one French
message naming each port, the service that needs it and its holder. Real sockets of this test only."""
import os
import socket

import pytest

from popek.checks.localcloud import lifecycle, services
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState


def _listener(family=socket.AF_INET, addr="127.0.0.1"):
    s = socket.socket(family)
    s.bind((addr, 0))
    s.listen(1)
    return s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_listener_on_loopback_or_on_the_dual_stack_wildcard_is_named_and_a_closed_port_is_free():
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with _listener(family, addr) as s:
            port = s.getsockname()[1]
            assert services.port_taken(port) == f"le processus {os.getpid()} " \
                f"({os.path.basename(os.readlink('/proc/self/exe'))})", (family, addr)
    assert services.port_taken(port) is None


def test_a_connection_of_an_earlier_run_left_in_time_wait_is_no_conflict():
    # the server side closes first: its end (local port = the server's port) stays in TIME_WAIT; the
    # servers bind with SO_REUSEADDR, so the port is free for them (a connect probe said free too)
    with _listener() as srv:
        port = srv.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = srv.accept()
        conn.close()
        client.recv(1)
        client.close()
    assert services.port_taken(port) is None


def test_every_taken_port_of_the_services_is_named_once_with_its_service_and_holder():
    with _listener() as a, _listener() as b:
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            pfree = free.getsockname()[1]
        table = [Service("keystone", [], health=f"http://127.0.0.1:{pfree}/", stage=1),
                 Service("rabbitmq", [], health=f"tcp://127.0.0.1:{pfree}", stage=0, ports=(pa,)),
                 Service("neutron-api", [], health=f"http://127.0.0.1:{pb}/", stage=2)]
        assert services.ports_of(table[1]) == [pfree, pa]
        with pytest.raises(CloudError) as refused:
            services.check_ports_free(table)
    said = str(refused.value)
    assert f"le port {pa} (rabbitmq) est occupé par le processus {os.getpid()}" in said
    assert f"le port {pb} (neutron-api) est occupé par le processus {os.getpid()}" in said
    assert str(pfree) not in said and "ne démarre rien" in said and "Traceback" not in said
    services.check_ports_free(table)  # all closed now: nothing to refuse


def test_up_refuses_a_stage_2_port_before_installing_or_starting_anything(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(lifecycle.apt, "install", lambda *a, **k: started.append("apt") or [])
    monkeypatch.setattr(lifecycle.services, "start", lambda state, s: started.append(s.name))
    monkeypatch.setattr(lifecycle.install, "ensure_venv", lambda *a, **k: started.append("venv"))
    monkeypatch.setattr(lifecycle, "_build_images", lambda *a, **k: started.append("images"))
    with _listener() as s:
        port = s.getsockname()[1]
        table = [Service("mariadb", [], health="unix:///nonexistent", stage=0),
                 Service("keystone", [], health=f"http://127.0.0.1:{_free_port()}/", stage=1),
                 Service("neutron-api", [], health=f"http://127.0.0.1:{port}/", stage=2)]
        monkeypatch.setattr(lifecycle, "table", lambda state, mod: table)
        with pytest.raises(CloudError) as refused:
            lifecycle.up(CloudState(tmp_path / "cloud"), dataplane=False, log=lambda line: None)
    assert f"le port {port} (neutron-api)" in str(refused.value)
    assert started == []


def test_the_openflow_port_is_one_of_the_ovs_agents_ports(tmp_path):
    from popek.checks.localcloud import dataplane

    state = CloudState(tmp_path / "cloud")
    agent = next(s for s in dataplane.services(state) if s.name == "neutron-openvswitch-agent")
    assert services.ports_of(agent) == [dataplane.OPENFLOW_PORT]
