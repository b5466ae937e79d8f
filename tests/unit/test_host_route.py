"""diagnosis.host_route_conflict: this host sends a floating IP to another device than the cloud's external bridge
(an owner's bridge, or a libvirt network, over part of the same addresses): named at once, from the host's own
routing table, instead of blaming the L3 agent after a minute. The routes are `ip -j route show match` as read
live (2026-12-07) with an owner's bridge holding 198.51.100.129/25 beside the embedded cloud's popek-ex."""
from __future__ import annotations

from popek.checks.cloud import diagnosis

ROUTES = [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0", "flags": []},
          {"dst": "198.51.100.0/24", "dev": "popek-ex", "protocol": "kernel", "scope": "link",
           "prefsrc": "198.51.100.1", "flags": []},
          {"dst": "198.51.100.128/25", "dev": "owner-br0", "protocol": "kernel", "scope": "link",
           "prefsrc": "198.51.100.129", "flags": ["linkdown"]}]


def test_a_more_specific_route_of_another_device_is_named():
    said = diagnosis.host_route_conflict("198.51.100.140", ["popek-ex"], ROUTES, "owner-br0")
    assert said.startswith("cet hôte envoie 198.51.100.140 par owner-br0 (route 198.51.100.128/25 linkdown), "
                           "pas par popek-ex, le pont du réseau externe du cloud (route 198.51.100.0/24)")


def test_a_sound_route_or_a_cloud_elsewhere_says_nothing():
    assert diagnosis.host_route_conflict("198.51.100.20", ["popek-ex"], ROUTES[:2], "popek-ex") is None
    assert diagnosis.host_route_conflict("198.51.100.140", [], ROUTES, "owner-br0") is None  # no embedded cloud
    # a remote cloud: only the default route covers the address, no bridge of ours does
    assert diagnosis.host_route_conflict("203.0.113.7", ["popek-ex"], ROUTES[:1], "eth0") is None


def test_the_host_route_stops_the_wait_at_once_whatever_the_guest_does():
    obs = diagnosis.Observer(ssh=lambda: "no-answer", console=lambda: "", status=lambda: ("ACTIVE", ""),
                             address="198.51.100.140",
                             host_route=lambda: diagnosis.host_route_conflict("198.51.100.140", ["popek-ex"], ROUTES,
                                                                              "owner-br0"))
    verdict = diagnosis.judge(obs, diagnosis.read_console(""), 0.0, None, None, None, "no-answer")
    assert verdict.component == "host-route"
    assert "par owner-br0" in str(verdict) and "ni l'instance ni les agents du cloud ne sont en cause" in str(verdict)
