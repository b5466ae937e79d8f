"""diagnosis.host_route_conflict / bridge_down: the cloud's external bridge on this host is down (`ip link set popek-ex
down`), its route gone with it: named at once from the host's own links, not blamed on the L3 agent (hF2's fault,
2026-12-07)."""
from __future__ import annotations

from popek.checks.cloud import diagnosis

from test_host_route import ROUTES


#: `ip -j addr show dev popek-ex` after `ip link set popek-ex down` (hF2, 2026-12-07): its address stays, its UP flag
#: and its connected route go (the kernel then sends the floating IPs by the default route).
DOWN = [{"ifname": "popek-ex", "flags": ["BROADCAST", "MULTICAST", "PROMISC"], "operstate": "DOWN",
         "addr_info": [{"family": "inet", "local": "198.51.100.1", "prefixlen": 24},
                       {"family": "inet6", "local": "fe80::4015:d7ff:fed6:4b41", "prefixlen": 64}]}]


def test_the_external_bridge_down_is_named_not_l3():
    said = diagnosis.host_route_conflict("198.51.100.85", ["popek-ex"], ROUTES[:1], "eth0", DOWN)
    assert said == ("cet hôte envoie 198.51.100.85 par eth0, pas par popek-ex, le pont du réseau externe du cloud "
                    "(198.51.100.1/24) : ce pont est à l'arrêt (ip link : pas de drapeau UP, état DOWN), sa route vers "
                    "198.51.100.0/24 a disparu avec lui")
    assert "nulle part (aucune route)" in diagnosis.bridge_down("198.51.100.85", ["popek-ex"], None, DOWN)


def test_a_bridge_up_or_one_that_does_not_hold_the_address_says_nothing():
    up = [{**DOWN[0], "flags": DOWN[0]["flags"] + ["UP", "LOWER_UP"], "operstate": "UNKNOWN"}]
    assert diagnosis.host_route_conflict("198.51.100.85", ["popek-ex"], ROUTES[:1], "eth0", up) is None
    assert diagnosis.host_route_conflict("203.0.113.7", ["popek-ex"], ROUTES[:1], "eth0", DOWN) is None
    assert diagnosis.host_route_conflict("198.51.100.85", ["other-ex"], ROUTES[:1], "eth0", DOWN) is None
    # the route through the bridge itself: the links are not even looked at
    assert diagnosis.host_route_conflict("198.51.100.20", ["popek-ex"], ROUTES[:2], "popek-ex", DOWN) is None
