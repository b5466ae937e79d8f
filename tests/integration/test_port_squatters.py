"""A student's own servers on the embedded cloud's ports (a Docker container published on 8080, a Flask app on
5000, and servers on epmd's 4369 and OpenFlow's 6633), for real: `popek cloud up` moves keystone, swift, epmd and
the Open vSwitch agent's OpenFlow port to free ports (checks/localcloud/ports.py), says so in one French line each, re-points Keystone's catalog, clouds.yaml and the openrc files, and the cloud is whole
(every service up, the catalog claims green) while the squatters, untouched, go on answering. `down` stops only the cloud;
the squatters gone, the next `up` keeps the moved ports (the student's openrc stays right). In the end the map
the cloud had before is written back and the cloud started on it again (the catalog re-pointed back).

The repair cases (no `down`: a dead service's port squatted, `popek cloud up` repairs) need only
POPEK_SLOW_FAULTS=1. Opt-in: the first stops the shared cloud and starts it three times (~4-5 min): POPEK_SLOW_FAULTS=1 and
POPEK_CLOUD_DOWN_TEST=1, as root; takes /tmp/popek-cloud.lock exclusively (POPEK_CLOUD_LOCK_HELD=1 if held).
Live (hLive, 17:43-17:48 UTC, flock -x) with squatters on 5000, 8080, 4369 and 6633: down 22.3 s, up 45.8 s moving
keystone 5000 -> 15000, swift 8080 -> 18080, epmd 4369 -> 14369, openflow 6633 -> 16633, the run's 4 scenarios passed
(87.5 s), down 23.4 s / up 39.3 s on the moved map, down 22.8 s / up 40.0 s back on the old one: 1 passed in 294 s.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest
import yaml

from faults import slow
from popek.checks.localcloud import services
from helpers import VENV_BIN, allure_results, cloud_lock_exclusive, running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("arrête le cloud partagé et le démarre trois fois (~4-5 min)", " (et POPEK_CLOUD_DOWN_TEST=1)")]

POPEK = str(VENV_BIN / "popek")
ANSWER = b"popek-hK squatter\n"


class Squatter:
    """A plain TCP server of the test's own on `address`:`port` (as a Docker-published port or a Flask app
    listens), answering ANSWER to each connection, until stop()."""

    def __init__(self, port: int, address: str):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.port, self.address, self.sock = port, address, socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # IPv6 only: 127.0.0.1:port stays free
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((address, port))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(ANSWER)

    def answers(self) -> bool:
        with socket.create_connection(("127.0.0.1" if self.address == "0.0.0.0" else self.address, self.port), timeout=5) as c:
            return c.recv(100) == ANSWER

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def popek(*args, timeout=900) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    proc = subprocess.run([POPEK, *args], capture_output=True, text=True, timeout=timeout)
    print(f"popek {' '.join(args[:2])} : rc {proc.returncode}, {time.monotonic() - t0:.1f} s")
    return proc


def whole() -> tuple[int, int]:
    out = popek("cloud", "status").stdout
    for line in out.splitlines():
        if line.endswith("services en marche"):
            up, total = line.split()[0].split("/")
            return int(up), int(total)
    return 0, -1


def catalog(state) -> dict[str, set[str]]:
    out = subprocess.run([str(VENV_BIN / "openstack"), "--os-cloud", "popek-admin", "endpoint", "list", "-f", "json"],
                         capture_output=True, text=True, timeout=120,
                         env=os.environ | {"OS_CLIENT_CONFIG_FILE": str(state.clouds_yaml)})
    assert out.returncode == 0, out.stderr[-2000:]
    found: dict[str, set[str]] = {}
    for e in json.loads(out.stdout):
        found.setdefault(e["Service Type"], set()).add(e["URL"])
    return found


def client_side_points_at(state, port: int) -> None:
    auth = yaml.safe_load(state.clouds_yaml.read_text())["clouds"]
    assert {c["auth"]["auth_url"] for c in auth.values()} == {f"http://127.0.0.1:{port}/v3"}
    for cloud in auth:
        assert f"OS_AUTH_URL=http://127.0.0.1:{port}/v3\n" in state.openrc(cloud).read_text()


@pytest.fixture
def down_allowed():
    if os.environ.get("POPEK_CLOUD_DOWN_TEST") != "1":
        pytest.skip("arrête le cloud partagé : POPEK_CLOUD_DOWN_TEST=1 pour le lancer")
    state = running_cloud(dataplane=True, root_for="arrêter et démarrer le cloud embarqué")
    with cloud_lock_exclusive(900, "le cloud partagé ne peut pas être arrêté"):
        before = state.ports
        try:
            yield state, before
        finally:  # the map of before, and the cloud whole on it, its catalog and client side re-pointed back
            if state.ports != before:
                popek("cloud", "down", timeout=300)
                state.record_ports(before)
            up = popek("cloud", "up")
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
            assert whole()[0] == whole()[1] > 0
            client_side_points_at(state, before["keystone"])
            assert catalog(state)["identity"] == {f"http://127.0.0.1:{before['keystone']}/v3"}


def test_squatters_on_swift_and_keystone_ports_move_them_and_the_cloud_is_whole(down_allowed, tmp_path,
                                                                                record_property):
    state, before = down_allowed
    keystone, swift = before["keystone"], before["swift"]  # 5000 and 8080 on a map never moved
    # and epmd's 4369 (RabbitMQ must find its node through the moved one) and OpenFlow's 6633 (the bridges' controller)
    squatted = ("keystone", "swift", "epmd", "openflow")
    assert popek("cloud", "down", timeout=300).returncode == 0
    squatters = [Squatter(swift, "0.0.0.0"), Squatter(keystone, "127.0.0.1"),  # Docker's -p 8080:80; Flask's
                 Squatter(before["epmd"], "127.0.0.1"), Squatter(before["openflow"], "127.0.0.1")]
    try:
        up = popek("cloud", "up")
        out = up.stdout + up.stderr
        assert up.returncode == 0, out[-3000:]
        moved = state.ports
        assert all(moved[k] != before[k] for k in squatted), moved
        assert {k: v for k, v in moved.items() if k not in squatted} == {k: v for k, v in before.items() if k not in squatted}
        me = f"le processus {os.getpid()} ("
        for key in squatted:
            line = next((ln for ln in out.splitlines() if f"{key} : {before[key]} occupé par " in ln), "")
            assert me in line and line.rstrip().endswith(f", pris {moved[key]}"), out[-3000:]
        assert whole()[0] == whole()[1] > 0, popek("cloud", "status").stdout
        assert "name rabbit at port" in epmd_names(moved["epmd"])
        assert bridges_controlled_at(state, moved["openflow"])
        client_side_points_at(state, moved["keystone"])
        urls = catalog(state)
        assert urls["identity"] == {f"http://127.0.0.1:{moved['keystone']}/v3"}
        assert urls["object-store"] == {f"http://127.0.0.1:{moved['swift']}/v1/AUTH_%(project_id)s"}
        run = popek("run", "cloud", "-n", "2", "--claim", "C27", "--claim", "C28", "--claim", "C18", "--no-cloud-up",
                    "--no-report", "--results", str(tmp_path / "r"))
        results = allure_results(tmp_path / "r")
        statuses = {r["name"]: (r["status"], r.get("statusDetails", {}).get("message", "")[:200]) for r in results}
        bad = {n: s for n, s in statuses.items() if s[0] not in ("passed", "skipped")}
        assert results and not bad and run.returncode == 0, (bad, run.stdout[-3000:])
        assert any(s[0] == "passed" for s in statuses.values()), statuses
        assert all(s.answers() for s in squatters)  # untouched, still theirs
        record_property("moved", ", ".join(f"{k} {before[k]} -> {moved[k]}" for k in squatted))
        record_property("run", ", ".join(f"{n}: {s[0]}" for n, s in sorted(statuses.items())))
        print("moved:", {k: (before[k], moved[k]) for k in moved if moved[k] != before[k]}, "run:", statuses)
        assert popek("cloud", "down", timeout=300).returncode == 0
        assert all(s.answers() for s in squatters)  # `down` touched nothing of theirs
    finally:
        for s in squatters:
            s.stop()
    assert all(services.port_taken(before[k]) is None for k in squatted)  # the squatters gone
    again = popek("cloud", "up")
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert state.ports == moved and " occupé par " not in again.stdout  # kept: the openrc stays right
    assert whole()[0] == whole()[1] > 0
    assert catalog(state)["identity"] == {f"http://127.0.0.1:{moved['keystone']}/v3"}



def epmd_names(port: int) -> str:
    """What the epmd on `port` says its registered nodes are (`epmd -names`)."""
    out = subprocess.run(["/usr/bin/epmd", "-port", str(port), "-names"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


#: (service killed, key of its port, a process the repair must restart for it, a check of the moved port[, the
#: squatter's address: 127.0.0.1 unless given])
REPAIRS = {
    "placement": ("placement-api", "placement", "nova-compute",
                  lambda state, port: catalog(state)["placement"] == {f"http://127.0.0.1:{port}"}),
    # RabbitMQ registered again with the moved epmd (rabbitmqctl finds the node through it)
    "epmd": ("epmd", "epmd", "rabbitmq", lambda state, port: "name rabbit at port" in epmd_names(port)),
    # a squatter on IPv6's loopback only: epmd binds ::1 too and would die there (services.port_taken_loopback)
    "epmd-ipv6": ("epmd", "epmd", "rabbitmq", lambda state, port: "name rabbit at port" in epmd_names(port), "::1"),
    # the agent alone restarts (no other reader: no « ports déplacés » line), popek's bridges' controller follows
    "openflow": ("neutron-openvswitch-agent", "openflow", None, lambda state, port: bridges_controlled_at(state, port)),
}


def bridges_controlled_at(state, port: int, wait: float = 60.0) -> bool:
    """popek's integration bridge takes the Open vSwitch agent at 127.0.0.1:`port` as its controller (the agent
    sets it as it starts: waited for), connected."""
    from popek.checks.localcloud import dataplane

    deadline = time.monotonic() + wait
    while True:
        out = dataplane._vsctl(state, "--columns=target,is_connected", "list", "controller", check=False).stdout
        rows = [" ".join(r.split()) for r in out.strip().split("\n\n") if r.strip()]
        if rows and all(r == f'target : "tcp:127.0.0.1:{port}" is_connected : true' for r in rows):
            return True
        if time.monotonic() > deadline:
            print(out)
            return False
        time.sleep(2)


#: The claims run on the moved map: the catalog's (C27, C28), and one that goes through the moved port's reader:
#: a boot (C21: nova's scheduler asks Placement, its services talk over RabbitMQ), traffic between guests through
#: the flows the Open vSwitch agent programs (C25). hK2's live run (16:42-16:47) had C27 and C28 only.
CLAIMS = {"placement": ("C27", "C28", "C21"), "epmd": ("C27", "C28", "C21"), "epmd-ipv6": ("C27", "C28", "C21"),
          "openflow": ("C27", "C28", "C25")}


@pytest.mark.parametrize("case", list(REPAIRS))
def test_a_repair_moves_a_dead_services_squatted_port_and_its_readers_follow(case, tmp_path, record_property):
    """A running cloud whose placement-api (or epmd) died and whose port someone took meanwhile (a student's
    server): `popek cloud up` (a repair, no `down`) moves the port, says so, rewrites the configuration and
    Keystone's catalog, restarts what reads it (for placement nova's, neutron's and cinder's services; for epmd,
    RabbitMQ), and the cloud is whole while the squatter goes on answering. Then, the squatter gone and the old
    map written back by hand, the next repair follows it back (lifecycle.ports_unwritten). For OpenFlow's port the
    agent alone restarts and popek's bridges connect to it at the new port.

    Live (hK2, 2026-12-07 16:42-16:47 UTC, dataplane cloud, POPEK_SLOW_FAULTS=1 under flock -x): placement
    8778 -> 18778, repair 35.9 s (13 readers restarted), C27/C28 passed, back 36.5 s, test 90 s; epmd 4369 -> 14369,
    rabbitmq re-registered there (« name rabbit at port 25672 »), repair 10.9 s, back 10.6 s, 33 s; openflow 6633 ->
    16633, both bridges' controller connected at 16633, repair 1.0 s, back 1.0 s, 32 s; 26/26 after each.
    With the reader's claim (hLive, 17:24-17:36 UTC, same setting): placement repair 33.0 s, C21/C27/C28 passed
    (run 17.0 s), back 34.8 s; epmd 8.7 s, C21/C27/C28 passed, back 10.7 s; epmd-ipv6 (squatter on [::1]:4369)
    moved to 14369, 7.8 s, passed, back 10.8 s (3 passed in 164 s); openflow first failed at the squatter's bind
    (EADDRINUSE: kill_now returned while the agent's threads still held 6633, fixed in services._exited), then
    repair 1.2 s, C25/C27/C28 passed (run 74.5 s), back 0.9 s, 89.5 s; 26/26 after each."""
    from popek.checks.localcloud import lifecycle

    name, key, reader, check, *address = REPAIRS[case]
    state = running_cloud(dataplane=True, root_for="arrêter un service du cloud embarqué")
    with cloud_lock_exclusive(900, "le cloud partagé ne peut pas être réparé"):
        before = state.ports
        old = before[key]
        squatter = None
        try:
            assert services.kill_now(state, [name]) == []
            squatter = Squatter(old, address[0] if address else "127.0.0.1")
            up = popek("cloud", "up")
            out = up.stdout + up.stderr
            assert up.returncode == 0, out[-3000:]
            moved = state.ports
            assert moved[key] != old and {k: v for k, v in moved.items() if k != key} == \
                {k: v for k, v in before.items() if k != key}, moved
            line = next((ln for ln in out.splitlines() if f"{key} : {old} occupé par " in ln), "")
            assert f"le processus {os.getpid()} (" in line and line.rstrip().endswith(f", pris {moved[key]}"), out[-3000:]
            said = next((ln for ln in out.splitlines() if "ports déplacés : redémarrage de " in ln), "")
            assert reader in said if reader else not said, out[-3000:]
            assert whole()[0] == whole()[1] > 0, popek("cloud", "status").stdout
            assert check(state, moved[key]), out[-3000:]
            run = popek("run", "cloud", "-n", "2", *(a for c in CLAIMS[case] for a in ("--claim", c)), "--no-cloud-up",
                        "--no-report", "--results", str(tmp_path / "r"))
            results = allure_results(tmp_path / "r")
            statuses = {r["name"]: (r["status"], r.get("statusDetails", {}).get("message", "")[:200]) for r in results}
            bad = {n: s for n, s in statuses.items() if s[0] not in ("passed", "skipped")}
            assert results and not bad and run.returncode == 0, (bad, run.stdout[-3000:])
            passed = {x["value"] for r in results if r["status"] == "passed" for x in r["labels"] if x["name"] == "claim"}
            assert set(CLAIMS[case]) <= passed, (passed, statuses)  # each claim checked, not only skipped
            assert squatter.answers()  # untouched, still theirs
            record_property("moved", f"{key} {old} -> {moved[key]}; {said.strip()}")
            record_property("run", ", ".join(f"{n}: {s[0]}" for n, s in sorted(statuses.items())))
            print("moved:", key, old, "->", moved[key], "|", said.strip(), "| run:", statuses)
        finally:  # the squatter gone, the map of before written back, and the cloud repaired on it
            if squatter is not None:
                squatter.stop()
            if state.ports != before:
                services.kill_now(state, [name])
                state.record_ports(before)  # the configuration still names the moved port: ports_unwritten
            back = popek("cloud", "up")
            assert back.returncode == 0, (back.stdout + back.stderr)[-3000:]
            assert whole()[0] == whole()[1] > 0
            assert lifecycle.ports_unwritten(state) == set() and state.ports == before
            assert check(state, old)
