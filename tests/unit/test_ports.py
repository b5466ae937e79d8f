"""The embedded cloud's ports chosen at `up` (checks/localcloud/ports.py): a service keeps its standard port when
free, else takes a free one outside the kernel's ephemeral range; the map is recorded and every user reads it.
Pure logic: who holds a port is a fake here (the live test is tests/integration/test_port_squatters.py)."""
import json
import types

import pytest

from popek.checks.localcloud import bootstrap, config, lifecycle, ports, services
from popek.checks.localcloud.state import PORTS, CloudState

EPHEMERAL = (32768, 60999)
WHO = "le processus 4242 (python3)"


def held_by(*busy):
    return lambda port, host="127.0.0.1": WHO if port in busy and host == "127.0.0.1" else None  # IPv4 only


def test_all_free_keeps_every_standard_port_and_moves_nothing():
    chosen, moves = ports.choose(PORTS, {}, held_by(), EPHEMERAL)
    assert chosen == PORTS and moves == []


def test_a_squatted_port_moves_to_standard_plus_10000_and_says_by_whom():
    chosen, moves = ports.choose(PORTS, {}, held_by(8080, 5000), EPHEMERAL)
    assert chosen == PORTS | {"swift": 18080, "keystone": 15000}
    assert sorted(moves) == [("keystone", 5000, 15000, WHO), ("swift", 8080, 18080, WHO)]
    assert ports.say([("keystone", 5000, 15000, WHO)]) == [f"keystone : 5000 occupé par {WHO}, pris 15000"]


def test_the_next_candidate_when_the_first_is_taken_too():
    chosen, _ = ports.choose(PORTS, {}, held_by(5000, 15000, 15001), EPHEMERAL)
    assert chosen["keystone"] == 15002


def test_a_moved_port_never_lands_in_the_ephemeral_range():
    # rabbitmq-dist 25672 + 10000 = 35672: inside 32768-60999, so the first port above the range
    chosen, _ = ports.choose(PORTS, {}, held_by(25672), EPHEMERAL)
    assert chosen["rabbitmq-dist"] == 61000
    chosen, _ = ports.choose(PORTS, {}, held_by(25672), (1024, 65535 - 1))
    assert chosen["rabbitmq-dist"] == 65535  # only that one is left outside a huge range


def test_a_moved_port_never_takes_another_services_port():
    # 6200 (swift-object) taken; 16200 is already keystone's recorded port: the next one
    chosen, _ = ports.choose(PORTS, {"keystone": 16200}, held_by(6200), EPHEMERAL)
    assert chosen["swift-object"] == 16201 and chosen["keystone"] == 16200
    # nor a standard port of the map: 60000 + 10000 is past 65535, so from 1024 up, 1024 being b's
    chosen, _ = ports.choose({"a": 60000, "b": 1024}, {}, held_by(60000), (2000, 63999))
    assert chosen == {"a": 1025, "b": 1024}


def test_a_recorded_port_stays_once_its_squatter_is_gone():
    chosen, moves = ports.choose(PORTS, {"keystone": 15000, "swift": 18080}, held_by(), EPHEMERAL)
    assert chosen["keystone"] == 15000 and chosen["swift"] == 18080 and moves == []


def test_a_recorded_port_taken_since_moves_again():
    chosen, moves = ports.choose(PORTS, {"keystone": 15000}, held_by(15000), EPHEMERAL)
    assert chosen["keystone"] == 15001 and moves == [("keystone", 15000, 15001, WHO)]


def test_a_port_of_our_own_running_service_is_not_taken():
    probed = []

    def taken(port):
        probed.append(port)
        return WHO
    chosen, moves = ports.choose({"keystone": 5000}, {}, taken, EPHEMERAL, ours={"keystone"})
    assert chosen == {"keystone": 5000} and moves == [] and probed == []


def test_no_free_port_at_all_is_an_error():
    with pytest.raises(ValueError, match="keystone"):
        ports.choose({"keystone": 5000}, {}, lambda p: WHO, EPHEMERAL)


