"""`conntrack` as Neutron's Open vSwitch firewall needs it on the userspace datapath (issue #20).

Neutron's openvswitch firewall marks a connection that a removed rule no longer allows (ct_mark=1: every
later packet of it is dropped), then asks the kernel to forget it: `conntrack -D ... -m 1 -d <port's
address> -w <zone>`. On the userspace datapath (`datapath_type=netdev`, the only one on this machine) the
connections live in ovs-vswitchd, not in the kernel: that command finds nothing, and a marked connection
stays dropped for as long as its packets keep refreshing it. Measured on the embedded cloud: a `ping -e
4242` running while the ICMP rule was removed and added again got no answer for 28 s after the rule was
back (and as long as it ran), while a new ping passed at once; `ovs-appctl dpctl/dump-conntrack` showed
its entry `zone=2,mark=1`. With this shim in place, the same ping answered again 1.5 s after the rule was
back (54 replies in the next 27 s).

This script is installed as `conntrack` in the cloud's venv (first on the agents' PATH): it runs the real
tool unchanged, then, for a deletion in a zone (`-D ... -w ZONE`, what the firewall asks), removes the
same connections from ovs-vswitchd's conntrack (`dpctl/dump-conntrack zone=N`, each match flushed by its
own tuple, so that the port's other connections stay). Standard library only (run with `python -I -S`),
and no module a call does not need: the firewall runs it once per port and removed rule (~70 times in a
main job, 4.5 CPU-s), and `dataclasses` and `typing` made ~18 of each call's ~75 ms of CPU (measured).
"""
from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys

REAL = "/usr/sbin/conntrack"
#: conntrack's protocol names -> IP protocol numbers (neutron passes names or numbers)
#: the options of `conntrack -D` neutron passes -> one letter each
OPTIONS = {"-w": "w", "--zone": "w", "-p": "p", "--proto": "p", "-f": "f", "--family": "f", "-m": "m", "--mark": "m",
           "-s": "s", "--src": "s", "--orig-src": "s", "-d": "d", "--dst": "d", "--orig-dst": "d"}
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "dccp": 33, "gre": 47}


class Deletion:
    """What a `conntrack -D` command selects (None: any). src/dst: the original direction's addresses."""

    def __init__(self, zone: int, proto: int | None = None, family: int | None = None, mark: int | None = None,
                 src: object = None, dst: object = None):
        self.zone, self.proto, self.family, self.mark = zone, proto, family, mark  # family: 4 or 6
        self.src, self.dst = src, dst  # ipaddress networks

    def __repr__(self) -> str:
        return f"Deletion({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deletion) and vars(self) == vars(other)


def parse_deletion(argv: list[str]) -> Deletion | None:
    """The Deletion that `argv` (conntrack's arguments) asks for in a zone; None for anything else (a
    listing, a deletion without -w: the kernel's business only)."""
    if not argv or argv[0] not in ("-D", "--delete"):
        return None
    values: dict[str, str] = {}
    it = iter(argv[1:])
    for arg in it:
        key, value = OPTIONS.get(arg), next(it, None)
        if key is None or value is None:
            return None  # an option this translation does not know: the kernel's business alone
        values[key] = value
    if "w" not in values:
        return None
    try:
        proto = values.get("p")
        deletion = Deletion(zone=int(values["w"]))
        if proto is not None:
            deletion.proto = int(proto) if proto.isdigit() else PROTOCOLS[proto.lower()]
        if "f" in values:
            deletion.family = {"ipv4": 4, "ipv6": 6}[values["f"].lower()]
        if "m" in values:
            deletion.mark = int(values["m"], 0)
        if "s" in values:
            deletion.src = ipaddress.ip_network(values["s"], strict=False)
        if "d" in values:
            deletion.dst = ipaddress.ip_network(values["d"], strict=False)
    except (KeyError, ValueError):
        return None
    return deletion


_ENTRY = re.compile(r"^(?P<proto>[a-z0-9]+),orig=\((?P<orig>[^)]*)\),reply=\((?P<reply>[^)]*)\)(?P<rest>.*)$")


def parse_entry(line: str) -> dict | None:
    """One line of `ovs-appctl dpctl/dump-conntrack`, e.g. `icmp,orig=(src=A,dst=B,id=7,type=8,code=0),
    reply=(...),id=0,zone=2,status=0,mark=1`: {proto, orig: {...}, zone, mark}; None if unreadable."""
    m = _ENTRY.match(line.strip())
    if not m:
        return None
    fields = lambda text: dict(kv.split("=", 1) for kv in text.split(",") if "=" in kv)  # noqa: E731
    rest = fields(m.group("rest").lstrip(","))
    try:
        return {"proto": m.group("proto"), "orig": fields(m.group("orig")),
                "zone": int(rest.get("zone", "0")), "mark": int(rest.get("mark", "0"), 0)}
    except ValueError:
        return None


