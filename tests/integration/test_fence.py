"""The guests' fence (checks/localcloud/fence.py), for real: a guest of the embedded cloud reaches no port
of this host and nothing beyond the cloud, even with IP forwarding on.

A tiny guest boots on the course's shared network `public` (the host's gateway address is on that very
segment: the shortest way to the host there is). This test opens a TCP listener on 0.0.0.0, and an
"outside" of its own: a network namespace behind a veth, with a listener, reachable from the host, and
turns `net.ipv4.ip_forward` on (restored after), as on a VPN or router host. From the guest (over SSH):
every TCP port the host listens on outside loopback, the test's listener, and the outside listener are
tried at once. With the fence: none answers. Then, to prove the probe would see a leak, the fence is
lifted for a moment (the fence's watcher, fence-watch, frozen meanwhile): the same guest reaches this test's
listener on the host and the outside one; thawed, the watcher reads the deletion and puts the fence back, and the
same probes are shut again (the fence is put back as it was on any failure). Changes the host's forwarding and the fence for everyone: run it under
`flock -x /tmp/popek-cloud.lock`.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from popek.checks.cloud import traffic
from popek.checks.localcloud import fence, fence_watch, services

from helpers import frozen, running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

OUTSIDE_NET = ("10.254.77.1/30", "10.254.77.2/30")
GUEST_TIMEOUT = 3


@pytest.fixture(scope="module")
def dp_cloud():
    state = running_cloud(dataplane=True)
    from popek.checks.localcloud import bootstrap

    return state, bootstrap.connect(state, "popek")


class Listener:
    """A TCP listener on 0.0.0.0 in this process; records the peers that connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def outside(tmp_path):
    """A namespace `outside` behind a veth from the host, with a listener; the host forwards (ip_forward=1)."""
    tag = secrets.token_hex(3)
    ns, host_if, ns_if = f"popek-fence-{tag}", f"pfh{tag}", f"pfn{tag}"
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    before = forward.read_text().strip()
    peers = tmp_path / "outside-peers"
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    server = None
    try:
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", ns)
        run("ip", "addr", "add", OUTSIDE_NET[0], "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", OUTSIDE_NET[1], "dev", ns_if)
        run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", OUTSIDE_NET[0].split("/")[0])
        script = ("import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                  "s.bind(('0.0.0.0',8009));s.listen(8)\nwhile True:\n c,p=s.accept()\n"
                  f" open({str(peers)!r},'a').write(p[0]+'\\n');c.close()\n")
        server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", script])
        address = OUTSIDE_NET[1].split("/")[0]
        assert traffic.wait_until(lambda: traffic.tcp_open(address, 8009, 1), 10, 0.2), "outside listener"
        peers.unlink(missing_ok=True)
        forward.write_text("1\n")
        yield {"address": address, "port": 8009, "peers": peers}
    finally:
        forward.write_text(before + "\n")
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "delete", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


@pytest.fixture
def public_guest(dp_cloud):
    """A tiny guest on the shared network `public` (SSH-only group), with the key that opens it."""
    from popek.checks.cloud import compute, network, secgroups
    from popek.checks.cloud.ledger import Ledger, new_run_id

    _, conn = dp_cloud
    ledger = Ledger(conn, f"popek-{new_run_id()}-fence")
    try:
        private, public = compute.ssh_keypair()
        kp = compute.create_keypair(conn, ledger, public)
        sg, _ = secgroups.ssh_only_group(conn, ledger)
        image = conn.image.find_image("popek-tiny")
        assert image is not None, "image popek-tiny absente de Glance"
        server = compute.boot(conn, ledger, "server", image, conn.compute.find_flavor("tiny"),
                              network.external_network(conn), key_name=kp.name, security_groups=[sg.name])
        address = next(a["addr"] for addrs in conn.compute.get_server(server.id).addresses.values() for a in addrs
                       if a.get("version") == 4)
        user = compute.login_user(image)
        traffic.wait_ssh(address, user, private, timeout=240)
        yield {"address": address, "user": user, "key": private}
    finally:
        problems = ledger.cleanup()
        assert not problems, problems


