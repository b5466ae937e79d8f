"""A good guest on the user's machine (issue #18): a host that runs its own libvirtd with a VM of its own,
its own bridge, its own network namespace and the router namespace of another Neutron (a DevStack) keeps
them, and every file, link, namespace, setting, user, loop device, firewall rule, mount and enabled service
it had, through popek's `up` and `down`. The host's libvirt also has virt-manager's "default" network active
(virbr0, 192.168.122.0/24, its dnsmasq, its iptables rules, net.ipv4.ip_forward=1) with a second VM of the
owner's on it that gets its address from that dnsmasq and answers ping from the host through popek's up,
run and down.

The host's world is real: Debian's libvirtd and virtlogd started from the system's own configuration
(/etc/libvirt, /run/libvirt), a tiny QEMU TCG domain booting a 1 MiB boot sector, attached to a Linux
bridge of the host's; a network namespace of the host's. A snapshot of the machine is taken before `up`
and after `down` and must be equal; during `up` the host's VM must be the same QEMU process and popek's
guests must be invisible to the host's libvirt.

The test stops the shared cloud when it runs, so it runs on its own only when the cloud is down (CI runs it
before its `popek cloud up`), or when asked for with POPEK_CLOUD_DOWN_TEST=1 (it then brings the cloud
back). `.ci/run` also wraps its whole run, traffic scenarios included, in the same snapshot:

    python tests/integration/test_good_guest.py host-up            # the host's libvirtd, VM, bridge, netns
    python tests/integration/test_good_guest.py snapshot FILE      # the machine, as JSON
    python tests/integration/test_good_guest.py compare A B        # exit 1 and the differences if any
    python tests/integration/test_good_guest.py host-check [WAIT]  # the owner's DHCP VM: lease, ping
    python tests/integration/test_good_guest.py host-down          # what host-up made, gone
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

HOST_URI = "qemu:///system"  # the machine's own libvirtd (its /run/libvirt/libvirt-sock)
HOST_VM, HOST_BRIDGE, HOST_NETNS = "good-guest-vm", "ggbr0", "good-guest-ns"
#: A router namespace of another Neutron of the machine's (a DevStack, a lab), with its `qr-` port: popek's L3
#: agent deleted it at its first sync until l3_guard.py (measured 2026-12-07).
HOST_ROUTER_NS, HOST_ROUTER_PORT, HOST_ROUTER_PEER = \
    "qrouter-0e0e0e0e-1111-2222-3333-444444444444", "qr-0e0e0e0e-11", "gg-qr-peer"
HOST_DISK = Path("/var/lib/libvirt/images/good-guest-vm.img")
#: virt-manager's network (Debian's libvirt-daemon-config-network), and a VM of the owner's on it that asks its
#: dnsmasq for an address: a copy of popek's tiny image (outside popek's state directory: it is the owner's now)
HOST_NET, HOST_NET_BRIDGE, HOST_NET_XML = "default", "virbr0", Path("/usr/share/libvirt/networks/default.xml")
HOST_DHCP_VM = "good-guest-dhcp"
HOST_DHCP_DISK = Path("/var/lib/libvirt/images/good-guest-dhcp.qcow2")
HOST_DHCP_CONSOLE = Path("/var/lib/libvirt/images/good-guest-dhcp.console")
HOST_DHCP_VM_XML = f"""<domain type='qemu'>
  <name>{HOST_DHCP_VM}</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{HOST_DHCP_DISK}'/>
      <target dev='vda' bus='virtio'/></disk>
    <interface type='network'><source network='{HOST_NET}'/><model type='virtio'/>
      <driver><host csum='off'/><guest csum='off'/></driver></interface>
    <serial type='file'><source path='{HOST_DHCP_CONSOLE}'/><target port='0'/></serial>
  </devices>
</domain>"""
HOST_VM_XML = f"""<domain type='qemu'>
  <name>{HOST_VM}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{HOST_DISK}'/>
      <target dev='hda' bus='ide'/></disk>
    <interface type='bridge'><source bridge='{HOST_BRIDGE}'/><model type='e1000'/></interface>
    <interface type='network'><source network='{HOST_NET}'/><model type='e1000'/></interface>
  </devices>