def selected(deletion: Deletion, entry: dict) -> bool:
    """Whether `deletion` selects `entry` (parse_entry)."""
    if entry["zone"] != deletion.zone:
        return False
    number = PROTOCOLS.get(entry["proto"])
    if deletion.proto is not None and number != deletion.proto:
        return False
    if deletion.mark is not None and entry["mark"] != deletion.mark:
        return False
    try:
        src = ipaddress.ip_address(entry["orig"]["src"])
        dst = ipaddress.ip_address(entry["orig"]["dst"])
    except (KeyError, ValueError):
        return False
    if deletion.family is not None and src.version != deletion.family:
        return False
    return ((deletion.src is None or src in deletion.src) and (deletion.dst is None or dst in deletion.dst))


def flush_tuple(entry: dict) -> str | None:
    """The original-direction tuple `dpctl/flush-conntrack` takes for `entry`; None if it cannot say it."""
    orig, number = entry["orig"], PROTOCOLS.get(entry["proto"])
    if number is None:
        return None
    six = ":" in orig.get("src", "")
    parts = [f"ct_{'ipv6' if six else 'nw'}_src={orig['src']}", f"ct_{'ipv6' if six else 'nw'}_dst={orig['dst']}",
             f"ct_nw_proto={number}"]
    if number in (1, 58):
        parts += [f"icmp_id={orig.get('id', 0)}", f"icmp_type={orig.get('type', 0)}", f"icmp_code={orig.get('code', 0)}"]
    elif "sport" in orig:
        parts += [f"ct_tp_src={orig['sport']}", f"ct_tp_dst={orig.get('dport', 0)}"]
    return ",".join(parts)


#: The `conntrack` that the cloud's venv puts first on its agents' PATH (their privsep daemons run it).
SHIM_TEXT = """#!/bin/sh
# popek: Neutron's conntrack deletions also reach ovs-vswitchd's userspace conntrack ({script})
exec {python} -I -S {script} {ctl} "$@"
"""


def install(venv_bin, python: str, ctl: str) -> None:
    """Write the `conntrack` shim into `venv_bin` (the cloud venv's bin directory, a pathlib.Path), run by
    `python`, for the ovs-vswitchd whose control socket is `ctl`; idempotent."""
    import shlex

    shim = venv_bin / "conntrack"
    text = SHIM_TEXT.format(python=shlex.quote(python), script=shlex.quote(os.path.abspath(__file__)),
                            ctl=shlex.quote(ctl))  # a state directory whose path has a space
    if not shim.exists() or shim.read_text() != text:
        fresh = shim.with_name("conntrack.popek-new")   # an agent never runs a half-written shim
        fresh.write_text(text)
        fresh.chmod(0o755)
        os.replace(fresh, shim)


def appctl(ctl: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ovs-appctl", "-t", ctl, *args], capture_output=True, text=True, timeout=20)


def forget_in_ovs(deletion: Deletion, ctl: str) -> int:
    """Flush from ovs-vswitchd's conntrack the entries `deletion` selects; how many were flushed."""
    dump = appctl(ctl, "dpctl/dump-conntrack", f"zone={deletion.zone}")
    flushed = 0
    for line in dump.stdout.splitlines():
        entry = parse_entry(line)
        tuple_ = flush_tuple(entry) if entry and selected(deletion, entry) else None
        if tuple_ and appctl(ctl, "dpctl/flush-conntrack", f"zone={deletion.zone}", tuple_).returncode == 0:
            flushed += 1
    return flushed


def main(ctl: str, argv: list[str]) -> int:
    """conntrack `argv` on the kernel, then on the ovs-vswitchd of control socket `ctl` (a zoned deletion)."""
    try:
        status = subprocess.call([REAL, *argv], timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:  # no conntrack tool on this host, or it hung
        print(f"conntrack: {REAL}: {exc}", file=sys.stderr)
        status = 1
    deletion = parse_deletion(argv)
    if deletion is not None and os.path.exists(ctl):
        try:
            flushed = forget_in_ovs(deletion, ctl)
        except (OSError, subprocess.SubprocessError):
            flushed = 0
        if flushed:
            print(f"{flushed} flow entries have been deleted from ovs-vswitchd (zone {deletion.zone}).",
                  file=sys.stderr)
            return 0
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
