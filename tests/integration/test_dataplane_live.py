"""The embedded cloud's real dataplane, for real: images that boot, Neutron agents that wire them, packets
that a security group blocks and lets through.

1. The tiny image boots under plain QEMU TCG (user-mode network, a metadata service served from this
   process through QEMU's guestfwd), takes its hostname, key and user data, and answers SSH.
2. On the embedded cloud in dataplane mode (skip otherwise, with the reason): the four Neutron agents are
   alive; a tiny guest on the member's private network behind the router gets a floating IP, answers
   SSH from this host with the injected key, reads its own id from 169.254.169.254; a security group
   without ICMP blocks ping, adding ICMP lets ping through while TCP/22 stays blocked once removed, and
   putting TCP/22 back lets SSH through again. "Blocked" is concluded only after the same guest was
   seen reachable (no false pass).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from popek import paths
from popek.checks.cloud import traffic
from popek.checks.localcloud import images
from popek.checks.localcloud.state import CloudState

from helpers import running_cloud

pytestmark = [pytest.mark.integration]


def _image_cache() -> CloudState:
    return CloudState(paths.embedded_cloud_dir()).image_cache


# --- 1. the tiny image under plain QEMU -----------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_image():
    cache = _image_cache()
    recipe = next(r for r in images.RECIPES if r.name == "popek-tiny")
    cached = cache / f"{recipe.slug}-{recipe.digest()}.qcow2"
    if not cached.exists() and os.geteuid() != 0:
        pytest.skip("image popek-tiny absente du cache et pas root pour la construire")
    return images.build_image("popek-tiny", cache, log=lambda line: None)


#: One HTTP exchange on stdin/stdout: QEMU's guestfwd runs it per guest connection (a `tcp:` target
#: would be one chardev connection for the guest's whole life).
ONE_SHOT_METADATA = """import json, sys
files = json.load(open(sys.argv[1]))
path = sys.stdin.buffer.readline().split()[1].decode().rstrip("/")
while sys.stdin.buffer.readline() not in (b"\\r\\n", b"\\n", b""):
    pass