def test_ephemeral_range_read_from_the_kernel_file(tmp_path):
    f = tmp_path / "range"
    f.write_text("40000\t50000\n")
    assert ports.ephemeral_range(f) == (40000, 50000)
    f.write_text("garbage")
    assert ports.ephemeral_range(f) == ports.EPHEMERAL_DEFAULT
    assert ports.ephemeral_range(tmp_path / "none") == ports.EPHEMERAL_DEFAULT


def test_the_state_reads_the_recorded_map_over_the_standard_one(tmp_path):
    state = CloudState(tmp_path)
    assert state.ports == PORTS and state.url("keystone") == "http://127.0.0.1:5000"
    state.record_ports(PORTS | {"keystone": 15000})
    assert json.loads(state.ports_file.read_text())["keystone"] == 15000
    assert state.ports == PORTS | {"keystone": 15000} and state.url("keystone") == "http://127.0.0.1:15000"
    state.ports_file.write_text('{"keystone": "x", "swift": 99999}')
    assert state.ports == PORTS
    state.ports_file.write_text("[")
    assert state.ports == PORTS


def test_every_user_of_a_port_reads_the_map(tmp_path):
    state = CloudState(tmp_path)
    moved = {"keystone": 15000, "swift": 18080, "nova": 18774, "metadata": 18775, "rabbitmq": 15672,
             "rabbitmq-dist": 61000, "epmd": 14369, "swift-object": 16200, "cinder": 18776}
    state.record_ports(PORTS | moved)
    cfg = config.generate(state)
    nova = cfg["nova/gunicorn-nova-api/gunicorn.conf.py"][""]
    assert nova["bind"] == ["127.0.0.1:18774", "127.0.0.1:18775"]
    assert nova["wsgi_app"] == "popek_novaapis:load(18774, 18775)"
    assert cfg["keystone/gunicorn-keystone/gunicorn.conf.py"][""]["bind"] == "127.0.0.1:15000"
    assert cfg["swift/proxy-server.conf"]["DEFAULT"]["bind_port"] == 18080
    assert cfg["swift/object-server.conf"]["DEFAULT"]["bind_port"] == 16200
    assert cfg["cinder/cinder.conf"]["DEFAULT"]["osapi_volume_listen_port"] == 18776
    assert ":15672/" in cfg["nova/nova.conf"]["DEFAULT"]["transport_url"]
    assert cfg["nova/nova.conf"]["keystone_authtoken"]["www_authenticate_uri"] == "http://127.0.0.1:15000"
    table = {s.name: s for s in services.core_services(state)}
    assert services.ports_of(table["nova-api"]) == [18774, 18775]
    assert services.ports_of(table["swift-proxy"]) == [18080]
    assert services.ports_of(table["rabbitmq"]) == [15672, 61000]
    assert table["rabbitmq"].env["ERL_EPMD_PORT"] == "14369" and table["rabbitmq"].env["RABBITMQ_NODE_PORT"] == "15672"
    assert table["epmd"].argv[-1] == "14369" and services.ports_of(table["epmd"]) == [14369]
    from popek.checks.localcloud import dataplane
    meta = dataplane.config_overrides(state)["neutron/metadata_agent.ini"]["DEFAULT"]
    assert meta["nova_metadata_port"] == 18775