def host_tcp_ports() -> list[int]:
    """TCP ports this host listens on beyond loopback (0.0.0.0, ::, or an address of its own)."""
    out = subprocess.run(["ss", "-Htln"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        local = line.split()[3]
        host, port = local.rsplit(":", 1)
        if not host.startswith(("127.", "[::1]", "[::ffff:127.")):
            ports.add(int(port))
    return sorted(ports)


def probe_from_guest(guest, targets: list[tuple[str, int]]) -> dict[str, bool]:
    """Connect from the guest to every (address, port) at once; "address:port" -> connected."""
    tries = " ".join(f"{a}:{p}" for a, p in targets)
    command = (f"for t in {tries}; do (a=${{t%:*}}; p=${{t##*:}}; if timeout {GUEST_TIMEOUT} nc $a $p </dev/null "
               f">/dev/null 2>&1; then echo open $t; else echo shut $t; fi) & done; wait")
    rc, out = traffic.ssh_run(guest["address"], guest["user"], guest["key"], command, timeout=GUEST_TIMEOUT + 15)
    seen = {t: verdict == "open" for verdict, t in (line.split() for line in out.splitlines() if line.count(" ") == 1)}
    assert set(seen) == {f"{a}:{p}" for a, p in targets}, out
    return seen


def _put_back(saved: str) -> None:
    """The fence exactly as `up` left it (its text from `nft list table`), in one transaction."""
    script = f"table inet {fence.TABLE}\ndelete table inet {fence.TABLE}\n{saved}"
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True)


def test_a_guest_reaches_no_host_port_and_nothing_beyond_the_cloud(dp_cloud, public_guest, outside):
    from popek.checks.localcloud import bootstrap

    assert fence.present(), "pas de table nftables inet popek : `popek cloud up` aurait dû la poser"
    saved = subprocess.run(["nft", "list", "table", "inet", fence.TABLE], capture_output=True, text=True,
                           check=True).stdout
    listener = Listener()
    gateway = bootstrap.PUBLIC_GATEWAY
    try:
        ports = sorted(set(host_tcp_ports()) | {listener.port})
        targets = [(gateway, p) for p in ports] + [(outside["address"], outside["port"])]
        before = fence.counters()
        fenced = probe_from_guest(public_guest, targets)
        after = fence.counters()
        guest_ip = public_guest["address"]
        peers_fenced = [p for p in list(listener.peers) + _lines(outside["peers"]) if p == guest_ip]
        report = {"guest": public_guest["address"], "fence": fenced, "refused packets": {
            k: after.get(k, 0) - before.get(k, 0) for k in after}}
        # The control: without the fence the same probes must see the leak, else they prove nothing (only
        # towards this test's own listeners: the host's other services are not this test's to knock on).
        own = [(gateway, listener.port), (outside["address"], outside["port"])]
        state, _ = dp_cloud
        watched = services.read_pid(state, fence_watch.SERVICE) is not None
        with (frozen(state, fence_watch.SERVICE) if watched else contextlib.nullcontext()):
            fence.remove()   # the watcher (frozen) would put it back at once
            try:
                open_ = probe_from_guest(public_guest, own)
            finally:
                thawed = time.monotonic()
                if not watched:
                    _put_back(saved)
        # thawed, the watcher reads the deletion it missed and puts the fence back: the same probes are shut again
        back = traffic.wait_until(fence.present, 10, 0.01) and time.monotonic() - thawed
        if not fence.present():
            _put_back(saved)
        refenced = probe_from_guest(public_guest, own)
        report["no fence (control)"] = open_
        report["fence put back by fence-watch"] = {"after s": back, "probes": refenced}
        report["peers seen by the listeners (fence, control)"] = [peers_fenced, list(listener.peers)
                                                                  + _lines(outside["peers"])]
        print(json.dumps(report, indent=1))
        assert not any(fenced.values()), f"reachable from the guest through the fence: {fenced}"
        assert peers_fenced == [], peers_fenced
        assert open_[f"{gateway}:{listener.port}"], "control: the host's listener not reached even without fence"
        assert open_[f"{outside['address']}:{outside['port']}"], "control: outside not reached even without fence"
        assert guest_ip in listener.peers and guest_ip in _lines(outside["peers"])
        assert after.get("refused_input", 0) > before.get("refused_input", 0)
        assert after.get("refused_forward", 0) > before.get("refused_forward", 0)
        assert not watched or back, "fence-watch n'a pas remis la clôture en 10 s"
        assert not any(refenced.values()), f"reachable from the guest after the watcher's put-back: {refenced}"
    finally:
        listener.close()
        if not fence.present():
            _put_back(saved)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
