"""The embedded cloud's TCP ports on 127.0.0.1, chosen at `up` so that the owner's own servers never block it.

At the first `up` each service keeps its standard port (state.PORTS) when it is free on 127.0.0.1, else takes
a free one outside the range the kernel hands out to outgoing connections (ip_local_port_range: a port in it
may be taken by any client at any moment). The map is recorded in the state directory (ports.json) before
anything binds it, and every user reads it (`CloudState.ports`). At a later `up` a recorded port that someone
else took meanwhile moves again, the same way; a port held by the cloud's own running service is not "taken",
and a port that moved stays where it is once its squatter is gone (the student's openrc and clouds.yaml stay
right). A repair (`up` on a running cloud) moves a dead service's port the same way, and restarts every running
process that reads it (`readers`). popek never touches the squatter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

#: Where a moved port is first sought: its standard one plus this (keystone 5000 -> 15000), then upwards.
OFFSET = 10000
#: Below this, ports are the well-known ones of the system's own servers: a moved port never goes there.
LOWEST = 1024
EPHEMERAL_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Linux's default, when the file cannot be read.
EPHEMERAL_DEFAULT = (32768, 60999)


def ephemeral_range(path: Path = EPHEMERAL_FILE) -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (inclusive)."""
    try:
        low, high = (int(x) for x in path.read_text().split()[:2])
    except (OSError, ValueError):
        return EPHEMERAL_DEFAULT
    return (low, high) if 0 < low <= high < 65536 else EPHEMERAL_DEFAULT


def candidates(standard: int, ephemeral: tuple[int, int]):
    """Ports to try for a service whose port is taken: standard + OFFSET upwards, wrapping to LOWEST,
    never the standard port itself, never one of the ephemeral range."""
    low, high = ephemeral
    start = standard + OFFSET if standard + OFFSET < 65536 else LOWEST
    span = 65536 - LOWEST
    for i in range(span):
        port = LOWEST + (start - LOWEST + i) % span
        if port != standard and not low <= port <= high:
            yield port


def choose(standard: dict[str, int], recorded: dict[str, int], taken: Callable[[int], str | None],
           ephemeral: tuple[int, int], ours: set[str] = frozenset(),
           taken_by_key: dict[str, Callable[[int], str | None]] | None = None) -> tuple[dict[str, int], list[tuple]]:
    """The port of each key of `standard`, and the moves [(key, old port, new port, holder of the old)].

    recorded: the map of an earlier `up` (missing keys: their standard port); taken(port): who holds it
    (None: free), or taken_by_key[key](port) for a key given there (epmd's: ::1 too); ours: the keys whose
    port the cloud's own running service holds (kept, never probed).
    A key keeps its recorded port when free; else it moves to the first free candidate (`candidates`) that
    no other key of the map uses (nor any standard port of the map's: a service not moved yet may still
    want it). Pure: `taken` is the only contact with the host."""
    current = {key: recorded.get(key, port) for key, port in standard.items()}
    reserved = set(current.values()) | set(standard.values())
    chosen: dict[str, int] = {}
    moves = []
    for key, port in current.items():
        held = (taken_by_key or {}).get(key, taken)
        who = None if key in ours else held(port)
        if who is None:
            chosen[key] = port
            continue
        new = next((p for p in candidates(standard[key], ephemeral)
                    if p not in reserved and held(p) is None), None)
        if new is None:
            raise ValueError(f"aucun port libre pour {key}")
        reserved.add(new)
        chosen[key] = new
        moves.append((key, port, new, who))
    return chosen, moves


def say(moves: list[tuple]) -> list[str]:
    """One French line per move: « keystone : 5000 occupé par le processus 42 (python3), pris 15000 »."""
    return [f"{key} : {old} occupé par {who}, pris {new}" for key, old, new, who in moves]


#: The process of the cloud that listens on each key of the map.
OWNER = {"keystone": "keystone", "glance": "glance-api", "placement": "placement-api", "nova": "nova-api",
         "metadata": "nova-api", "neutron": "neutron-api", "cinder": "cinder-api", "swift": "swift-proxy",
         "swift-account": "swift-account", "swift-container": "swift-container", "swift-object": "swift-object",
         "rabbitmq": "rabbitmq", "rabbitmq-dist": "rabbitmq", "epmd": "epmd", "openflow": "neutron-openvswitch-agent"}
#: Processes that reach no port of the map but their own (keystone reads only its database; the swift
#: storage servers, the host's daemons of the dataplane and the fence's watcher none).
READ_NONE = frozenset({"mariadb", "epmd", "keystone", "swift-account", "swift-container", "swift-object",
                       "ovsdb-server", "ovs-vswitchd", "libvirtd", "fence-watch"})
#: Processes whose only port of the map, besides their own, is keystone's (their [keystone_authtoken]).
READ_KEYSTONE = frozenset({"placement-api", "glance-api", "swift-proxy"})
SWIFT_STORAGE = frozenset({"swift-account", "swift-container", "swift-object"})
#: The keys whose port every OpenStack process may reach (its configuration, or keystone's catalog); the others
#: (epmd's, rabbitmq's distribution port, the swift storage servers', OpenFlow's) only their owner and one reader.
WIDE = frozenset({"keystone", "rabbitmq", "glance", "placement", "nova", "metadata", "neutron", "cinder", "swift"})


def readers(moved: set[str], names: list[str]) -> list[str]:
    """The processes of `names` that must start again once the keys `moved` have a new port, in the order
    of `names`: each key's owner (OWNER); for keystone's key, every process that authenticates (its
    configuration names the old port); for rabbitmq's or an API's behind the catalog, every other
    OpenStack process (their transport_url, or the catalog their keystone session cached for up to a
    token's life: their next call would reach the old port, maybe with a token, whoever holds it now);
    for epmd's or rabbitmq's distribution port, rabbitmq; for a swift storage server's, swift-proxy (the
    rings). Pure data: a process of no table here (a dataplane's agent) counts as an OpenStack one."""
    need = {OWNER[k] for k in moved if k in OWNER}
    for name in names:
        if name in READ_NONE or name == "rabbitmq":
            continue
        if "keystone" in moved or (name not in READ_KEYSTONE and moved & WIDE):
            need.add(name)
    if moved & {"epmd", "rabbitmq-dist"}:
        need.add("rabbitmq")
    if moved & SWIFT_STORAGE:
        need.add("swift-proxy")
    return [n for n in names if n in need]
