"""popek's Open vSwitch leaves the machine's own alone: its ovs-vswitchd runs without the kernel datapath
provider (`--disable-system`), so it cannot see — nor delete — a kernel datapath.

Why it matters: at each reconfiguration ovs-vswitchd deletes every datapath of every provider it knows that
is no bridge of its own database (bridge.c, bridge_delete_ofprotos). With the kernel provider registered,
popek's ovs-vswitchd would delete `ovs-system`, the kernel datapath of a student's own Open vSwitch
(DevStack, a networking lab), and cut the owner's bridges. This machine has no OVS kernel module, so the
proof is what the running daemon says it supports (the `datapath_types` it publishes in its database:
`[netdev, system]` without the option, measured 2026-12-07) — read-only, under a second.
"""
from __future__ import annotations

import subprocess

import pytest

from helpers import running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


def test_popeks_ovs_vswitchd_knows_no_kernel_datapath():
    from popek.checks.localcloud import dataplane

    state = running_cloud(dataplane=True)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", **dataplane.ovs_env(state)}
    got = subprocess.run(["ovs-vsctl", "--timeout=10", "get", "Open_vSwitch", ".", "datapath_types"],
                         capture_output=True, text=True, timeout=30, env=env)
    assert got.returncode == 0, got.stderr
    types = got.stdout.strip().strip("[]").replace(" ", "").split(",")
    assert "netdev" in types, f"ovs-vswitchd de popek sans datapath netdev : {got.stdout.strip()}"
    assert "system" not in types, (f"ovs-vswitchd de popek connaît le datapath du noyau ({got.stdout.strip()}) : "
                                   "il supprimerait le datapath ovs-system d'un Open vSwitch de la machine")
