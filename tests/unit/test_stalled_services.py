"""Inside the embedded cloud, a frozen or dead service is named from its pid file and /proc: the evidence
for faults that leave the APIs' health records silent (ovs-vswitchd frozen: every agent alive, no lease).
A real stopped process plays the frozen service; no cloud needed."""
import json
import signal
import subprocess

import pytest

from popek.checks.cloud import components, connection, guest
from popek.checks.localcloud import services


@pytest.fixture
def cloud_root(tmp_path):
    """An embedded cloud's state with ovs-vswitchd frozen (a stopped session leader) and swift-proxy dead
    (its pid file left), and libvirtd running."""
    (tmp_path / "run").mkdir()
    procs = {name: subprocess.Popen(["sleep", "60"], start_new_session=True) for name in ("ovs-vswitchd", "libvirtd")}
    procs["ovs-vswitchd"].send_signal(signal.SIGSTOP)
    for name, proc in procs.items():
        (tmp_path / "run" / f"{name}.pid").write_text(json.dumps({"pid": proc.pid, "start": services._start_time(proc.pid)}))
    (tmp_path / "run" / "swift-proxy.pid").write_text(json.dumps({"pid": 999999999, "start": "1"}))
    try:
        yield tmp_path, procs["ovs-vswitchd"].pid
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def wait_stopped(pid):
    for _ in range(100):
        if services.stopped_members(pid):
            return
        __import__("time").sleep(0.02)


def test_a_frozen_and_a_dead_service_are_named(cloud_root):
    root, frozen = cloud_root
    wait_stopped(frozen)
    assert components.stalled_services(root) == [
        f"ovs-vswitchd est gelé (processus {frozen} à l'état T : arrêté par un signal)",
        "swift-proxy ne tourne plus (son fichier pid reste, sans processus)"]


def test_no_lease_on_the_embedded_cloud_names_what_is_frozen_there(cloud_root, monkeypatch):
    root, frozen = cloud_root
    wait_stopped(frozen)
    (root / "etc").mkdir()
    monkeypatch.setattr(connection, "EMBEDDED_CONFIGS", {root / "etc"})
    said = guest.health_word(None)
    assert said.startswith("sur le cloud embarqué : ovs-vswitchd est gelé")
    monkeypatch.setattr(connection, "EMBEDDED_CONFIGS", set())  # another cloud: nothing to look at
    assert guest.health_word(None) is None
