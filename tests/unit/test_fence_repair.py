"""The fence's nft script, and the repair's diagnosis of real (small) processes: alive, frozen, dead, deaf."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from popek.checks.localcloud import fence, lifecycle, services
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState


def test_the_fence_names_the_cloud_interfaces_and_neutron_macs_only():
    script = fence.ruleset(("popek-int", "popek-ex", "ovs-netdev"))
    assert 'elements = { "popek-int", "popek-ex", "ovs-netdev" }' in script
    assert "ether saddr & ff:ff:ff:00:00:00 == fa:16:3e:00:00:00" in script
    assert script.startswith("table inet popek\ndelete table inet popek\n")  # one transaction, idempotent
    # input: only what the host opened comes back; forward: nothing at all
    assert script.count("ct state established,related accept") == 2 and "forward" in script
    with pytest.raises(ValueError):
        fence.ruleset(())


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0, reason="nft absent ou pas root")
def test_nft_accepts_the_fence_script_without_applying_it():
    proc = subprocess.run(["nft", "-c", "-f", "-"], input=fence.ruleset(("br-int", "br-ex")), text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def state(tmp_path):
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    yield state
    services.sweep(state)


def _sleeper(state, name, health=""):
    return Service(name, ["/bin/sleep", "300"], log=str(state.log(name)), health=health, cwd=str(state.root))


def test_diagnose_tells_alive_frozen_dead_and_deaf_apart(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once closed
    table = [_sleeper(state, "alive"), _sleeper(state, "frozen"), _sleeper(state, "dead"),
             _sleeper(state, "deaf", health=f"tcp://127.0.0.1:{closed}"), _sleeper(state, "never")]
    for svc in table[:4]:
        services.start(state, svc)
    os.kill(services.read_pid(state, "frozen"), signal.SIGSTOP)
    os.kill(services.read_pid(state, "dead"), signal.SIGKILL)
    time.sleep(0.3)
    sick = lifecycle.diagnose(state, table, probes=2, timeout=0.5)
    assert set(sick) == {"frozen", "dead", "deaf", "never"}
    assert sick["frozen"].startswith("figé") and sick["dead"] == "arrêté" and sick["never"] == "arrêté"
    assert sick["deaf"].startswith("ne répond pas")
    frozen = services.read_pid(state, "frozen")
    assert services.kill_now(state, ["frozen"]) == []  # SIGKILL reaches a stopped process
    assert services.session_members(frozen) == [] and services.read_pid(state, "frozen") is None
    assert services.read_pid(state, "alive") is not None  # untouched


def test_log_tail_is_short_and_redacted(state):
    from popek.checks.secrets import REDACT

    REDACT.add("tail-secret-8812")
    log = state.log("x")
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "password=tail-secret-8812\n")
    tail = services.log_tail(str(log), lines=3)
    assert tail.splitlines() == ["line 98", "line 99", "password=***"]


def test_an_old_setup_log_loses_its_password_and_its_other_readers(tmp_path):
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    password = state.passwords()["mariadb_nova"]
    old = state.log("setup-nova")
    old.write_text(f"--- popek: nova-manage cell_v2 map_cell0 --database_connection mysql://nova:{password}@x/y\nok\n")
    old.chmod(0o644)
    lifecycle.protect_logs(state)
    assert password not in old.read_text() and "mysql://nova:***@x/y" in old.read_text()
    assert old.stat().st_mode & 0o777 == 0o600 and (state.root / "log").stat().st_mode & 0o777 == 0o700


def test_a_mode_switch_that_would_delete_foreign_servers_refuses_unless_forced(tmp_path, monkeypatch):
    from popek.checks.localcloud.errors import CloudError

    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    state.marker("compute-mode").write_text("fake\n")
    forgotten = []
    monkeypatch.setattr(lifecycle, "wait_nova", lambda *a, **k: None)
    monkeypatch.setattr(lifecycle, "wait_consumers", lambda *a, **k: None)
    monkeypatch.setattr(lifecycle, "forget_compute", lambda st: forgotten.append(st))
    monkeypatch.setattr(lifecycle, "servers_not_made_by_popek", lambda st: ["vm-de-prof (1234, projet demo)"])
    progress = lifecycle.Progress(lambda line: None)
    with pytest.raises(CloudError) as refused:
        lifecycle._before_compute(state, {"dataplane": True}, {"compute_driver": "libvirt.LibvirtDriver"}, progress,
                                  None, force=False)
    assert "vm-de-prof (1234, projet demo)" in str(refused.value) and "--force" in str(refused.value)
    assert forgotten == []
    lifecycle._before_compute(state, {"dataplane": True}, {"compute_driver": "libvirt.LibvirtDriver"}, progress,
                              None, force=True)
    assert forgotten == [state]
