"""The guests' fence: an nftables table of popek's own (`table inet popek`) in the host's network namespace.

What guests of the embedded cloud need from this host is nothing: their routers, DHCP servers and metadata
proxies live in Neutron's namespaces (qrouter-, qdhcp-), which reach nova's metadata API over a unix socket
(the metadata agent's), never through the host's addresses. The host itself only *opens* connections to
them (the runner's SSH and ping towards floating IPs, through its address on the external bridge). So:

- input: a packet that enters the host's own stack from the cloud — through one of its bridges (the host
  holds the public gateway address on the external one), or from a Neutron MAC address (a guest's frames
  also enter the host's stack as ingress on its tap, whose link-local IPv6 address is the host's) — is
  accepted only as part of a connection the host opened (conntrack established/related), else dropped;
- forward: nothing is routed from or to the cloud's bridges nor from a Neutron MAC address, even on a
  host with `net.ipv4.ip_forward=1` (a VPN, LXD, a router): the guests stay inside the cloud.

- guest_taps: with the netdev (userspace) datapath a guest's frames also enter the host's own stack as
  ingress on its tap, whatever MAC the guest's root gives itself (a guest that sets 02:00:00:00:0a:01 and
  pings ff02::1 was answered by the tap's link-local address: any host service on [::] was reachable).
  The taps of popek's guests are dropped in input and forward with NO established/related exception: the
  host never opens anything to a guest through its tap (the runner reaches guests through its address on
  the external bridge, Neutron's namespaces through their own ports). Members: popek's libvirt QEMU hook
  adds a guest's taps before the guest runs (`prepare`) and removes them at `release`; every apply
  re-creates the set with the ports of popek's own integration bridge that are links of the host
  (`guest_taps`), never by a name pattern (an owner's OpenVPN tap0 stays untouched).

Matching Neutron's MAC prefix and popek's bridge's own ports rather than tap names leaves the host's own
guests alone (libvirt's 52:54:00, a user's taps): the table touches nothing but traffic of the cloud. ARP is not IP (`inet`
does not see it), so the host still answers ARP for its gateway address and reaches floating IPs.

One transaction replaces the whole table (apply is idempotent); `remove` deletes it. The table is
popek's alone: no other table, chain or rule of the host is read or changed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

TABLE = "popek"
#: Neutron's default base_mac: every port it makes (guests, routers, DHCP) has this prefix.
NEUTRON_MAC_PREFIX = "fa:16:3e:00:00:00"
NEUTRON_MAC_MASK = "ff:ff:ff:00:00:00"
#: The package that brings `nft` (Debian).
APT = ("nftables",)


class FenceError(Exception):
    """nft refused the table (the message says why, in French)."""


#: The set of popek's guests' taps (the QEMU hook adds and removes its members by this name).
TAPS_SET = "guest_taps"
#: The longest interface name (nft refuses a longer ifname: "String exceeds maximum length of 16").
IFNAMSIZ = 15


def ruleset(bridges: tuple[str, ...], mac_prefix: str = NEUTRON_MAC_PREFIX, taps: tuple[str, ...] = ()) -> str:
    """The nft script that (re)creates `table inet popek` in one transaction.

    bridges: the cloud's interfaces in the host's namespace (its OVS bridges' internal ports);
    mac_prefix: Neutron's base MAC (ports of the cloud: guests, routers, DHCP), masked on its first 3 bytes;
    taps: popek's guests' taps that exist now (guest_taps); the hook adds those of guests started later.
    """
    if not bridges:
        raise ValueError("bridges: at least one interface of the cloud")
    names = ", ".join(json.dumps(b) for b in bridges)
    tap_elements = f"\n        elements = {{ {', '.join(json.dumps(t) for t in taps)} }}" if taps else ""
    neutron = f"ether saddr & {NEUTRON_MAC_MASK} == {mac_prefix}"
    # `table inet popek` then `delete table` first: creates it when absent, so the delete never fails;
    # the whole file is one transaction (no moment without the fence when it is replaced).
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    comment "popek: guests of the embedded cloud reach nothing of this host (popek cloud down removes it)"
    set cloud_ifaces {{
        type ifname
        elements = {{ {names} }}
    }}
    set {TAPS_SET} {{
        type ifname{tap_elements}
    }}
    chain input {{
        type filter hook input priority filter - 5; policy accept;
        iifname @{TAPS_SET} counter name refused_input drop
        iifname @cloud_ifaces ct state established,related accept
        iifname @cloud_ifaces counter name refused_input drop
        {neutron} ct state established,related accept
        {neutron} counter name refused_input drop
    }}
    chain forward {{
        type filter hook forward priority filter - 5; policy accept;
        iifname @{TAPS_SET} counter name refused_forward drop
        oifname @{TAPS_SET} counter name refused_forward drop
        iifname @cloud_ifaces counter name refused_forward drop
        oifname @cloud_ifaces counter name refused_forward drop
        {neutron} counter name refused_forward drop
    }}
    counter refused_input {{ }}
    counter refused_forward {{ }}
}}
"""


def available() -> bool:
    return shutil.which("nft") is not None


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["nft", *args], input=script, capture_output=True, text=True, timeout=30)