def test_settle_records_the_map_before_anything_starts_and_says_each_move(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    monkeypatch.setattr(services, "port_taken", held_by(8080, 5000))
    monkeypatch.setattr(ports, "ephemeral_range", lambda: EPHEMERAL)
    said = []
    moves = lifecycle.settle_ports(state, None, said.append)
    assert {m[0] for m in moves} == {"keystone", "swift"}
    assert json.loads(state.ports_file.read_text()) == PORTS | {"keystone": 15000, "swift": 18080}
    assert sorted(said) == [f"keystone : 5000 occupé par {WHO}, pris 15000", f"swift : 8080 occupé par {WHO}, pris 18080"]
    # the squatters gone, the next up keeps the map (the student's openrc stays right)
    monkeypatch.setattr(services, "port_taken", held_by())
    assert lifecycle.settle_ports(state, None, said.append) == [] and state.ports["keystone"] == 15000


def test_settle_keeps_a_port_held_by_the_clouds_own_running_service(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    state.record_ports(PORTS)
    monkeypatch.setattr(services, "port_taken", held_by(5000))  # keystone's own gunicorn holds it
    monkeypatch.setattr(services, "read_pid", lambda st, name: 99 if name == "keystone" else None)
    assert lifecycle.settle_ports(state, None, print) == [] and state.ports["keystone"] == 5000


class FakeIdentity:
    def __init__(self, endpoints):
        self._services = [types.SimpleNamespace(id=f"s-{t}", type=t) for t in ("identity", "compute", "object-store")]
        self.eps = endpoints
        self.updated = []

    def services(self):
        return self._services

    def endpoints(self):
        return self.eps

    def update_endpoint(self, e, url):
        self.updated.append((e.service_id, url))
        e.url = url


def test_repoint_catalog_moves_the_endpoints_of_moved_ports_once_per_map(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    state.mkdirs()
    eps = [types.SimpleNamespace(service_id="s-identity", url="http://127.0.0.1:5000/v3"),
           types.SimpleNamespace(service_id="s-compute", url="http://127.0.0.1:8774/v2.1"),
           types.SimpleNamespace(service_id="s-object-store", url="http://127.0.0.1:8080/v1/AUTH_%(project_id)s"),
           types.SimpleNamespace(service_id="s-foreign", url="http://example.org:1")]
    idn = FakeIdentity(eps)
    reached = []  # the identity API is reached at the map's keystone port, never at the catalog's (old) URL
    monkeypatch.setattr(bootstrap, "connect",
                        lambda st, **kw: reached.append(kw) or types.SimpleNamespace(identity=idn))
    standard = bootstrap.catalog_step(state)
    assert bootstrap.once(state, standard, bootstrap.repoint_catalog, state) and idn.updated == []
    state.record_ports(PORTS | {"keystone": 15000, "swift": 18080})
    moved = bootstrap.catalog_step(state)
    said = []
    assert moved != standard
    assert bootstrap.once(state, moved, bootstrap.repoint_catalog, state, said.append)
    assert idn.updated == [("s-identity", "http://127.0.0.1:15000/v3"),
                           ("s-object-store", "http://127.0.0.1:18080/v1/AUTH_%(project_id)s")]
    assert eps[3].url == "http://example.org:1" and len(said) == 1
    assert reached[-1] == {"identity_endpoint_override": "http://127.0.0.1:15000/v3"}
    idn.updated.clear()
    assert not bootstrap.once(state, moved, bootstrap.repoint_catalog, state) and idn.updated == []  # same map
    state.record_ports(PORTS)  # back to the first map: its marker went, so re-pointed back
    assert bootstrap.once(state, bootstrap.catalog_step(state), bootstrap.repoint_catalog, state)
    assert [u for _, u in idn.updated] == ["http://127.0.0.1:5000/v3", "http://127.0.0.1:8080/v1/AUTH_%(project_id)s"]


def test_swift_rings_are_made_anew_only_when_the_storage_ports_moved(tmp_path):
    state = CloudState(tmp_path)
    state.mkdirs()
    assert not bootstrap.swift_rings_moved(state)  # never made: the one-time step makes them
    state.marker("swift-rings").write_text("2026-12-01T10:00:00\n")  # an older popek's marker: standard ports
    assert not bootstrap.swift_rings_moved(state)
    state.record_ports(PORTS | {"keystone": 15000})  # not a storage port
    assert not bootstrap.swift_rings_moved(state)
    state.record_ports(PORTS | {"swift-object": 16200})
    assert bootstrap.swift_rings_moved(state)
    state.marker("swift-rings").write_text(bootstrap.swift_ring_ports(state) + "\n")
    assert not bootstrap.swift_rings_moved(state)