</domain>"""
STATE_FILE = Path("/run/popek-good-guest.json")  # what host-up started, for host-down


# --- the host's own world --------------------------------------------------------------------------

def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120, input=input)


def _pid(path: str) -> int | None:
    try:
        pid = int(Path(path).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run("virsh", "-c", HOST_URI, *args, check=check)


def install_packages(log=print) -> None:
    """The host's packages before the first snapshot: the owner's libvirt (the owner installs it: apt may
    upgrade the machine's packages for it; on a fresh machine of this kind libvirt-daemon-system brings
    systemd-container and upgrades systemd's packages, apt's history of 2026-12-07 07:24), then what popek's
    own `up` would install on first use, as `up` installs it: refused if apt would upgrade a package of the
    machine's (review F3: CI must meet the refusal a student's `popek cloud up` meets, not hide it). Between
    the two snapshots only popek's up and down act."""
    from popek.checks.localcloud import apt, dataplane, images, install

    # on a machine without systemd, the sysv flavour (apt's first choice would bring systemd in)
    sysv = ["libvirt-daemon-system-sysv"] if apt.missing(["systemd-sysv"]) else []
    apt.install(["libvirt-daemon-system", *sysv, "qemu-system-x86"], log=log, upgrades_ok=True)
    apt.install([*install.APT_PACKAGES, *dataplane.DATAPLANE_APT, *images.IMAGE_BUILD_APT], log=log)


def host_up(log=print) -> dict:
    """Debian's libvirt-daemon-system (through popek's apt helper: no service started by the install),
    its virtlogd and libvirtd started from the system's configuration, the host's VM on the host's bridge,
    the host's namespace. Returns (and records) what was started here."""
    install_packages(log)
    try:  # a host-up before this one: what it made stays to be removed
        made = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        made = {"daemons": [], "vm": False, "bridge": False, "netns": False}
    made.setdefault("router_ns", False)
    made.setdefault("ip_forward", Path("/proc/sys/net/ipv4/ip_forward").read_text().strip())
    made.setdefault("nft_tables", _nft_tables())
    try:  # written down even when a step fails: host_down removes what was made
        if _pid("/run/virtlogd.pid") is None:
            _run("/usr/sbin/virtlogd", "-d")
            made["daemons"].append("/run/virtlogd.pid")
        if _pid("/run/libvirtd.pid") is None:
            _run("/usr/sbin/libvirtd", "-d")
            made["daemons"].append("/run/libvirtd.pid")
        deadline = time.monotonic() + 60
        while _virsh("version", check=False).returncode != 0:
            assert time.monotonic() < deadline, "le libvirtd de l'hôte ne répond pas"
            time.sleep(0.5)
        if "gg-owner" not in _run("nft", "list", "tables").stdout.split():
            # the owner's own table: its VMs on virbr0 reach no link-local address beyond the host (the tiny image
            # asks 169.254.169.254 for metadata; through libvirt's NAT that would be the uplink's)
            _run("nft", "-f", "-", input="table inet gg-owner {\n chain forward {\n  type filter hook forward priority "
                 "filter - 10; policy accept;\n  iifname \"virbr0\" ip daddr 169.254.0.0/16 reject\n }\n}\n")
            made["owner_table"] = True
        if _virsh("net-info", HOST_NET, check=False).returncode != 0:
            _virsh("net-define", str(HOST_NET_XML))
            made["net_defined"] = True
        if "yes" not in _virsh("net-info", HOST_NET).stdout.split("Active:", 1)[1].split("\n", 1)[0]:
            _virsh("net-start", HOST_NET)  # virbr0, its dnsmasq, its iptables rules, ip_forward=1
            made["net_started"] = True
        if _run("ip", "link", "show", HOST_BRIDGE, check=False).returncode != 0:
            _run("ip", "link", "add", HOST_BRIDGE, "type", "bridge")
            _run("ip", "link", "set", HOST_BRIDGE, "up")
            made["bridge"] = True
        if HOST_NETNS not in _run("ip", "netns", "list").stdout.split():
            _run("ip", "netns", "add", HOST_NETNS)
            made["netns"] = True
        if HOST_ROUTER_NS not in _run("ip", "netns", "list").stdout.split():
            _run("ip", "netns", "add", HOST_ROUTER_NS)
            made["router_ns"] = True
            _run("ip", "link", "add", HOST_ROUTER_PEER, "type", "veth", "peer", "name", HOST_ROUTER_PORT,
                 "netns", HOST_ROUTER_NS)
        if _virsh("dominfo", HOST_VM, check=False).returncode != 0:
            HOST_DISK.parent.mkdir(parents=True, exist_ok=True)
            disk = bytearray(1 << 20)
            # cli; hlt; jmp back to hlt: a boot sector that sleeps forever (a `jmp $` would burn a core under TCG)
            disk[0:4], disk[510:512] = b"\xfa\xf4\xeb\xfd", b"\x55\xaa"
            HOST_DISK.write_bytes(bytes(disk))
            xml = STATE_FILE.with_suffix(".xml")
            xml.write_text(HOST_VM_XML)
            _virsh("define", str(xml))
            xml.unlink()
            made["vm"] = True
        if HOST_VM not in _virsh("list", "--name").stdout.split():
            _virsh("start", HOST_VM)
        tiny = _popek_tiny_image() or _build_tiny_image(log)
        if _virsh("dominfo", HOST_DHCP_VM, check=False).returncode != 0:
            shutil.copyfile(tiny, HOST_DHCP_DISK)
            HOST_DHCP_CONSOLE.unlink(missing_ok=True)
            xml = STATE_FILE.with_suffix(".xml")
            xml.write_text(HOST_DHCP_VM_XML)
            _virsh("define", str(xml))
            xml.unlink()
            made["dhcp_vm"] = True
        if made.get("dhcp_vm") and HOST_DHCP_VM not in _virsh("list", "--name").stdout.split():
            _virsh("start", HOST_DHCP_VM)
    finally:
        STATE_FILE.write_text(json.dumps(made))
    _settle()
    return made


