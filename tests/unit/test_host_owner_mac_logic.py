"""The pure logic of tests/integration/test_host_owner_guest_mac.py: the link-local address a MAC gives (EUI-64), as
busybox's ping prints it, for the guest's spoofed MAC and for the host's tap (libvirt: fe + the guest's MAC)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import test_host_owner_guest_mac as mac  # noqa: E402


def test_a_macs_link_local_address_is_eui64_compressed():
    assert mac.link_local("fe:16:3e:19:dc:73") == "fe80::fc16:3eff:fe19:dc73"   # the host's tap, measured 20:24
    assert mac.link_local("02:00:00:00:0a:01") == "fe80::ff:fe00:a01"           # the spoofed MAC, measured 20:24
    assert mac.link_local("fa:16:3e:00:00:01") == "fe80::f816:3eff:fe00:1"


def test_the_guests_script_sets_the_spoofed_mac_and_reports_both_pings():
    assert f"address {mac.SPOOFED};" in mac.USER_DATA and "SPOOFED" not in mac.USER_DATA
    assert mac.USER_DATA.startswith("#!/bin/sh\n") and "hG3 done" in mac.USER_DATA