body = files.get(path)
data = (body or "").encode()
head = "HTTP/1.0 %s\\r\\nContent-Length: %d\\r\\n\\r\\n" % ("200 OK" if body is not None else "404 Not Found", len(data))
sys.stdout.buffer.write(head.encode() + data)
sys.stdout.flush()
"""


def _metadata_command(tmp_path, files: dict[str, str]) -> str:
    import json
    import sys

    (tmp_path / "md.json").write_text(json.dumps(files))
    (tmp_path / "md.py").write_text(ONE_SHOT_METADATA)
    return f"{sys.executable} {tmp_path / 'md.py'} {tmp_path / 'md.json'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 absent")
def test_tiny_image_boots_to_ssh_under_qemu_tcg(tiny_image, tmp_path):
    from popek.checks.cloud import compute

    private, public = compute.ssh_keypair()
    metadata = _metadata_command(tmp_path, {
        "/latest/meta-data/instance-id": "i-popek-test",
        "/latest/meta-data/hostname": "tiny-under-test.novalocal",
        "/latest/meta-data/public-keys/0/openssh-key": public,
        "/latest/user-data": "#!/bin/sh\necho user-data-ran > /tmp/user-data-proof\n",
    })
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(tiny_image.path),
                    str(overlay)], check=True)
    port = _free_port()
    console = tmp_path / "console.log"
    net = (f"user,id=n0,net=169.254.169.0/24,host=169.254.169.1,dhcpstart=169.254.169.15,"
           f"guestfwd=tcp:169.254.169.254:80-cmd:{metadata},"
           f"hostfwd=tcp:127.0.0.1:{port}-:22")
    t0 = time.monotonic()
    qemu = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg,tb-size=64", "-m", "256", "-display", "none",
                             "-monitor", "none", "-serial", f"file:{console}",
                             "-drive", f"file={overlay},if=virtio", "-netdev", net,
                             "-device", "virtio-net-pci,netdev=n0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = traffic.wait_until(lambda: tiny_image.properties["popek_ready_marker"] in
                                   console.read_text(errors="replace") if console.exists() else False, 180, 0.2)
        took = time.monotonic() - t0
        assert ready, console.read_text(errors="replace")[-2000:]
        rc, out = _ssh_port_when_up(port, private)
        assert rc == 0, out
        assert out.split() == ["tiny-under-test", "user-data-ran", "N"], out
        print(f"tiny image: ready {took:.1f} s after QEMU started")
    finally:
        qemu.kill()
        qemu.wait()


def _ssh_port_when_up(port: int, private: str, timeout: float = 20.0) -> tuple[int, str]:
    """"ready" is printed at the end of the guest's sysinit, just before init starts dropbear: QEMU's
    hostfwd may accept a connection and reset it in that instant. Retry such resets a moment."""
    import paramiko

    deadline = time.monotonic() + timeout
    while True:
        try:
            return _ssh_port(port, private)
        except (paramiko.SSHException, OSError, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _ssh_port(port: int, private: str) -> tuple[int, str]:
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect("127.0.0.1", port=port, username="debian", pkey=traffic._pkey(private), timeout=15,
                       banner_timeout=15, auth_timeout=15, allow_agent=False, look_for_keys=False)
        _, stdout, stderr = client.exec_command(
            "hostname; cat /tmp/user-data-proof; cat /sys/module/virtio_net/parameters/csum", timeout=15)
        out = stdout.read().decode() + stderr.read().decode()
        return stdout.channel.recv_exit_status(), out
    finally:
        client.close()


# --- 2. the embedded cloud in dataplane mode ------------------------------------------------------

@pytest.fixture(scope="module")
def dp_cloud():
    state = running_cloud(dataplane=True)
    from popek.checks.localcloud import bootstrap

    return state, bootstrap.connect(state, "popek-admin"), bootstrap.connect(state, "popek")


@pytest.mark.cloud
def test_neutron_agents_are_alive(dp_cloud):
    _, admin, _ = dp_cloud
    agents = {a.agent_type: a.is_alive for a in admin.network.agents()}
    for kind in ("Open vSwitch agent", "DHCP agent", "L3 agent", "Metadata agent"):
        assert agents.get(kind) is True, agents


@pytest.fixture
def guest(dp_cloud):
    """A tiny guest on a routed project network with a floating IP and its own security group (ingress
    TCP/22 only), the private key that opens it; everything in a Ledger, deleted afterwards."""
    from popek.checks.cloud import compute, network, secgroups
    from popek.checks.cloud.ledger import Ledger, new_run_id

    _, _, conn = dp_cloud
    ledger = Ledger(conn, f"popek-{new_run_id()}-dp")
    try:
        private, public = compute.ssh_keypair()
        kp = compute.create_keypair(conn, ledger, public)
        sg, ssh_rule = secgroups.ssh_only_group(conn, ledger)
        external = network.external_network(conn)
        net, _ = network.routed_network(conn, ledger, external, cidr="10.79.0.0/24")
        image = conn.image.find_image("popek-tiny")
        assert image is not None, "image popek-tiny absente de Glance"
        t0 = time.monotonic()
        server = compute.boot(conn, ledger, "server", image, conn.compute.find_flavor("tiny"), net,
                              key_name=kp.name, security_groups=[sg.name])
        active_s = time.monotonic() - t0
        fip = network.associate(conn, network.create_floating_ip(conn, ledger, external),
                                network.server_port(conn, server))
        yield {"conn": conn, "ledger": ledger, "server": server, "fip": fip.floating_ip_address, "key": private, "sg": sg,
               "ssh_rule": ssh_rule, "user": compute.login_user(image), "t0": t0, "active_s": active_s}
    finally:
        problems = ledger.cleanup()
        assert not problems, problems


@pytest.mark.cloud
def test_floating_ip_ssh_metadata_and_security_group(guest):
    """Reachable first (SSH with the injected key, metadata from inside), then blocked/allowed."""
    from popek.checks.cloud import secgroups

    conn, addr, key, sg, user = guest["conn"], guest["fip"], guest["key"], guest["sg"], guest["user"]
    rc, out = traffic.wait_ssh(addr, user, key, timeout=240,
                               command="wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json")
    print(f"tiny guest: ACTIVE {guest['active_s']:.1f} s, SSH-ready {time.monotonic() - guest['t0']:.1f} s "
          "after create")
    assert rc == 0 and guest["server"].id in out, out
    # Proven reachable: from here on a timeout may be read as "blocked".
    assert not traffic.ping(addr, timeout=3), "ICMP passe sans règle ICMP"
    icmp = secgroups.add_rule(conn, guest["ledger"], sg, direction="ingress", ether_type="IPv4", protocol="icmp")
    assert traffic.wait_until(lambda: traffic.ping(addr, timeout=2), 20, 0.5), "ping bloqué malgré la règle ICMP"
    conn.network.delete_security_group_rule(guest["ssh_rule"])
    assert traffic.wait_until(lambda: not traffic.tcp_open(addr, 22, timeout=2), 20, 0.5), "SSH passe sans règle"
    assert traffic.ping(addr, timeout=3), "le ping devrait toujours passer"
    secgroups.add_rule(conn, guest["ledger"], sg, **secgroups.SSH_IN)
    assert traffic.wait_until(lambda: traffic.tcp_open(addr, 22, timeout=2), 20, 0.5), "SSH toujours bloqué"
    conn.network.delete_security_group_rule(icmp)
    assert traffic.wait_until(lambda: not traffic.ping(addr, timeout=2), 20, 0.5), "ping passe après retrait"


@pytest.mark.cloud
def test_a_stopped_guest_never_passes_a_negative_check(guest):
    """No false pass: the same negative checks the features use, against a guest first proven reachable,
    then stopped (SHUTOFF) — and against one whose QEMU was frozen while the API still says ACTIVE: each
    is refused as unprovable (GuestNotAlive), never reported "blocked"."""
    import signal as sig

    from popek.checks.cloud.traffic import GuestNotAlive, Liveness

    conn, addr, key, user, server = guest["conn"], guest["fip"], guest["key"], guest["user"], guest["server"]
    traffic.wait_ssh(addr, user, key, timeout=240)
    image = conn.image.find_image("popek-tiny")
    alive = Liveness(conn, server, (image.properties or {}).get("popek_heartbeat"))
    assert alive(), "the running guest's heartbeat is not seen through the console log"
    # 1. frozen guest, still ACTIVE for the API: only the heartbeat can tell
    pid = _qemu_pid_of(server.id)
    os.kill(pid, sig.SIGSTOP)
    try:
        with pytest.raises(GuestNotAlive):
            traffic.blocked(lambda: traffic.tcp_open(addr, 22, 2), alive, grace=10)
    finally:
        os.kill(pid, sig.SIGCONT)
    assert traffic.wait_until(lambda: traffic.tcp_open(addr, 22, 2), 30), "the guest did not come back"
    # 2. stopped guest
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=60)
    for probe in (lambda: traffic.tcp_open(addr, 22, 2), lambda: traffic.ping(addr, 2)):
        with pytest.raises(GuestNotAlive):
            traffic.blocked(probe, alive, grace=10)


def _qemu_pid_of(server_id: str) -> int:
    """The QEMU process running the server (its -uuid argument)."""
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*-uuid {server_id}"], capture_output=True, text=True).stdout
    pids = [int(p) for p in out.split()]
    assert len(pids) == 1, f"QEMU of {server_id}: {pids}"
    return pids[0]


# --- 3. the tap flags race of userspace OVS, and the hook that repairs it ----------------------------

TUNSETIFF, TUNSETPERSIST, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x400454CB, 0x0002, 0x1000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP, IFF_PROMISC = 0x8913, 0x8914, 0x1, 0x100
RACE_TAP = "tappopekrace"


def _tap_flags(sock) -> int:
    import fcntl
    import struct

    return struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH", RACE_TAP.encode(), 0)))[1]


def _plug_like_nova(state, sock) -> int:
    """nova/os-vif's order on the netdev datapath: the OVS port row first (delegate_create), then the
    tap made and set up at once by ioctl, as libvirt does. Returns the tap's flags 0.5 s later."""
    import fcntl
    import struct

    from popek.checks.localcloud import dataplane

    dataplane._vsctl(state, "--may-exist", "add-port", dataplane.INT_BRIDGE, RACE_TAP, check=False)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", RACE_TAP.encode(), IFF_TAP | IFF_NO_PI))
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)
    fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", RACE_TAP.encode(), _tap_flags(sock) | IFF_UP))
    time.sleep(0.5)
    return _tap_flags(sock)