def _build_tiny_image(log=print) -> Path:
    """popek's tiny image, built into popek's image cache (outside the cloud's state directory: what `up`
    builds first and then finds there), for the owner's DHCP VM on a fresh machine: without it the DHCP-VM
    part of the good-guest check would not run at all (F4). Raises when it cannot be built."""
    from popek import paths
    from popek.checks.localcloud import images
    from popek.checks.localcloud.state import CloudState

    cache = CloudState(paths.embedded_cloud_dir()).image_cache
    cache.mkdir(parents=True, exist_ok=True)
    return images.build_image("popek-tiny", cache, log=log).path


def _popek_tiny_image() -> Path | None:
    """popek's tiny image from its build cache (the owner's DHCP VM boots a copy of it), None when not built."""
    from popek import paths
    from popek.checks.localcloud.state import CloudState

    found = sorted(CloudState(paths.embedded_cloud_dir()).image_cache.glob("popek-tiny-*.qcow2"),
                   key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _nft_tables() -> list[str]:
    return sorted(l for l in _run("nft", "list", "tables", check=False).stdout.splitlines() if l.strip())


def host_dhcp_address(timeout: float = 0.0) -> str | None:
    """The address the owner's DHCP VM holds from the default network's dnsmasq (its lease for the VM's MAC),
    waiting up to `timeout` s; None when it has none."""
    deadline = time.monotonic() + timeout
    while True:
        macs = [l.split()[-1] for l in _virsh("domiflist", HOST_DHCP_VM, check=False).stdout.splitlines()
                if HOST_NET in l.split()]
        leases = [l.split() for l in _virsh("net-dhcp-leases", HOST_NET, check=False).stdout.splitlines()]
        found = [l[4].split("/")[0] for l in leases if len(l) > 4 and macs and l[2] == macs[0]]
        if found or time.monotonic() >= deadline:
            return found[-1] if found else None
        time.sleep(1)


def host_dhcp_vm_answers() -> bool:
    """The owner's DHCP VM answers ping from the host through virbr0."""
    address = host_dhcp_address()
    return address is not None and _run("ping", "-n", "-c", "2", "-W", "2", address, check=False).returncode == 0


def _settle(timeout: float = 20.0) -> None:
    """Wait until the host's new links are settled (IPv6 duplicate address detection over, their local
    routes in place), so that a snapshot taken now is not the middle of the host's own setup."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = (_links(), _text("ip", "route", "show", "table", "all"))
        if now == last and not _run("ip", "-6", "-o", "addr", "show", "tentative").stdout.strip():
            return
        last = now
        time.sleep(1)


def host_down() -> None:
    """Remove what host_up made (its record), the host's daemons it started last."""
    try:
        made = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return
    if made.get("vm"):
        _virsh("destroy", HOST_VM, check=False)
        _virsh("undefine", HOST_VM, check=False)
        HOST_DISK.unlink(missing_ok=True)
    if made.get("dhcp_vm"):
        _virsh("destroy", HOST_DHCP_VM, check=False)
        _virsh("undefine", HOST_DHCP_VM, check=False)
        HOST_DHCP_DISK.unlink(missing_ok=True)
        HOST_DHCP_CONSOLE.unlink(missing_ok=True)
    if made.get("net_started"):
        _virsh("net-destroy", HOST_NET, check=False)
    if made.get("net_defined"):
        _virsh("net-undefine", HOST_NET, check=False)
    if made.get("net_started"):
        _forget_libvirt_firewall(made.get("nft_tables"))
    if made.get("owner_table"):
        _run("nft", "delete", "table", "inet", "gg-owner", check=False)
    if "ip_forward" in made:  # libvirt turns it on with a NAT network and leaves it on
        Path("/proc/sys/net/ipv4/ip_forward").write_text(made["ip_forward"] + "\n")
    if made.get("netns"):
        _run("ip", "netns", "delete", HOST_NETNS, check=False)
    if made.get("router_ns"):
        _run("ip", "netns", "delete", HOST_ROUTER_NS, check=False)  # its veth goes with it
        _run("ip", "link", "delete", HOST_ROUTER_PEER, check=False)
    if made.get("bridge"):
        _run("ip", "link", "delete", HOST_BRIDGE, check=False)
    for pidfile in reversed(made.get("daemons", [])):
        pid = _pid(pidfile)
        if pid is not None:
            os.kill(pid, 15)
            for _ in range(100):
                if _pid(pidfile) is None:
                    break
                time.sleep(0.1)
    STATE_FILE.unlink(missing_ok=True)


def _forget_libvirt_firewall(tables_before: list[str] | None) -> None:
    """The iptables(-nft) tables that libvirt's network made and that were not there before host_up: deleted
    when all they hold is libvirt's (its LIBVIRT_* chains and the jumps to them); libvirt leaves them after
    net-destroy."""
    if tables_before is None:
        return
    for table in set(_nft_tables()) - set(tables_before):
        family, name = table.split()[1:3]
        text = _run("nft", "list", "table", family, name, check=False).stdout
        rules = [l.strip() for l in text.splitlines()
                 if l.strip() and not l.strip().startswith(("table ", "chain ", "type ", "policy ", "}"))]
        if "LIBVIRT_" in text and all("LIBVIRT_" in r or r.startswith(("ip", "meta", "counter", "tcp", "udp",
                                                                          "oifname", "iifname", "ct "))
                                      for r in rules):
            _run("nft", "delete", "table", family, name, check=False)


def host_vm_qemu() -> tuple[int, str] | None:
    """(pid, start time) of the host VM's QEMU, from the host libvirt's own pid file."""
    pid = _pid(f"/run/libvirt/qemu/{HOST_VM}.pid")
    return (pid, _start(pid)) if pid else None


# --- the snapshot ----------------------------------------------------------------------------------

def _start(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _daemons() -> list[str]:
    """Long-lived processes of the machine (parent: init) running a program of its filesystem, as
    "pid start command"; zombies left out, and programs run from an anonymous or deleted file (a tool
    harness's memfd: nothing popek could start or kill is one)."""
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or fields[1] != "1":
                continue
            exe = os.readlink(entry / "exe")
            if not exe.startswith("/") or exe.startswith("/memfd:") or exe.endswith(" (deleted)"):
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
        except (OSError, IndexError):
            continue
        rows.append(f"{entry.name} {fields[19]} {cmd.strip()}")
    return sorted(rows)


def _tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
                if p.is_symlink():
                    out[str(p)] = "-> " + os.readlink(p)
                elif p.is_dir():
                    out[str(p)] = f"dir {st.st_mode & 0o7777:o}"
                else:
                    out[str(p)] = f"{st.st_mode & 0o7777:o} " + hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            except OSError:
                continue
    return out


def _sysctls() -> dict[str, str]:
    out = {}
    dirs = ["/proc/sys/net/ipv4", "/proc/sys/net/ipv4/conf/all", "/proc/sys/net/ipv4/conf/default",
            "/proc/sys/net/ipv6/conf/all", "/proc/sys/net/ipv6/conf/default", "/proc/sys/net/bridge",
            "/proc/sys/net/netfilter"]
    for d in dirs:
        for f in sorted(Path(d).glob("*")) if Path(d).is_dir() else []:
            if f.is_file() and not f.name.endswith(("_count", "flush")) and f.name not in ("nf_conntrack_count",):
                try:
                    out[str(f)[len("/proc/sys/"):].replace("/", ".")] = f.read_text().strip()
                except OSError:
                    continue
    return out


def _links() -> dict[str, str]:
    links = json.loads(_run("ip", "-j", "-d", "link", "show").stdout or "[]")
    addrs = {a["ifname"]: sorted(f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", []))
             for a in json.loads(_run("ip", "-j", "addr", "show").stdout or "[]")}
    return {l["ifname"]: " ".join([l.get("linkinfo", {}).get("info_kind", "-"), str(l.get("mtu")),
                                   l.get("address", "-"), l.get("master", "-"),
                                   ",".join(sorted(f for f in l.get("flags", []) if f != "LOWER_UP")),
                                   *addrs.get(l["ifname"], [])])
            for l in links}


def _text(*argv: str) -> list[str]:
    if shutil.which(argv[0]) is None:
        return [f"({argv[0]} absent)"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    lines = [re.sub(r"counter packets \d+ bytes \d+", "counter", re.sub(r"\[\d+:\d+\]", "", l))
             for l in proc.stdout.splitlines() if l and not l.startswith("#")]
    return sorted(lines)


def snapshot() -> dict:
    """What popek could touch on the machine: long-lived processes, links (kind, flags, addresses),
    routes, namespaces, mounts, loop devices, every file of /etc and policy-rc.d, network sysctls,
    nftables and iptables rules, services enabled at boot; and the host VM's QEMU process."""
    from popek.checks.localcloud import apt

    mounts = sorted(l.split()[4] for l in Path("/proc/self/mountinfo").read_text().splitlines())
    vm = host_vm_qemu()
    return {
        "processes": _daemons(),
        "links": _links(),
        "routes": _text("ip", "route", "show", "table", "all"),
        "netns": sorted(l.split()[0] for l in _run("ip", "netns", "list").stdout.splitlines() if l.split()),
        "mounts": mounts,
        "loop devices": _text("losetup", "-l", "-n", "-O", "NAME,BACK-FILE"),
        "files": {**_tree_digest(Path("/etc")), "/usr/sbin/policy-rc.d": _file("/usr/sbin/policy-rc.d")},
        "sysctls": _sysctls(),
        "nft ruleset": _text("nft", "list", "ruleset"),
        "iptables": _text("iptables-save") + _text("ip6tables-save"),
        "enabled at boot": sorted(apt.enabled_links()),
        "host VM QEMU": f"{vm[0]} {vm[1]}" if vm else "absent",
        "host DHCP VM QEMU": _qemu_of(HOST_DHCP_VM),
        "host networks": _text("virsh", "-c", HOST_URI, "net-list", "--all") if _pid("/run/libvirtd.pid") else [],
    }


def _qemu_of(domain: str) -> str:
    pid = _pid(f"/run/libvirt/qemu/{domain}.pid")
    return f"{pid} {_start(pid)}" if pid else "absent"


def _file(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "absent"


def compare(before: dict, after: dict) -> dict[str, list[str]]:
    """{category: ["- what was there and is gone", "+ what is new", "~ key: old -> new"]}, only the
    categories that changed."""
    diff = {}
    for key in before.keys() | after.keys():
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        lines = []
        if isinstance(a, dict) and isinstance(b, dict):
            lines += [f"- {k}: {a[k]}" for k in sorted(a.keys() - b.keys())]
            lines += [f"+ {k}: {b[k]}" for k in sorted(b.keys() - a.keys())]
            lines += [f"~ {k}: {a[k]} -> {b[k]}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
        elif isinstance(a, list) and isinstance(b, list):
            lines += [f"- {x}" for x in a if x not in b] + [f"+ {x}" for x in b if x not in a]
        else:
            lines.append(f"~ {a} -> {b}")
        diff[key] = lines
    return diff


def summary(snap: dict) -> str:
    return ", ".join(f"{k}: {len(v) if isinstance(v, (list, dict)) else v}" for k, v in snap.items())


# --- the test ---------------------------------------------------------------------------------------

@pytest.fixture
def cloud_exclusive():
    """The shared cloud's lock, exclusive (this test stops the cloud); skipped when it stays held 15 min."""
    # imported here: run as a script (.ci/run's host-up, snapshot, compare) tests/ is not on the path
    from helpers import cloud_lock_exclusive

    with cloud_lock_exclusive(900, "le cloud partagé ne peut pas être arrêté"):
        yield


def test_a_hosts_own_libvirt_vm_bridge_and_namespace_survive_popeks_up_and_down(cloud_exclusive, record_property):
    from popek import paths
    from popek.checks.localcloud import dataplane, lifecycle
    from popek.checks.localcloud.state import CloudState

    if os.geteuid() != 0:
        pytest.skip("il faut être root (libvirtd de l'hôte, plan de données)")
    state = CloudState(paths.embedded_cloud_dir())
    mode, rows = lifecycle.status(state)
    was_up = any(r.pid for r in rows)
    if was_up and os.environ.get("POPEK_CLOUD_DOWN_TEST") != "1":
        pytest.skip("le cloud partagé tourne et ce test l'arrête : POPEK_CLOUD_DOWN_TEST=1 pour le lancer "
                    "(.ci/run fait la même vérification autour de son propre up/down)")
    host_up(log=lambda line: None)
    try:
        if was_up:
            lifecycle.down(state)
        qemu_conf = Path("/etc/libvirt/qemu.conf").read_bytes()
        dhcp = True  # the owner's DHCP VM: a copy of popek's tiny image (host_up builds it when absent)
        assert host_dhcp_address(timeout=120), "la VM DHCP de l'hôte n'a pas de bail du réseau default"
        before = snapshot()
        assert before["host VM QEMU"] != "absent", "la VM de l'hôte ne tourne pas"
        assert HOST_NET_BRIDGE in before["links"] and before["sysctls"]["net.ipv4.ip_forward"] == "1"
        lines: list[str] = []
        lifecycle.up(state, dataplane=True, log=lines.append)  # ends with a real guest's DHCP and metadata
        during = snapshot()
        answers_during = host_dhcp_vm_answers() if dhcp else None
        host_domains = sorted(_virsh("list", "--all", "--name").stdout.split())
        popek_domains = _run("virsh", "-c", dataplane.libvirt_uri(state), "list", "--all", "--name").stdout.split()
        popek_networks = _run("virsh", "-c", dataplane.libvirt_uri(state), "net-list", "--all", "--name").stdout.split()
        lifecycle.down(state)
        after = snapshot()
        answers_after = host_dhcp_vm_answers() if dhcp else None
        diff = compare(before, after)
        record_property("snapshot", summary(before))
        record_property("difference after up+down", json.dumps(diff, ensure_ascii=False))
        # during up: the host's VM is the same QEMU, its libvirt sees only its own domain
        assert during["host VM QEMU"] == before["host VM QEMU"]
        assert during["host DHCP VM QEMU"] == before["host DHCP VM QEMU"]
        assert host_domains == sorted([HOST_VM] + ([HOST_DHCP_VM] if dhcp else []))
        assert not {HOST_VM, HOST_DHCP_VM} & set(popek_domains) and HOST_NET not in popek_networks
        assert during["host networks"] == before["host networks"] and HOST_NET_BRIDGE in during["links"]
        assert answers_during is not False and answers_after is not False, \
            "la VM de l'hôte sur le réseau default ne répond plus au ping"
        assert HOST_BRIDGE in during["links"] and HOST_NETNS in during["netns"]
        assert HOST_ROUTER_NS in during["netns"], "le routeur (qrouter-) d'un autre Neutron de l'hôte a été supprimé"
        assert diff == {}, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in diff.items())
        assert Path("/etc/libvirt/qemu.conf").read_bytes() == qemu_conf
    finally:
        host_down()
        if was_up and not any(r.pid for r in lifecycle.status(state)[1]):
            lifecycle.up(state, dataplane=mode.get("dataplane", True), log=lambda line: None)


def test_the_snapshot_sees_what_popek_could_break(tmp_path):
    """The comparison is not blind: a link, a namespace, a file of /etc and a sysctl changed between two
    snapshots are each reported (the world where the test above must fail)."""
    before = snapshot()
    after = json.loads(json.dumps(before))
    after["links"].pop(next(iter(after["links"])))
    after["netns"].append("qrouter-0000")
    after["files"]["/etc/libvirt/qemu.conf"] = "600 0000"
    # the opposite of the host's value: an owner's libvirt "default" network (CI's host-up) already sets it to 1
    after["sysctls"]["net.ipv4.ip_forward"] = "0" if before["sysctls"].get("net.ipv4.ip_forward") == "1" else "1"
    diff = compare(before, after)
    assert set(diff) == {"links", "netns", "files", "sysctls"}
    assert diff["netns"] == ["+ qrouter-0000"] and diff["sysctls"][0].startswith("~ net.ipv4.ip_forward")


#: A process popek could have started: its state directory, its checkout, or a program the cloud runs.
POPEKS_PROCESS = re.compile(r"popek|qemu|libvirt|virtlog|ovs-|ovsdb|mariadb|mysqld|beam\.smp|epmd|rabbitmq|dnsmasq|"
                            r"haproxy|gunicorn|uwsgi|nova|neutron|cinder|swift|keystone|glance|placement|privsep|"
                            r"nft|losetup|unshare")


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "host-up":
        print(f"good guest: host libvirtd, VM {HOST_VM} on {HOST_BRIDGE}, netns {HOST_NETNS}: {host_up()}")
    elif cmd == "host-down":
        host_down()
    elif cmd == "host-check":  # the owner's DHCP VM: its lease from the default network, and ping
        address = host_dhcp_address(timeout=float(argv[2]) if len(argv) > 2 else 0)
        answers = host_dhcp_vm_answers()
        print(f"good guest: {HOST_DHCP_VM} lease {address}, ping {'ok' if answers else 'NO ANSWER'}; "
              f"host VM QEMU {host_vm_qemu()}, DHCP VM QEMU {_qemu_of(HOST_DHCP_VM)}")
        return 0 if answers else 1
    elif cmd == "snapshot" and len(argv) == 3:
        snap = snapshot()
        Path(argv[2]).write_text(json.dumps(snap, indent=1, sort_keys=True))
        print(f"good guest: snapshot {argv[2]}: {summary(snap)}")
    elif cmd == "compare" and len(argv) == 4:
        diff = compare(json.loads(Path(argv[2]).read_text()), json.loads(Path(argv[3]).read_text()))
        # A process that appeared and is not popek's (a program of the machine, e.g. the runner's own shell
        # reparented to init) is shown, not counted: only a process popek could have left is a difference.
        others = [l for l in diff.get("processes", []) if l.startswith("+ ") and not POPEKS_PROCESS.search(l)]
        if others:
            diff["processes"] = [l for l in diff["processes"] if l not in others]
            diff = {k: v for k, v in diff.items() if v}
            print("processes that appeared, not popek's (shown, not counted):\n  " + "\n  ".join(others))
        for key, lines in sorted(diff.items()):
            print(f"{key}:\n  " + "\n  ".join(lines))
        print(f"good guest: {sum(len(v) for v in diff.values())} difference(s) between {argv[2]} and {argv[3]}")
        return 1 if diff else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