def guest_taps(bridge_ports: list[str], host_links: set[str], own: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The taps to fence: the ports of popek's integration bridge (`bridge_ports`: `ovs-vsctl list-ports`)
    that are links of the host's namespace (`host_links`; Neutron's router and DHCP ports live in their
    namespaces, patch ports are no links), minus popek's own bridges' names (`own`). Never a name pattern."""
    return tuple(sorted(p for p in set(bridge_ports) if p in host_links and p not in own and len(p) <= IFNAMSIZ))


def host_links() -> set[str]:
    """Names of the links of the host's network namespace."""
    try:
        return {p.name for p in Path("/sys/class/net").iterdir()}
    except OSError:
        return set()


def bridge_ports(ovs_rundir: str, bridge: str) -> list[str]:
    """`ovs-vsctl list-ports bridge` against the Open vSwitch whose run directory is `ovs_rundir` (popek's own);
    [] when it does not answer (the hook still adds each guest's taps as it starts)."""
    env = {**os.environ, "OVS_RUNDIR": ovs_rundir, "OVS_DBDIR": ovs_rundir}
    try:
        proc = subprocess.run(["ovs-vsctl", "--timeout=5", "list-ports", bridge], env=env, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return proc.stdout.split() if proc.returncode == 0 else []


def taps_now(ovs_rundir: str, bridge: str, own: tuple[str, ...]) -> tuple[str, ...]:
    """The guests' taps to fence now: guest_taps over the ports of `bridge` of the Open vSwitch at `ovs_rundir`
    (popek's integration bridge) and the host's links, minus `own` (the cloud's bridges)."""
    return guest_taps(bridge_ports(ovs_rundir, bridge), host_links(), own)


def apply(bridges: tuple[str, ...], mac_prefix: str = NEUTRON_MAC_PREFIX, taps: tuple[str, ...] = ()) -> str:
    """Put the fence in place (or replace it); returns the one line `up` prints. Raises FenceError."""
    if not available():
        raise FenceError("clôture des instances impossible : commande nft absente (paquet nftables)")
    proc = _nft("-f", "-", script=ruleset(bridges, mac_prefix, taps))
    if proc.returncode != 0:
        raise FenceError(f"clôture des instances refusée par nft : {proc.stderr.strip()[-400:]}")
    return (f"clôture des instances : table nftables inet {TABLE} en place — depuis {', '.join(bridges)} et les "
            "ports Neutron, seules les réponses aux connexions ouvertes par l'hôte entrent, rien n'est routé ; "
            f"rien n'entre par les taps des instances ({len(taps)} maintenant, le hook QEMU ajoute les suivants)")


def remove() -> bool:
    """Delete the table; True when there was one. Tolerates "already gone" and a missing nft."""
    if not available() or not present():
        return False
    return _nft("delete", "table", "inet", TABLE).returncode == 0


def present() -> bool:
    return reading() == PRESENT


PRESENT, ABSENT, UNREADABLE, NO_NFT = "present", "absent", "unreadable", "no-nft"


def reading() -> str:
    """What `nft list table inet popek` shows: PRESENT, ABSENT (nft says there is no such table), UNREADABLE
    (nft refused to read: without root it answers "Operation not permitted (you must be root)"; any other
    refusal is not evidence of absence either) or NO_NFT."""
    if not available():
        return NO_NFT
    proc = _nft("list", "table", "inet", TABLE)
    if proc.returncode == 0:
        return PRESENT
    return ABSENT if "No such file or directory" in proc.stderr else UNREADABLE


def counters() -> dict[str, int]:
    """Packets dropped so far: {"refused_input": n, "refused_forward": n} ({} without the table)."""
    proc = _nft("-j", "list", "counters", "table", "inet", TABLE) if available() else None
    if proc is None or proc.returncode != 0:
        return {}
    found = {}
    for item in json.loads(proc.stdout or "{}").get("nftables", []):
        counter = item.get("counter")
        if counter:
            found[counter["name"]] = int(counter.get("packets", 0))
    return found


def status(seen: str | None = None) -> str:
    """One French line for `popek cloud status`; seen: a reading() already made (else one is made)."""
    seen = seen or reading()
    if seen == NO_NFT:
        return "clôture des instances absente : commande nft absente (paquet nftables)"
    if seen == UNREADABLE:
        return (f"clôture des instances illisible sans root : nft refuse de lire la table inet {TABLE} à cet "
                "utilisateur ; `sudo popek cloud status` dit si elle est en place")
    if seen == ABSENT:
        return (f"clôture des instances ABSENTE : pas de table nftables inet {TABLE} (un `flush ruleset` du pare-feu "
                "de la machine la retire, p. ex. le rechargement de /etc/nftables.conf) ; les instances ne sont plus "
                "tenues à l'écart de l'hôte : `popek cloud up` la remet, sans toucher aux tables de la machine")
    c = counters()
    return (f"clôture des instances en place (table nftables inet {TABLE}) : "
            f"{c.get('refused_input', 0)} paquet(s) vers l'hôte et {c.get('refused_forward', 0)} à router refusés")
