"""Its guests reach nothing beyond the cloud — also a guest whose root changes its MAC address (a student's guest:
`ip link set eth0 address …`).

The fence (checks/localcloud/fence.py) drops what enters the host from the cloud's bridges and from Neutron's MAC
prefix fa:16:3e; with the netdev datapath a guest's frames also enter the host's own stack on its tap, and the tap
is in no set of the fence. A tiny guest on `private` runs a user-data script: ping6 to all nodes (ff02::1) on its
link with its Neutron MAC, then with 02:00:00:00:0a:01. The host's tap answers from its link-local address
(fe80::fc16:3eff:feXX:XXXX, from the tap's MAC fe:16:3e:…) iff the host's stack talks with the guest: then any
service of the machine listening on [::] is reachable from the guest over IPv6 link-local.

Measured 2026-12-07 20:24 (hG3, flock -s, 37 s): Neutron's MAC: no answer; spoofed MAC: « fe80::fc16:3eff:fe19:dc73 »
answered (tap9b624d10-9d, the host); again 20:35 in 21 s (« fe80::fc16:3eff:fe47:cee3 »). It failed until 8cd19f7: the fence's set guest_taps (popek's QEMU hook
adds each guest's taps before it runs; every apply lists popek-int's ports); passed 2026-12-07 21:01 (hWm, flock -x). Opt-in
(boots a guest, ~40 s): POPEK_SLOW_FAULTS=1, a shared hold.
"""
from __future__ import annotations

import base64
import ipaddress
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults import slow  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("une instance démarrée pour changer son adresse MAC (~40 s)", " (sous flock -s)")]

GUEST = "popek-hG3-macspoof"
SPOOFED = "02:00:00:00:0a:01"
USER_DATA = r"""#!/bin/sh
e=$(ls /sys/class/net | grep -v '^lo$' | head -1)
p() { (ping6 -c 3 -w 5 "ff02::1%$e" || ping -6 -c 3 -w 5 "ff02::1%$e") 2>&1 | grep 'bytes from' | awk '{print $4}' | sort -u | tr '\n' ' '; }
echo "hG3 real-mac $(cat /sys/class/net/$e/address): $(p)" > /dev/console
ip link set "$e" down; ip link set "$e" address SPOOFED; ip link set "$e" up; sleep 3
echo "hG3 spoofed-mac $(cat /sys/class/net/$e/address): $(p)" > /dev/console
echo "hG3 done" > /dev/console
""".replace("SPOOFED", SPOOFED)


def link_local(mac: str) -> str:
    """The EUI-64 link-local address of `mac`, as ping prints it (fe80::fc16:3eff:fe19:dc73)."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 2
    groups = [f"{b[0] << 8 | b[1]:x}", f"{b[2] << 8 | 0xff:x}", f"{0xfe << 8 | b[3]:x}", f"{b[4] << 8 | b[5]:x}"]
    return str(ipaddress.IPv6Address("fe80:0:0:0:" + ":".join(groups)))


def test_a_guest_that_changes_its_mac_gets_no_answer_from_the_hosts_stack(record_property):
    from helpers import running_cloud
    from popek.checks.cloud import compute
    from popek.checks.localcloud import bootstrap

    state = running_cloud(dataplane=True)
    conn = bootstrap.connect(state, "popek")
    image, flavor, net = conn.image.find_image("popek-tiny"), conn.compute.find_flavor("tiny"), conn.network.find_network("private")
    if not (image and flavor and net):
        pytest.skip("image popek-tiny, gabarit tiny ou réseau private absent")
    server = conn.compute.create_server(name=GUEST, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}],
                                        user_data=base64.b64encode(USER_DATA.encode()).decode())
    try:
        compute.wait_active(conn, server, 120)
        mac = next(iter(conn.network.ports(device_id=server.id))).mac_address
        tap_mac = "fe" + mac[2:]        # libvirt's tap: the guest's MAC with fe as first byte
        deadline, console = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "hG3 done" not in console:
            time.sleep(2)
            console = compute.console_log(conn, server, length=200)
        real = re.search(r"hG3 real-mac \S+: (.*)", console)
        spoofed = re.search(r"hG3 spoofed-mac \S+: (.*)", console)
        assert real and spoofed, f"le script de l'instance n'a pas abouti : {console[-800:]}"
        record_property("measured", f"real: {real.group(1)} | spoofed: {spoofed.group(1)} | host tap {link_local(tap_mac)}")
        assert link_local(SPOOFED) in spoofed.group(1), f"le ping6 de l'instance n'a pas tourné : {spoofed.group(0)}"
        assert link_local(tap_mac) not in real.group(1), f"l'hôte répond à l'instance (MAC de Neutron) : {real.group(0)}"
        assert link_local(tap_mac) not in spoofed.group(1), \
            f"l'hôte répond à l'instance qui a changé d'adresse MAC, par son tap : {spoofed.group(0)}"
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, interval=1, wait=120)
