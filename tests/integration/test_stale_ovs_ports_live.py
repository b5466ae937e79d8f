"""Live proof of dataplane.remove_stale_ports on the running embedded cloud (dataplane mode), in seconds.

An internal port `qr-popek<hex>` with a random Neutron iface-id (no such port in Neutron) is added to popek's
integration bridge, as a timed-out AddPortCommand of the L3 agent leaves one; ovs-vswitchd makes its device in
the host's namespace. remove_stale_ports must remove the port and its device, and leave a real Neutron port
and a port without any iface-id. The agents run, so it reads twice, STALE_SETTLE s apart (~6 s in all).

It changes the shared cloud's switch: it takes `/tmp/popek-cloud.lock` exclusively (POPEK_CLOUD_LOCK_HELD=1
when the caller holds it already) and removes what it added in `finally`.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid

import pytest

from helpers import cloud_lock_exclusive, running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

@pytest.fixture
def cloud_exclusive():
    """The shared cloud's lock, exclusive; waited for 60 s at most (a CI run must not stall on it), then the
    test is skipped with the reason."""
    with cloud_lock_exclusive(60, "POPEK_CLOUD_LOCK_HELD=1 si c'est l'appelant qui le tient"):
        yield


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def test_a_stale_ovs_port_and_its_device_are_removed_and_real_ones_kept(cloud_exclusive, record_property):
    if os.geteuid() != 0:
        pytest.skip("il faut être root (Open vSwitch du cloud, interfaces de l'hôte)")
    state = running_cloud(dataplane=True)
    from popek.checks.localcloud import dataplane

    br = dataplane.INT_BRIDGE
    stale, plain = f"qr-popek{secrets.token_hex(3)}", f"popekx{secrets.token_hex(3)}"
    iface_id = str(uuid.uuid4())
    mac = "fa:16:3e:" + ":".join(secrets.token_hex(1) for _ in range(3))
    neutron = dataplane.neutron_port_ids(state)
    real = [p for p in dataplane._read_ovs_ports(state) if p.bridge == br and p.iface_id in neutron]
    if not real:
        pytest.skip(f"aucun port Neutron réel sur {br} (réseaux et routeur du cours absents ?)")
    assert iface_id not in neutron
    try:
        dataplane._vsctl(state, "add-port", br, stale, "--", "set", "Interface", stale, "type=internal",
                         f"external_ids:iface-id={iface_id}", f"external_ids:attached-mac={mac}",
                         "external_ids:iface-status=active")
        dataplane._vsctl(state, "add-port", br, plain, "--", "set", "Interface", plain, "type=internal")
        deadline = time.monotonic() + 10
        while not _link_exists(stale) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _link_exists(stale), f"ovs-vswitchd n'a pas créé l'interface {stale} dans l'espace de noms de l'hôte"

        t0 = time.monotonic()
        removed = dataplane.remove_stale_ports(state)
        took = time.monotonic() - t0
        ports = dataplane._vsctl(state, "list-ports", br).stdout.split()
        record_property("measure", f"{len(removed)} port(s) retiré(s) en {took:.1f} s : "
                                   + ", ".join(p.name for p in removed) + f" (load {os.getloadavg()[0]:.1f})")
        assert dataplane.OvsPort(br, stale, iface_id) in removed
        assert all(p.iface_id not in neutron for p in removed)
        assert stale not in ports and not _link_exists(stale)
        assert plain in ports, "un port sans iface-id Neutron a été touché"
        assert all(p.name in ports for p in real), "un port Neutron réel a été retiré"
    finally:
        for name in (stale, plain):
            dataplane._vsctl(state, "--if-exists", "del-port", br, name, check=False)
            if _link_exists(name):
                subprocess.run(["ip", "link", "delete", name], capture_output=True)
