"""The cloud's API requests while a command runs, counted by service, client and call (e.g. how many
`GET /servers/<id>` popek sends in the main job, and how many neutron requests nova makes for them).

`.venv/bin/python benchmarks/bench_requests.py [--top 40] -- .venv/bin/popek run -n 2 --no-cloud-up …`

A raw packet socket on the loopback interface (root), with a kernel filter, reads the TCP segments sent to the embedded cloud's
API ports (read from its port map, ports.json: keystone, nova, neutron, placement, glance, cinder, swift)
and keeps each HTTP request line with its User-Agent: openstacksdk/keystoneauth clients are popek's own
(its member and admin connections) unless the agent names an OpenStack service (nova's and neutron's
clients send theirs). Ids in paths (uuids, hex ids) become `<id>`. Nothing is sent and nothing of the cloud
is changed; the counts are requests seen on the wire (a request split before its User-Agent header is
counted with client "?"). Writes benchmarks/results/requests.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The embedded cloud's APIs: service name by key of its port map (checks/localcloud/state.py, ports.json).
API_KEYS = {"keystone": "keystone", "nova": "nova", "metadata": "nova-metadata", "neutron": "neutron",
            "placement": "placement", "glance": "glance", "cinder": "cinder", "swift": "swift"}
METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ")
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
PACKET_OUTGOING = 4


def api_ports(port_map: dict[str, int]) -> dict[int, str]:
    """Service name by TCP port, from the cloud's port map (a port moved at `up` is where its API listens)."""
    return {port_map[key]: name for key, name in API_KEYS.items()}


def cloud_ports() -> dict[int, str]:
    """The embedded cloud's API ports as its state records them (`CloudState.ports`: ports.json over the standard ones)."""
    from popek import paths
    from popek.checks.localcloud.state import CloudState

    return api_ports(CloudState(paths.embedded_cloud_dir()).ports)


def client_of(agent: str) -> str:
    """Who sent a request, from its User-Agent."""
    low = agent.lower()
    for service in ("nova", "neutron", "cinder", "glance", "keystonemiddleware"):
        if service in low:
            return service
    if "openstacksdk" in low or "keystoneauth" in low:
        return "popek"
    return agent.split("/")[0] or "?"


def shape(path: str) -> str:
    """The call without its ids and query values: `/v2.1/servers/<id>?a=<>`."""
    path = ID.sub("<id>", path)
    if "?" in path:
        base, query = path.split("?", 1)
        keys = sorted({part.split("=")[0] for part in query.split("&") if part})
        path = base + "?" + "&".join(f"{k}=" for k in keys)
    return path


def kernel_filter(ports) -> list[tuple[int, int, int, int]]:
    """A classic BPF program: keep only IPv4 TCP segments sent to one of `ports`, as received (not the
    loopback's outgoing copy), first 4 KiB. Without it this process reads every packet on lo (the database's,
    the bus's): measured 0.25 CPU-s per 20 s beside a main job, 0.12 with it (01:50, load 3.8-6.2)."""
    ports = list(ports)
    drop = 10 + len(ports)
    prog = [(0x20, 0, 0, 0xFFFFF004),            # ld pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
            (0x15, drop - 2, 0, PACKET_OUTGOING),  # the loopback's outgoing copy: drop
            (0x28, 0, 0, 12),                      # ldh ethertype
            (0x15, 0, drop - 4, 0x0800),           # IPv4 only
            (0x30, 0, 0, 23),                      # ldb IP protocol
            (0x15, 0, drop - 6, 6),                # TCP only
            (0x28, 0, 0, 20),                      # ldh flags + fragment offset
            (0x45, drop - 8, 0, 0x1FFF),           # a later fragment: drop
            (0xB1, 0, 0, 14),                      # x = IP header length
            (0x48, 0, 0, 16)]                      # ldh TCP destination port
    for i, port in enumerate(ports):
        pc = 10 + i
        prog.append((0x15, drop + 1 - (pc + 1), 0, port))
    prog += [(0x06, 0, 0, 0), (0x06, 0, 0, 4096)]  # drop, accept
    return prog


def open_sniffer(ports: dict[int, str]) -> socket.socket:
    """The raw socket on lo with its kernel filter (root or CAP_NET_RAW): opened before the command runs, so a
    refusal is an error of the benchmark, never a measurement of 0 requests."""
    import ctypes

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
    try:
        program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in kernel_filter(ports)))
        sock.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(program) // 8, ctypes.addressof(program)))
        sock.bind(("lo", 0))
    except BaseException:
        sock.close()
        raise
    return sock


def sniff(sock: socket.socket, stop: threading.Event, seen: list, ports: dict[int, str]) -> None:
    while True:  # what arrived before the filter was attached
        try:
            sock.recv(65535, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            frame, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING or len(frame) < 54 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        if ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        tcp = ip[ihl:]
        dport = struct.unpack("!H", tcp[2:4])[0]
        if dport not in ports:
            continue
        payload = tcp[(tcp[12] >> 4) * 4:]
        if not payload.startswith(METHODS):
            continue
        head = payload.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, path = (head[0].split(" ") + ["", ""])[:2]
        agent = next((line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("user-agent:")),
                     "?")
        seen.append((time.monotonic(), ports[dport], client_of(agent), method, shape(path)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=40, help="calls listed (most frequent first)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is needed")
    ports = cloud_ports()
    try:
        sock = open_sniffer(ports)
    except OSError as exc:
        print(f"bench_requests: cannot read the loopback's packets ({exc}): run it as root (CAP_NET_RAW); "
              "nothing measured", file=sys.stderr)
        return 2
    seen: list = []
    stop = threading.Event()
    thread = threading.Thread(target=sniff, args=(sock, stop, seen, ports), daemon=True)
    thread.start()
    started = time.monotonic()
    status = subprocess.call(command)
    wall = time.monotonic() - started
    stop.set()
    thread.join()
    sock.close()
    by_service = collections.Counter((s, c) for _, s, c, _, _ in seen)
    by_call = collections.Counter((s, c, m, p) for _, s, c, m, p in seen)
    print(f"\n{len(seen)} requests in {wall:.1f} s (exit {status})\n\n| service | client | requests |\n|---|---|---|")
    for (service, client), n in sorted(by_service.items(), key=lambda kv: -kv[1]):
        print(f"| {service} | {client} | {n} |")
    print("\n| service | client | call | requests |\n|---|---|---|---|")
    for (service, client, method, path), n in by_call.most_common(args.top):
        print(f"| {service} | {client} | `{method} {path}` | {n} |")
    out = HERE / "results" / "requests.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"command": command, "ports": {name: port for port, name in ports.items()}, "wall": wall, "exit": status, "total": len(seen),
                               "by_service": [[s, c, n] for (s, c), n in by_service.items()],
                               "by_call": [[s, c, m, p, n] for (s, c, m, p), n in by_call.items()]}, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
