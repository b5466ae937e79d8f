"""A repair (`popek cloud up` on a running, degraded cloud) whose dead service's port someone else took meanwhile:
the port moves as at `up`, the configuration, catalog, rings and clouds.yaml follow, and every running process that
reads it restarts (it would otherwise call the old port, maybe with a token). Pure logic: who holds a port and the
processes are fakes here (the live proof: tests/integration/test_port_squatters.py)."""
import json

import yaml

from popek.checks.localcloud import bootstrap, lifecycle, ports, services
from popek.checks.localcloud.state import PORTS, CloudState

EPHEMERAL = (32768, 60999)
WHO = "le processus 4242 (python3)"
NAMES = ["mariadb", "epmd", "rabbitmq", "keystone", "glance-api", "placement-api", "nova-api", "neutron-api",
         "nova-conductor", "nova-scheduler", "nova-compute", "cinder-api", "cinder-scheduler", "cinder-volume",
         "swift-account", "swift-container", "swift-object", "swift-proxy", "neutron-rpc-server",
         "neutron-openvswitch-agent", "ovsdb-server", "ovs-vswitchd", "libvirtd"]


def test_placement_moved_restarts_it_and_its_catalog_readers_not_keystone_glance_nor_the_stores():
    again = ports.readers({"placement"}, NAMES)
    assert "placement-api" in again and {"nova-conductor", "nova-scheduler", "nova-compute", "nova-api",
                                         "neutron-api", "neutron-rpc-server", "cinder-volume"} <= set(again)
    assert not {"keystone", "glance-api", "swift-proxy", "mariadb", "rabbitmq", "epmd", "ovs-vswitchd",
                "libvirtd", "swift-object"} & set(again)
    assert again == [n for n in NAMES if n in again]  # the table's order


def test_keystone_moved_restarts_every_process_that_authenticates():
    again = set(ports.readers({"keystone"}, NAMES))
    assert {"keystone", "glance-api", "placement-api", "swift-proxy", "nova-compute", "neutron-openvswitch-agent"} <= again
    assert not {"mariadb", "rabbitmq", "epmd", "swift-object", "ovsdb-server", "libvirtd"} & again


def test_epmd_or_rabbit_dist_moved_restarts_rabbitmq_only_and_a_storage_port_the_proxy():
    assert ports.readers({"epmd"}, NAMES) == ["epmd", "rabbitmq"]
    assert ports.readers({"rabbitmq-dist"}, NAMES) == ["rabbitmq"]
    assert ports.readers({"swift-object"}, NAMES) == ["swift-object", "swift-proxy"]
    assert "glance-api" not in ports.readers({"rabbitmq"}, NAMES) and "nova-conductor" in ports.readers({"rabbitmq"}, NAMES)


def test_nothing_moved_restarts_nothing():
    assert ports.readers(set(), NAMES) == []


def fake_cloud(tmp_path, monkeypatch, dead, busy):
    """A running cloud at the standard ports where `dead` is not running and `busy` ports are someone else's."""
    state = CloudState(tmp_path)
    state.record_ports(PORTS)
    bootstrap.write_client_config(state)
    svc = lifecycle.table(state, None)
    running = {s.name for s in svc} - set(dead)
    stopped = []
    monkeypatch.setattr(services, "read_pid", lambda st, name: 99 if name in running else None)
    monkeypatch.setattr(services, "port_taken", lambda port, host="127.0.0.1": WHO if port in busy and host == "127.0.0.1" else None)

    def stop(st, names, grace=20.0):
        stopped.extend(names)
        running.difference_update(names)
        return []
    monkeypatch.setattr(services, "stop", stop)
    monkeypatch.setattr(ports, "ephemeral_range", lambda: EPHEMERAL)
    return state, svc, stopped


def test_repair_moves_a_dead_services_squatted_port_and_restarts_its_readers(tmp_path, monkeypatch):
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["placement-api"], busy={8778})
    sick, said = {"placement-api": "arrêté"}, []
    assert lifecycle._repair_ports(state, None, svc, sick, said.append) == {"placement"}
    assert state.ports["placement"] == 18778
    assert json.loads(state.ports_file.read_text())["placement"] == 18778
    assert said[0] == f"placement : 8778 occupé par {WHO}, pris 18778"
    assert "redémarrage de" in said[1] and "nova-conductor" in said[1]
    # the config of the moved service and the catalog's readers restarted; nothing that reads it not stopped
    assert (state.etc("placement") / "gunicorn-placement-api" / "gunicorn.conf.py").read_text().count("18778")
    assert "placement-api" not in stopped and {"nova-conductor", "nova-compute", "neutron-api"} <= set(stopped)
    assert not {"keystone", "glance-api", "mariadb", "rabbitmq"} & set(stopped)
    assert set(sick) == {"placement-api", *stopped} and sick["placement-api"] == "arrêté"
    assert bootstrap.catalog_urls(state)["placement"] == "http://127.0.0.1:18778"


def test_repair_moves_keystone_and_the_client_side_follows(tmp_path, monkeypatch):
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["keystone"], busy={5000})
    lifecycle._repair_ports(state, None, svc, {"keystone": "arrêté"}, print)
    clouds = yaml.safe_load(state.clouds_yaml.read_text())["clouds"]
    assert {c["auth"]["auth_url"] for c in clouds.values()} == {"http://127.0.0.1:15000/v3"}
    assert "OS_AUTH_URL=http://127.0.0.1:15000/v3" in state.openrc("popek").read_text()
    assert "127.0.0.1:15000" in (state.etc("nova") / "nova.conf").read_text()
    assert "glance-api" in stopped and "mariadb" not in stopped