def _unplug(state) -> None:
    from popek.checks.localcloud import dataplane

    dataplane._vsctl(state, "--if-exists", "del-port", dataplane.INT_BRIDGE, RACE_TAP, check=False)
    subprocess.run(["ip", "link", "delete", RACE_TAP], capture_output=True)


@pytest.mark.cloud
def test_the_qemu_hook_puts_back_up_a_tap_that_ovs_set_down(dp_cloud, record_property, tmp_path):
    """The root cause of guests without DHCP: ovs-vswitchd, adding a port whose row exists before its
    tap, writes back the tap's stale flags (without UP) with PROMISC. Reproduced here many times over;
    the installed libvirt hook's text, run as libvirt runs it at a guest's start (its log kept apart from
    the cloud's, which counts real guests' repairs), leaves every tap up and logs each repair."""
    from popek.checks.localcloud import dataplane

    state = dp_cloud[0]
    assert dataplane.qemu_hook_path(state).read_text() == dataplane.qemu_hook_text(state)
    repairs = tmp_path / "tap-repair.log"
    hook = tmp_path / "qemu"
    hook.write_text(dataplane.qemu_hook_text(state, seconds=5, log=repairs))
    hook.chmod(0o755)
    xml = f"<domain><devices><interface type='ethernet'><target dev='{RACE_TAP}'/></interface></devices></domain>"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    set_down, after_hook = 0, []
    try:
        for _ in range(15):
            flags = _plug_like_nova(state, sock)
            if not flags & IFF_UP:
                set_down += 1
                assert flags & IFF_PROMISC, f"{flags:#x}: down but not by OVS's PROMISC write"
            subprocess.run([str(hook), "instance-race", "started", "begin", "-"], input=xml,
                           text=True, check=True, timeout=10)
            time.sleep(1.5)
            after_hook.append(_tap_flags(sock))
            _unplug(state)
    finally:
        _unplug(state)
        sock.close()
    record_property("taps set down by OVS (of 15)", set_down)
    assert all(f & IFF_UP for f in after_hook), [hex(f) for f in after_hook]
    logged = repairs.read_text().splitlines() if repairs.exists() else []
    assert len(logged) >= set_down, logged
