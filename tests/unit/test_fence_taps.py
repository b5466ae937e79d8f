"""The fence's hole (hG3, c408463): with the netdev datapath a guest's frames also enter the host's own stack on its
tap; a guest that changed its MAC was answered by the tap's link-local address. The fence now drops popek's guests'
taps (set guest_taps) in input and forward, with no established/related exception; its members come from popek's
QEMU hook (prepare/release) and, at every apply, from the ports of popek's integration bridge that are host links.
Pure logic and the hook run against a fake nft: no live host state is read."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from popek.checks.localcloud import dataplane, fence, fence_watch, lifecycle
from popek.checks.localcloud.state import CloudState

BRIDGES = ("popek-int", "popek-ext", "ovs-netdev")
DOMAIN_XML = """<domain type='qemu'><devices>
    <interface type='ethernet'><mac address='fa:16:3e:00:00:01'/><target dev='tap5adb3aee-21'/></interface>
    <interface type="ethernet"><target dev="tap01234567-89"/></interface>
    <console type='pty'><target type='serial' port='0'/></console>
</devices></domain>"""


def _chain(script: str, name: str) -> list[str]:
    body = script.split(f"chain {name} {{", 1)[1].split("}", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def test_the_taps_are_dropped_in_input_and_forward_with_no_established_exception():
    script = fence.ruleset(BRIDGES, taps=("tap5adb3aee-21", "tap01234567-89"))
    assert 'set guest_taps {\n        type ifname\n        elements = { "tap5adb3aee-21", "tap01234567-89" }' in script
    inp = _chain(script, "input")
    # first rule of input: the taps, dropped whatever the conntrack state (the host opens nothing through a tap)
    assert inp[1] == "iifname @guest_taps counter name refused_input drop"
    assert not any("guest_taps" in r and "accept" in r for r in inp)
    fwd = _chain(script, "forward")
    assert "iifname @guest_taps counter name refused_forward drop" in fwd
    assert "oifname @guest_taps counter name refused_forward drop" in fwd
    # the bridges keep their exception: the runner's SSH/ping to floating IPs goes through popek-ext
    assert "iifname @cloud_ifaces ct state established,related accept" in inp


def test_without_a_guest_the_set_is_there_empty_for_the_hook_to_fill():
    script = fence.ruleset(BRIDGES)
    assert "set guest_taps {\n        type ifname\n    }" in script
    assert "iifname @guest_taps counter name refused_input drop" in script


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0, reason="nft absent ou pas root")
@pytest.mark.parametrize("taps", [(), ("tap5adb3aee-21",), ("tap5adb3aee-21", "tap01234567-89")])
def test_nft_accepts_the_script_with_the_taps_without_applying_it(taps):
    proc = subprocess.run(["nft", "-c", "-f", "-"], input=fence.ruleset(BRIDGES, taps=taps), text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_the_taps_are_popek_int_ports_that_are_host_links_never_a_name_pattern():
    ports = ["tap5adb3aee-21", "qr-1b2c3d4e-5f", "tapdhcp0000-00", "patch-tun", "tap01234567-89"]
    # the host: an owner's OpenVPN tap0 and its libvirt vnet0 (not popek's ports), popek's bridges, one guest tap
    # whose port is gone from OVS (its guest is being deleted: not listed), Neutron's qr-/DHCP ports in namespaces
    links = {"lo", "eth0", "tap0", "vnet0", "popek-int", "popek-ext", "ovs-netdev", "tap5adb3aee-21", "tapgone-00"}
    assert fence.guest_taps(ports, links, BRIDGES) == ("tap5adb3aee-21",)
    assert fence.guest_taps(ports + ["popek-int"], links, BRIDGES) == ("tap5adb3aee-21",)   # never popek's own bridge
    assert fence.guest_taps([], links, BRIDGES) == ()


def test_every_apply_passes_the_taps_that_exist(monkeypatch, tmp_path):
    applied = []
    monkeypatch.setattr(fence, "apply", lambda bridges, taps=(): applied.append((bridges, taps)) or "en place")

    class Mod:
        @staticmethod
        def fence_interfaces():
            return BRIDGES

        @staticmethod
        def fence_taps(state):
            return ("tap5adb3aee-21",)

    lifecycle._fence_up(CloudState(tmp_path / "cloud"), Mod, lambda line: None)
    assert applied == [(BRIDGES, ("tap5adb3aee-21",))]
    # the watcher's re-application: the integration bridge's ports of the OVS named by --ovs-rundir
    asked = []
    monkeypatch.setattr(fence, "bridge_ports", lambda rundir, bridge: asked.append((rundir, bridge)) or ["tapx-1", "qr-y"])
    monkeypatch.setattr(fence, "host_links", lambda: {"tapx-1", "tap0"})
    assert fence_watch.taps_of("/state/ovs", BRIDGES) == ("tapx-1",)
    assert asked == [("/state/ovs", dataplane.INT_BRIDGE)] and fence_watch.INT_BRIDGE == dataplane.INT_BRIDGE
    assert fence_watch.taps_of(None, BRIDGES) == ()


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """popek's QEMU hook written as `up` writes it, its nft a fake that records its arguments (and fails when told)."""
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    calls, nft = tmp_path / "nft-calls", tmp_path / "nft"
    nft.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> "{calls}"\necho >> "{calls}"\n'
                   f'[ -e "{tmp_path}/nft-fails" ] && {{ echo "Error: No such file or directory" >&2; exit 1; }}\nexit 0\n')
    nft.chmod(0o755)
    monkeypatch.setattr(dataplane.shutil, "which", lambda name: str(nft) if name == "nft" else None)
    dataplane.write_qemu_hook(state)
    path = dataplane.qemu_hook_path(state)

    def run(op: str):
        proc = subprocess.run(["sh", str(path), "instance-0001", op, "begin", "-"], input=DOMAIN_XML, text=True,
                              capture_output=True, timeout=10)
        said = calls.read_text().splitlines() if calls.exists() else []
        calls.unlink(missing_ok=True)
        return proc, said
    return state, run, tmp_path


def test_the_hook_adds_the_guests_taps_before_it_runs_and_removes_them_at_release(hook):
    state, run, _ = hook
    assert os.access(dataplane.qemu_hook_path(state), os.X_OK)
    proc, said = run("prepare")
    assert proc.returncode == 0 and proc.stdout == ""
    assert said == ['add|element|inet|popek|guest_taps|{ "tap5adb3aee-21" }|',
                    'add|element|inet|popek|guest_taps|{ "tap01234567-89" }|']
    proc, said = run("release")
    assert proc.returncode == 0 and said == ['delete|element|inet|popek|guest_taps|{ "tap5adb3aee-21" }|',
                                              'delete|element|inet|popek|guest_taps|{ "tap01234567-89" }|']
    for op in ("start", "stopped"):
        assert run(op)[1] == []


def test_a_refused_add_never_fails_the_guests_start_and_is_logged(hook):
    state, run, tmp = hook
    (tmp / "nft-fails").touch()
    proc, said = run("prepare")
    assert proc.returncode == 0 and len(said) == 2
    log = Path(state.log("fence-hook")).read_text()
    assert "tap5adb3aee-21 not added to the fence's set guest_taps" in log and "No such file or directory" in log