def test_repair_with_the_port_free_moves_nothing_and_stops_nothing(tmp_path, monkeypatch):
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["placement-api"], busy=set())
    sick = {"placement-api": "arrêté"}
    assert lifecycle._repair_ports(state, None, svc, sick, print) == set() and stopped == []
    assert sick == {"placement-api": "arrêté"} and state.ports == PORTS


def test_repair_moves_a_storage_port_and_makes_the_rings_anew(tmp_path, monkeypatch):
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["swift-object"], busy={6200})
    state.marker("swift-rings").parent.mkdir(parents=True, exist_ok=True)
    state.marker("swift-rings").write_text(bootstrap.swift_ring_ports(state) + "\n")
    made = []
    monkeypatch.setattr(bootstrap, "swift_rings", lambda st: made.append(st.ports["swift-object"]))
    lifecycle._repair_ports(state, None, svc, {"swift-object": "arrêté"}, print)
    assert made == [16200] and stopped == ["swift-proxy"]
    assert json.loads(state.marker("swift-rings").read_text())["swift-object"] == 16200


def test_a_map_the_configuration_does_not_name_yet_is_written_and_read_again(tmp_path, monkeypatch):
    """A move recorded (ports.json) by a repair or `up` stopped before the configuration followed, or a map put back
    by hand: the next repair writes the configuration on it and restarts its readers, though nothing is squatted."""
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["placement-api"], busy=set())
    lifecycle.write_config(state, None, shipped=False)
    assert json.loads(lifecycle.config_ports(state).read_text()) == PORTS and lifecycle.ports_unwritten(state) == set()
    state.record_ports(PORTS | {"placement": 18778})
    assert lifecycle.ports_unwritten(state) == {"placement"}
    sick = {"placement-api": "arrêté"}
    assert lifecycle._repair_ports(state, None, svc, sick, print) == {"placement"}
    assert "nova-conductor" in stopped and "18778" in (state.etc("placement") / "gunicorn-placement-api" / "gunicorn.conf.py").read_text()
    assert lifecycle.ports_unwritten(state) == set()


def test_no_record_of_the_written_map_moves_nothing(tmp_path):
    assert lifecycle.ports_unwritten(CloudState(tmp_path)) == set()


def test_the_repair_starts_the_moved_service_on_its_new_port_and_its_readers_after_the_catalog(tmp_path, monkeypatch):
    """Through repair() itself: the processes are started from the table of the new map (a health check at the old
    port would ask the squatter, which answers: healthy), and the catalog is re-pointed before stage 2 starts."""
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["placement-api", "epmd"], busy={8778, 4369})
    calls = []
    monkeypatch.setattr(lifecycle, "diagnose", lambda st, table: {"epmd": "arrêté", "placement-api": "arrêté"})
    monkeypatch.setattr(services, "kill_now", lambda st, names: [])
    monkeypatch.setattr(services, "start", lambda st, s: calls.append(("start", s.name, s.health, tuple(s.argv))) or 43)
    monkeypatch.setattr(services, "wait_healthy", lambda st, group, timeout=None: None)
    monkeypatch.setattr(lifecycle, "_check_port_free", lambda s: None)
    monkeypatch.setattr(lifecycle, "wait_nova", lambda *a, **k: None)
    monkeypatch.setattr(lifecycle, "wait_consumers", lambda *a, **k: None)
    monkeypatch.setattr(bootstrap, "repoint_catalog", lambda st, log=print: calls.append(("catalog",)) or [])
    said = []
    lifecycle.repair(state, None, svc, said.append, "x")
    started = {c[1]: c for c in calls if c[0] == "start"}
    assert started["placement-api"][2] == "http://127.0.0.1:18778/"
    assert started["epmd"][3][-1] == "14369" and started["epmd"][2] == "tcp://127.0.0.1:14369"
    assert "rabbitmq" in started and "nova-conductor" in started and "glance-api" not in started
    order = [c[1] if c[0] == "start" else "catalog" for c in calls]
    assert order.index("epmd") < order.index("rabbitmq") < order.index("placement-api") < order.index("catalog") \
        < order.index("nova-conductor")
    assert any("cloud réparé" in line for line in said)


def test_a_resumed_start_stops_the_running_readers_of_a_moved_port_only(tmp_path, monkeypatch):
    """`up` interrupted, then `up` again (no repair: the start resumes): a process still running on the old map that
    reads a moved port is stopped, so that the start brings it up on the new one; a process that does not read it,
    or one not running, is left alone."""
    state, svc, stopped = fake_cloud(tmp_path, monkeypatch, dead=["placement-api", "nova-compute"], busy=set())
    said = []
    assert lifecycle.stop_readers(state, None, set(), said.append) == [] and said == []
    again = lifecycle.stop_readers(state, None, {"placement"}, said.append)
    assert "nova-conductor" in again and "nova-compute" not in again and "placement-api" not in again
    assert "keystone" not in again and stopped == again and said[0].startswith("ports déplacés : redémarrage de ")
