"""The embedded cloud's real dataplane: libvirt/QEMU guests on Open vSwitch, wired by the Neutron agents.

`lifecycle.up(state, dataplane=True)` calls the hooks of this module (contract in services.py):
`config_overrides` switches nova to libvirt/QEMU and neutron to the openvswitch mechanism driver with its
agents; `prepare` installs the packages, starts Open vSwitch and makes the external bridge; `services`
adds libvirtd, Open vSwitch and the Neutron agents to the process table; `smoke` boots the tiny image
and waits for its address and metadata; `teardown` removes what the processes leave behind (guests,
namespaces, bridges); `status` says why the dataplane runs or not.

A good guest on the user's machine (issue #18): nothing of the host's own is touched.
- libvirtd is popek's own instance: it runs in a mount namespace of its own (`unshare --mount`) where
  popek's directories under `<state>/libvirt/` replace /etc/libvirt, /run/libvirt, /var/lib/libvirt,
  /var/log/libvirt and /var/cache/libvirt, so its qemu.conf, hook, socket, domains and logs are popek's;
  nova reaches it at `libvirt_uri(state)`. A host libvirtd, its guests and its qemu.conf are never seen.
  No virtlogd or virtlockd is needed (`stdio_handler = "file"`, no lock manager); the `libvirt-qemu`
  user the QEMU driver resolves at start exists only in that namespace's /etc/passwd when the host has none.
- Links (bridges, the datapath port) are named popek's own and written down in `state.host_record`
  before they are made; a host link of the same name is refused with one message. `teardown` kills
  only the QEMUs running a disk of this cloud, deletes only the namespaces of this cloud's routers and
  networks (neutron's own records under its state path), only the links of the host record or of this
  cloud's Open vSwitch database, and only the loop devices of its volumes.
- `up` removes the ports of popek's bridges whose Neutron iface-id is no port of Neutron's database any
  more (an unplug that failed; ovs-vswitchd would make their device again in the host's namespace at each
  start), with that device: `clean_stale_ports`, before the agents start, and after an in-place repair.

Facts of this machine type, measured on it, that shaped it:
- no Open vSwitch kernel module: every bridge uses the userspace datapath (`datapath_type=netdev`);
  its checksum trap is defused in the guests (`virtio_net.csum=0 gso=0`, see images/shared.py);
- no dummy links, so no VXLAN: the public network is flat (physnet `public` on `br-ex`) and project
  networks are of type `local` (one host: every port is on br-int);
- no sudo, no systemd: root_helper is empty, the services that use oslo.privsep (the agents, nova-compute)
  run their privileged calls in-process (privsep_inproc.py: they run as root already, no privsep daemon),
  and the daemons run in the foreground under the process table, with their sockets under `<state>/ovs`;
- `/dev/kvm` here is PVM, thousands of times slower for guest kernels: nova uses `virt_type=qemu`
  (TCG) unless the host's kvm is real VT-x/AMD-V; QEMU's TCG translation cache is capped through
  nova's `[libvirt] tb_cache_size` (QEMU's default is 1 GiB per guest).

Everything stays on this machine: `br-ex` has no physical port; the host holds the public subnet's
gateway address on it (so it reaches floating IPs); the host's own IP forwarding stays off.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from popek.checks.cloud import compute
from popek.checks.secrets import REDACT
from popek.checks.localcloud import apt, bootstrap, fence, fence_watch, images, install, ovs_conntrack, runcmd
from popek.checks.localcloud import services as svcmod
from popek.checks.localcloud.config import mysql
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import HOST, CloudState

#: Debian packages of the dataplane (installed on demand by `prepare`, as root).
DATAPLANE_APT = (
    "openvswitch-switch", "dnsmasq-base", "dnsmasq-utils", "haproxy", "ipset", "iptables", "conntrack", "iproute2",
    "libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients", "qemu-system-x86", "qemu-utils",
    # libvirt-python is built from PyPI against the installed libvirt:
    "libvirt-dev", "pkg-config", "gcc",
    "nftables",  # the guests' fence (fence.py)
)
#: The Python binding nova's libvirt driver imports, pinned to the libvirt of Debian 12.
LIBVIRT_PYTHON = "libvirt-python==9.0.0"

PHYSNET = "public"
#: popek's own bridge names (br-int/br-ex are those of any Neutron or DevStack on the machine). The netdev
#: datapath's own port is named by Open vSwitch after the datapath type and cannot be renamed.
EXT_BRIDGE, INT_BRIDGE, DATAPATH_PORT = "popek-ex", "popek-int", "ovs-netdev"
#: the bridge names of popek before it had its own (taken out of its OVS database by `prepare`)
LEGACY_BRIDGES = ("br-int", "br-ex")
#: oslo.privsep contexts (config sections) of neutron's agents and of nova-compute (with os-vif, os-brick).
NEUTRON_PRIVSEP_SECTIONS = ("privsep", "privsep_dhcp_release", "privsep_ovs_vsctl", "privsep_namespace",
                            "privsep_conntrack", "privsep_link")
NOVA_PRIVSEP_SECTIONS = ("nova_sys_admin", "vif_plug_ovs_privileged", "vif_plug_linux_bridge_privileged",
                         "privsep_osbrick")
#: QEMU's TCG translation cache per guest, MiB (QEMU's default 1 GiB made a Debian guest reach 1.46 GB). A guest's
#: buffer stays resident as far as it was ever filled: a tiny guest's boot generates ~80 MB of code (77 MiB PSS).
#: 32 took 54 MiB off each tiny guest, but a Debian 13 boot flushed it ~200 times and needed 152 s from ACTIVE to
#: SSH; at 128, 13 flushes and 90 s (one run each, loadavg 5, 2026-12-06, issue #17).
TB_CACHE_MIB = 128
#: The OpenFlow port's standard number (the agent's of_listen_port: the cloud's map, `state.ports["openflow"]`).
OPENFLOW_PORT = 6633
#: libvirt's fixed directories, each replaced in popek's libvirtd's mount namespace by `<state>/libvirt/<key>`
#: (all that libvirtd 9.0 and its QEMU driver write as root: config, sockets and pid files, domain state,
#: logs, capabilities cache).
LIBVIRT_DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
                "log": "/var/log/libvirt", "cache": "/var/cache/libvirt"}
QEMU_CONF_TEXT = """# popek's own libvirtd (embedded cloud dataplane): this file is /etc/libvirt/qemu.conf only inside its
# mount namespace. No cgroups, no security driver, QEMU as root: this machine may have neither systemd nor
# the users and labels libvirt would otherwise need.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
# no virtlogd: libvirt writes QEMU's logs and the serial console log itself (nor virtlockd: no lock manager)
stdio_handler = "file"
"""
#: What popek wrote to the host's own /etc/libvirt/qemu.conf before it had its own libvirtd; `prepare` and
#: `teardown` put the host's back (its `.before-popek` copy, or no file when there was none).
LEGACY_QEMU_CONF = Path("/etc/libvirt/qemu.conf")
LEGACY_QEMU_CONF_TEXT = """# Written by popek (embedded cloud dataplane). No cgroups, no security driver, QEMU as root:
# this machine has neither systemd nor the users and labels libvirt would otherwise need.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
# no virtlogd here: libvirt writes QEMU's logs and the serial console log itself
stdio_handler = "file"
"""
LEGACY_QEMU_HOOK = Path("/etc/libvirt/hooks/qemu")
QEMU_HOOK_MARK = "# popek: guest tap re-up hook"
#: Why the hook: nova plugs every VIF with delegate_create, so os-vif writes the OVS port row before the tap
#: exists, and ovs-vswitchd (netdev datapath) grabs the tap the instant libvirt creates it. dpif-netdev's
#: do_add_port reads the tap's flags (still down), opens its rx socket, then turns PROMISC on by writing
#: back `cached flags | IFF_PROMISC` (netdev-linux.c update_flags). When libvirt's "link up" lands in that
#: window, OVS silently sets the tap down again and nothing ever sets it up: the guest never hears DHCP,
#: and ovs-vswitchd logs "Network is down" on every send for the guest's whole life (~1.4 % of boots here).
#: For the first seconds of a guest's life the hook puts its taps back up when they are found down, and
#: logs each repair. checks/cloud/compute.lease_or_reboot stays as the last resort, on any cloud.
#: The hook also gives a guest with more than one vCPU a higher CPU priority while it boots (BOOST_NICE for
#: BOOST_SECONDS, then the priority it had): QEMU's multi-threaded TCG runs each vCPU on a thread of its own,
#: and with the scheduler's autogroups (Debian's default) the QEMU process is one group that shares the CPU
#: equally with every other session (each embedded-cloud service, pytest), whatever its number of threads.
#: Measured in the main job (`-n 2`, 2 cores): the Debian 13 guest's two vCPU threads waited 42.8 s in the run
#: queue before cloud-init finished (15.8 s on an idle cloud), for the same ~50-55 CPU-s of QEMU work. At nice
#: -10 they waited 13.7-14.0 s and cloud-init finished at 48.1-49.6 s of uptime instead of 65.3 (idle: 48.6),
#: but what ran beside starved: the host scenario that watches a guest process use the CPU saw 9 % of a core
#: (< 10 %) and failed. -5 (3x a session's weight, shared by the vCPU threads): 27 s of wait, 57.5 s.
BOOST_NICE = -5
BOOST_SECONDS = 120
QEMU_HOOK_TEXT = """#!/bin/sh
{mark} (popek's own libvirtd: /etc/libvirt/hooks/qemu inside its mount namespace only)
# libvirt: $1 = domain, $2 = operation, domain XML on stdin. Must return at once; the watch runs detached.
# The guest's taps join the fence's set (fence.py, TAPS_SET) before the guest runs and leave it at release:
# nothing a guest sends on its tap enters the host's stack, whatever its MAC. Never fails the guest's start:
# a refusal is logged (the fence's watcher and the next `up` re-create the set from popek-int's ports).
case "$2" in
  prepare|release)
    for t in $(grep -o "<target dev=['\\"]tap[^'\\"]*" | cut -c14-); do
      if [ "$2" = prepare ]; then
        {nft} add element inet {table} {taps_set} "{{ \\"$t\\" }}" 2>>"{fence_log}" ||
          echo "$(date -u +%FT%TZ) $1: $t not added to the fence's set {taps_set} (nft refused, above)" >> "{fence_log}"
      else
        {nft} delete element inet {table} {taps_set} "{{ \\"$t\\" }}" 2>/dev/null
      fi
    done
    exit 0;;
esac
[ "$2" = started ] || exit 0
# libvirt gives hooks a clean environment: the watch carries the cloud's mark, so `down` finds it (services.ours)
[ -n "$POPEK_CLOUD" ] || exec env POPEK_CLOUD='{root}' /bin/sh "$0" "$@"
xml=$(cat)
# a guest with more than one vCPU boots at a higher priority (its scheduler autogroup's nice), then gets the
# one it had back; only that QEMU (its pid file, its command line naming the domain), nothing else
vcpus=$(printf '%s\\n' "$xml" | sed -n "s/.*<vcpu[^>]*>\\([0-9]*\\)<\\/vcpu>.*/\\1/p" | head -n 1)
pid=$(cat "{pids}/$1.pid" 2>/dev/null)
if [ "${{vcpus:-1}}" -gt 1 ] && [ -n "$pid" ] && grep -aq "guest=$1," "/proc/$pid/cmdline" 2>/dev/null; then
  was=$(sed -n 's/.* nice \\(-*[0-9]*\\)$/\\1/p' "/proc/$pid/autogroup" 2>/dev/null)
  if [ -n "$was" ] && echo {nice} > "/proc/$pid/autogroup" 2>/dev/null; then
    (
      sleep {boost}
      grep -aq "guest=$1," "/proc/$pid/cmdline" 2>/dev/null && echo "$was" > "/proc/$pid/autogroup"
    ) </dev/null >/dev/null 2>&1 &
  fi
fi
taps=$(printf '%s\\n' "$xml" | grep -o "<target dev=['\\"]tap[^'\\"]*" | cut -c14-)
[ -n "$taps" ] || exit 0
(
  i=0
  while [ $i -lt {polls} ]; do
    for t in $taps; do
      f=/sys/class/net/$t/flags
      [ -r "$f" ] || continue
      if [ $(( $(cat "$f") & 1 )) -eq 0 ] && ip link set "$t" up; then
        echo "$(date -u +%FT%TZ) $1: $t found down after libvirt set it up (OVS flags race): set up again" >> "{log}"
      fi
    done
    i=$((i + 1))
    sleep 0.5
  done
) </dev/null >/dev/null 2>&1 &
exit 0
"""


def ovs_dir(state: CloudState) -> Path:
    """Open vSwitch's database, sockets, pid files and logs for this cloud (not /var/run/openvswitch)."""
    return state.root / "ovs"


def ovs_env(state: CloudState) -> dict[str, str]:
    """Environment that points every OVS tool (ovs-vsctl, ovs-ofctl, libvirt's ovs-vsctl…) at our OVS."""
    d = ovs_dir(state)
    return {"OVS_RUNDIR": str(d), "OVS_DBDIR": str(d), "OVS_LOGDIR": str(d), "OVS_SYSCONFDIR": str(d)}


def ovsdb_socket(state: CloudState) -> str:
    return f"unix:{ovs_dir(state) / 'db.sock'}"


def libvirt_dir(state: CloudState, key: str = "") -> Path:
    """popek's libvirt directories: `<state>/libvirt/<key>` is `LIBVIRT_DIRS[key]` for its libvirtd."""
    return state.root / "libvirt" / key if key else state.root / "libvirt"


def libvirt_socket(state: CloudState) -> Path:
    return libvirt_dir(state, "run") / "libvirt-sock"


def libvirt_uri(state: CloudState) -> str:
    """The URI of popek's libvirtd (nova's `[libvirt] connection_uri`, `virsh -c`)."""
    return f"qemu+unix:///system?socket={libvirt_socket(state)}"


def _serving_libvirt_socket(state: CloudState) -> Path:
    """Where the running libvirtd of this cloud answers: popek's socket, or for a cloud started by a popek
    older than its own libvirtd (on the host's /run/libvirt) that one's, until its `down`."""
    import json

    try:
        argv = json.loads(state.pidfile("libvirtd").read_text()).get("argv", [])
    except (OSError, ValueError, AttributeError):
        argv = []
    return Path("/run/libvirt/libvirt-sock") if argv[:1] == ["/usr/sbin/libvirtd"] else libvirt_socket(state)


def qemu_hook_path(state: CloudState) -> Path:
    """The hook as the host sees it (libvirtd sees it as /etc/libvirt/hooks/qemu)."""
    return libvirt_dir(state, "etc") / "hooks" / "qemu"


def libvirtd_script(state: CloudState) -> Path:
    return libvirt_dir(state) / "libvirtd-namespace.sh"


def metadata_secret(state: CloudState) -> str:
    """The neutron metadata proxy's shared secret, derived from this install's neutron password."""
    secret = hmac.new(state.passwords()["neutron"].encode(), b"metadata-proxy", hashlib.sha256).hexdigest()[:32]
    REDACT.add(secret)
    return secret


def kvm_is_hardware() -> bool:
    """True only when /dev/kvm is backed by VT-x/AMD-V (the cpu flags say vmx/svm); PVM is not."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return os.path.exists("/dev/kvm") and (" vmx" in flags or " svm" in flags)


#: How long `up` waits in all for the registries' addresses (_addresses_the_host_needs). A DNS server the host
#: cannot reach (a full-tunnel VPN whose tunnel is down, a network that drops DNS) answers nothing: glibc gives up
#: on a name after 2 x 5 s, and three names one after the other added 30.1 s to every dataplane `up` (measured
#: 2026-12-07, hG3, a wg-quick-style rule to a dead tun link). A name not resolved by then is left out, as one that
#: does not resolve (the host could not reach it then anyway).
RESOLVE_WAIT = 3.0


def resolve_within(hosts: list[str], resolve, wait: float) -> dict[str, str]:
    """{host: address} for the `hosts` that `resolve(host) -> address` (raising OSError when it cannot) resolves
    within `wait` seconds in all: they are resolved side by side; a resolution still running then is left to
    finish in a daemon thread and its host left out."""
    import threading

    found: dict[str, str] = {}

    def one(host: str) -> None:
        try:
            found[host] = resolve(host)
        except (OSError, IndexError):
            pass

    threads = [threading.Thread(target=one, args=(h,), daemon=True, name=f"resolve {h}") for h in hosts]
    for t in threads:
        t.start()
    deadline = time.monotonic() + wait
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return {h: found[h] for h in hosts if h in found}


def _addresses_the_host_needs() -> dict[str, str]:
    """Addresses this host must keep reaching through its uplink: its registries (the Debian mirror,
    PyPI), its nameservers and its default gateway. name -> IPv4 address."""
    import socket
    from urllib.parse import urlparse

    hosts = ["pypi.org", "files.pythonhosted.org"]
    try:
        hosts.append(urlparse(images.machine_debian_mirror()).hostname)
    except images.ImageBuildError:
        pass
    needed = resolve_within(hosts, lambda h: socket.getaddrinfo(h, None, socket.AF_INET)[-1][4][0], RESOLVE_WAIT)
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            if line.startswith("nameserver"):
                needed[f"nameserver {line.split()[1]}"] = line.split()[1]
    except OSError:
        pass
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    if "via" in route:
        needed["default gateway"] = route[route.index("via") + 1]
    return needed


def check_public_cidr(cidr: str, needed: dict[str, str]) -> None:
    """Refuse a public network that would swallow an address the host needs (`needed`: name -> IPv4).

    The host gets an address on br-ex in `cidr`, hence a route: every packet for that range would go
    into the isolated bridge instead of the uplink."""
    import ipaddress

    net = ipaddress.ip_network(cidr, strict=False)
    clash = {name: addr for name, addr in needed.items() if ipaddress.ip_address(addr) in net}
    if clash:
        raise CloudError("plan de données : le réseau public " + str(net) + " contient des adresses dont l'hôte "
                         "a besoin (" + ", ".join(f"{n} = {a}" for n, a in clash.items()) + ") ; "
                         "changez PUBLIC_CIDR dans checks/localcloud/bootstrap.py")


def _host_routes() -> list[dict]:
    """`ip -j route show table main` of this host ([] when unreadable)."""
    import json

    try:
        return json.loads(subprocess.run(["ip", "-j", "route", "show", "table", "main"], capture_output=True,
                                         text=True).stdout or "[]")
    except ValueError:
        return []


#: Routes broader than this (0.0.0.0/1, 128.0.0.0/1…) are catch-alls that replace the default route, not networks.
CATCH_ALL_PREFIX = 8


def check_public_routes(cidr: str, routes: list[dict], bridge: str = EXT_BRIDGE) -> None:
    """Refuse a public network that overlaps a route of another interface of the host (`routes`: `ip -j route
    show`): an owner's bridge or libvirt network (virt-manager's virbr0 is 192.168.122.0/24), a VPN, Docker's
    bridges. Floating IPs there would go to that interface (or the owner's addresses to popek's bridge).

    A route inside the public network (or equal to it) clashes: it would take floating IPs. A broader one loses
    to popek's /24 by longest-prefix match, so it clashes only when it is on-link (no gateway: the owner's hosts
    may live in the public range on that interface) and is a real network, not a catch-all: a full-tunnel VPN's
    0.0.0.0/1 + 128.0.0.0/1 (OpenVPN's `redirect-gateway def1`), via a gateway or not, is no clash."""
    import ipaddress

    net = ipaddress.ip_network(cidr, strict=False)
    clash = []
    for r in routes:
        dst, dev = r.get("dst"), r.get("dev")
        if not dst or dst == "default" or dev == bridge:
            continue
        try:
            route = ipaddress.ip_network(dst, strict=False)
        except ValueError:  # an unusual destination: no IPv4 overlap
            continue
        if route.version != net.version or not route.overlaps(net):
            continue
        if not route.subnet_of(net):  # broader than the public network
            via_gateway = bool(r.get("gateway") or r.get("via") or r.get("nexthops"))
            if via_gateway or route.prefixlen < CATCH_ALL_PREFIX:
                continue
        clash.append(f"{dst} par {dev or '?'}")
    if clash:
        raise CloudError("plan de données : le réseau public " + str(net) + " chevauche une route de l'hôte ("
                         + ", ".join(clash) + ") : un pont, un réseau libvirt, un VPN ou Docker de cette machine "
                         "l'utilise déjà ; popek n'y touche pas : changez PUBLIC_CIDR dans checks/localcloud/bootstrap.py")


def public_gateway_cidr() -> str:
    """The public subnet's gateway as host address on br-ex, e.g. 203.0.113.1/24 (bootstrap's choice)."""
    return f"{bootstrap.PUBLIC_GATEWAY}/{bootstrap.PUBLIC_CIDR.split('/')[1]}"


# --- configuration ------------------------------------------------------------------------------

#: Cinder's driver in dataplane mode (checks/localcloud/loopvolume.py, installed in the cloud venv).
LOOP_VOLUME_DRIVER = "popek_loopvolume.LoopVolumeDriver"


def dnsmasq_conf(state: CloudState) -> Path:
    """dnsmasq's own configuration file for the DHCP agent (written by `prepare`)."""
    return state.etc("neutron") / "dnsmasq.conf"


#: dnsmasq drops root for `nobody` once started, then cannot read the hosts and options files neutron
#: writes under the state directory when that lies in a home directory of mode 0700 (/root on a fresh
#: Debian): it answers every DHCPDISCOVER "no address available" and no guest gets an address.
DNSMASQ_CONF = "# popek: neutron's dnsmasq keeps the identity it was started with (see dataplane.py)\nuser=root\ngroup=root\n"


def config_overrides(state: CloudState) -> dict:
    """nova on libvirt/QEMU with OVS VIFs, neutron with the openvswitch driver and its four agents."""
    etc = state.etc()
    db = ovsdb_socket(state)
    secret = metadata_secret(state)
    neutron_conf = str(etc / "neutron/neutron.conf")
    nova_conf = str(etc / "nova/nova.conf")
    ovs_common = {"ovsdb_connection": db, "integration_bridge": INT_BRIDGE, "datapath_type": "netdev"}
    # The agents and nova-compute run their privsep contexts in-process (privsep_inproc.py). A context of
    # another process would ask for root through sudo, which is not here: its helper is the venv's own.
    nova_helper = {"helper_command": f"{state.bin('privsep-helper')} --config-file {nova_conf}"}
    neutron_helper = {"helper_command": f"{state.bin('privsep-helper')} --config-file {neutron_conf}"}
    virt_type = "kvm" if kvm_is_hardware() else "qemu"
    return {
        "nova/nova.conf": {
            "DEFAULT": {
                "compute_driver": "libvirt.LibvirtDriver",
                # Real agents send network-vif-plugged: wait for it (a port not yet wired by the OVS
                # agent would lose the guest's first DHCP requests), but boot anyway after 60 s.
                "vif_plugging_is_fatal": False, "vif_plugging_timeout": 60,
                "force_config_drive": False,
                # keep Glance's qcow2 as the backing file (no conversion of a 2 GiB raw per image)
                "force_raw_images": False,
            },
            "libvirt": {
                "virt_type": virt_type, "tb_cache_size": TB_CACHE_MIB, "connection_uri": libvirt_uri(state),
                "images_type": "qcow2",
            },
            "neutron": {"service_metadata_proxy": True, "metadata_proxy_shared_secret": secret,
                        "ovs_bridge": INT_BRIDGE},
            "os_vif_ovs": {"ovsdb_connection": db, "ovsdb_interface": "native"},
            **{section: nova_helper for section in NOVA_PRIVSEP_SECTIONS},
        },
        # Volumes a libvirt guest can really attach: sparse files as loop devices (loopvolume.py). The
        # backend has its own name: volumes of the API-only mode's fake backend are not its own.
        "cinder/cinder.conf": {
            "DEFAULT": {"enabled_backends": "loop"},
            "loop": {"volume_driver": LOOP_VOLUME_DRIVER, "volume_backend_name": "loop"},
        },
        "neutron/neutron.conf": {
            # The agents' state reports go to the RPC worker too (ml2 consumes `q-reports-plugin` there):
            # a dedicated reports worker would be one more neutron process (84 MiB PSS, measured).
            "DEFAULT": {"rpc_workers": 1, "rpc_state_report_workers": 0},
            # The agents' RPC writes next to the API's made sqlite answer "database is locked" (HTTP 500 on
            # router create): neutron goes to the cloud's MariaDB, like nova (bootstrap.neutron_db_mariadb).
            "database": {"connection": mysql(state, "neutron", state.passwords()["mariadb_nova"])},
            "agent": {"root_helper": "", "root_helper_daemon": "", "report_interval": 10},
            "ovs": ovs_common,
            # oslo.privsep falls back to its own "sudo" prefix when root_helper is empty: a context not run
            # in-process needs the venv's helper, or its process dies on "No such file: 'sudo'".
            **{section: neutron_helper for section in NEUTRON_PRIVSEP_SECTIONS},
        },
        "neutron/plugins/ml2/ml2_conf.ini": {
            # Project networks are `local` (one host, no tunnels: no dummy links for VXLAN here). The vxlan
            # type stays loaded so that networks made in API-only mode remain readable (not bindable).
            "ml2": {"mechanism_drivers": "openvswitch", "type_drivers": "flat,local,vxlan",
                    "tenant_network_types": "local", "extension_drivers": "port_security"},
            "ml2_type_flat": {"flat_networks": PHYSNET},
            "securitygroup": {"enable_security_group": True, "firewall_driver": "openvswitch"},
        },
        "neutron/plugins/ml2/openvswitch_agent.ini": {
            "ovs": {**ovs_common, "bridge_mappings": f"{PHYSNET}:{EXT_BRIDGE}", "of_listen_address": HOST,
                    "of_listen_port": state.ports["openflow"]},
            "agent": {"tunnel_types": "", "l2_population": False},
            "securitygroup": {"enable_security_group": True, "firewall_driver": "openvswitch"},
        },
        "neutron/dhcp_agent.ini": {
            "DEFAULT": {"interface_driver": "openvswitch", "enable_isolated_metadata": True,
                        "dnsmasq_config_file": str(dnsmasq_conf(state)),
                        "force_metadata": True, "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq"},
            "ovs": ovs_common,
        },
        "neutron/l3_agent.ini": {
            "DEFAULT": {"interface_driver": "openvswitch", "agent_mode": "legacy"},
            "ovs": ovs_common,
        },
        "neutron/metadata_agent.ini": {
            "DEFAULT": {"nova_metadata_host": HOST, "nova_metadata_port": state.ports["metadata"],
                        "metadata_proxy_shared_secret": secret, "metadata_workers": 1},
        },
    }


# --- preparation ---------------------------------------------------------------------------------

#: Run one command of the dataplane's setup; on failure CloudError with the end of its output.
_run = functools.partial(runcmd.run, what="plan de données : ")


def _ensure_libvirt_python(state: CloudState) -> None:
    if subprocess.run([state.python, "-c", "import libvirt"], capture_output=True).returncode == 0:
        return
    install.venv_install(state.venv, [LIBVIRT_PYTHON], state.log("pip"), f"plan de données : {LIBVIRT_PYTHON}")


def _free_system_id(*files: Path) -> int:
    """A system id (below 1000) that no entry of the passwd/group `files` uses."""
    used = set()
    for f in files:
        for line in f.read_text().splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2].isdigit():
                used.add(int(parts[2]))
    return next(i for i in range(999, 100, -1) if i not in used)


def libvirtd_script_text(state: CloudState, own_passwd: bool) -> str:
    """The shell that `unshare --mount` runs: popek's directories over libvirt's fixed ones, then libvirtd.
    `own_passwd`: also this namespace's own /etc/passwd and /etc/group, with a `libvirt-qemu` entry."""
    lines = ["# popek: libvirtd in a mount namespace of its own; nothing mounted here is seen by the host",
             "set -e"]
    for key, target in LIBVIRT_DIRS.items():
        lines.append(f"mount --bind '{libvirt_dir(state, key)}' '{target}'")
    if own_passwd:
        for name in ("passwd", "group"):
            lines.append(f"mount --bind '{libvirt_dir(state, name)}' '/etc/{name}'")
    lines.append(f"exec /usr/sbin/libvirtd --pid-file='{libvirt_dir(state) / 'libvirtd.pid'}'")
    return "\n".join(lines) + "\n"


def _libvirt_tree(state: CloudState) -> None:
    """popek's libvirt directories, qemu.conf, hook and namespace script; the mount points libvirt's
    package did not make on this host are made here and written down (teardown removes them)."""
    for key, target in LIBVIRT_DIRS.items():
        libvirt_dir(state, key).mkdir(parents=True, exist_ok=True)
        if not Path(target).is_dir():
            missing = [p for p in [Path(target), *Path(target).parents] if not p.exists()]
            for d in reversed(missing):
                state.host_record.add("dir", str(d))
                d.mkdir()
    (libvirt_dir(state, "etc") / "qemu.conf").write_text(QEMU_CONF_TEXT)
    write_qemu_hook(state)
    # libvirt's QEMU driver resolves its default user before it reads qemu.conf (research: libvirt)
    own_passwd = any(subprocess.run(["getent", db, "libvirt-qemu"], capture_output=True).returncode != 0
                     for db in ("passwd", "group"))
    if own_passwd:
        passwd, group = Path("/etc/passwd"), Path("/etc/group")
        uid = _free_system_id(passwd, group)
        libvirt_dir(state, "passwd").write_text(
            passwd.read_text().rstrip("\n") + f"\nlibvirt-qemu:x:{uid}:{uid}::/var/lib/libvirt:/usr/sbin/nologin\n")
        libvirt_dir(state, "group").write_text(group.read_text().rstrip("\n") + f"\nlibvirt-qemu:x:{uid}:\n")
    libvirtd_script(state).write_text(libvirtd_script_text(state, own_passwd))


def _forget_legacy_host_setup() -> None:
    """Give the host back what popek wrote to its /etc/libvirt before it had its own libvirtd: its
    qemu.conf (the `.before-popek` copy, or none when popek had made it) and popek's qemu hook."""
    conf = LEGACY_QEMU_CONF
    try:
        if conf.read_text() == LEGACY_QEMU_CONF_TEXT:
            backup = conf.with_suffix(".conf.before-popek")
            if backup.exists():
                os.replace(backup, conf)
            else:
                conf.unlink()
    except OSError:
        pass
    try:
        if QEMU_HOOK_MARK in LEGACY_QEMU_HOOK.read_text(errors="replace"):
            LEGACY_QEMU_HOOK.unlink()
    except OSError:
        pass


def qemu_hook_text(state: CloudState, seconds: int = 30, log: Path | None = None, boost: int = BOOST_SECONDS) -> str:
    """The hook: watches a guest's taps for `seconds`, logs repairs to `log` (default: the cloud's log); a
    guest of more than one vCPU boots at BOOST_NICE for `boost` seconds (QEMU's pid file: libvirt's run
    directory, as popek's own path: the same directory libvirtd sees as /run/libvirt)."""
    return QEMU_HOOK_TEXT.format(mark=QEMU_HOOK_MARK, polls=seconds * 2, log=log or state.log("tap-repair"),
                                 root=state.root, nice=BOOST_NICE, boost=boost,
                                 pids=libvirt_dir(state, "run") / "qemu", nft=shutil.which("nft") or "/usr/sbin/nft",
                                 table=fence.TABLE, taps_set=fence.TAPS_SET, fence_log=state.log("fence-hook"))


def write_qemu_hook(state: CloudState) -> None:
    """The hook's file, replaced in one rename: libvirtd looks for its hooks once as it starts but runs the
    file anew at each event, so a running cloud's `up` installs a new hook for the next guests."""
    hook = qemu_hook_path(state)
    hook.parent.mkdir(parents=True, exist_ok=True)
    tmp = hook.with_name(hook.name + ".new")
    tmp.write_text(qemu_hook_text(state))
    tmp.chmod(0o755)
    os.replace(tmp, hook)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def check_link_names(state: CloudState, names=(INT_BRIDGE, EXT_BRIDGE, DATAPATH_PORT)) -> None:
    """Refuse (one French message naming them) the links of `names` that exist on the host and are not
    popek's (not in its host record): Open vSwitch would take them over or fail on them."""
    ours = set(state.host_record.names("link"))
    clash = [n for n in names if n not in ours and _link_exists(n)]
    if clash:
        raise CloudError("plan de données : cette machine a déjà une interface réseau " + ", ".join(clash)
                         + " qui n'est pas celle de popek (un autre Open vSwitch ou Neutron ?) ; popek n'y "
                         "touche pas et ne démarre pas le sien à côté : arrêtez-le ou supprimez-la")


def check_openflow_port(state: CloudState) -> None:
    """Refuse (one French message naming the program) a listener of the machine's on the OpenFlow port the
    Open vSwitch agent will listen on, when the agent does not run: popek's bridges would connect to that
    program as their controller (it is no health check port: `up` would not see it otherwise)."""
    if svcmod.read_pid(state, "neutron-openvswitch-agent") is not None:
        return
    port = state.ports["openflow"]
    who = svcmod.port_taken(port)
    if who is not None:
        raise CloudError(f"plan de données : le port {port} (OpenFlow, où l'agent Open vSwitch de Neutron "
                         f"pilote les ponts de popek) est déjà occupé par {who} ; popek n'y touche pas : libérez ce "
                         "port (arrêtez ce programme), puis relancez `popek cloud up`")


def ovs_services(state: CloudState) -> list[Service]:
    """ovsdb-server and ovs-vswitchd in the foreground, with their files under `ovs_dir(state)`."""
    d = ovs_dir(state)
    env = ovs_env(state)
    return [
        Service("ovsdb-server", ["/usr/sbin/ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d / 'db.sock'}",
                                 "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                                 f"--pidfile={d / 'ovsdb-server.pid'}", f"--unixctl={d / 'ovsdb-server.ctl'}"],
                env=env, log=str(state.log("ovsdb-server")), health=f"unix://{d / 'db.sock'}", stage=0),
        # --disable-system: the kernel datapath provider is not even registered. Otherwise every reconfiguration
        # deletes each kernel datapath that is no bridge of *its* database (bridge_delete_ofprotos), i.e. the
        # `ovs-system` datapath of the machine's own Open vSwitch; popek's bridges are all netdev.
        Service("ovs-vswitchd", ["/usr/sbin/ovs-vswitchd", ovsdb_socket(state), "--disable-system",
                                 f"--pidfile={d / 'ovs-vswitchd.pid'}", f"--unixctl={d / 'ovs-vswitchd.ctl'}"],
                env=env, log=str(state.log("ovs-vswitchd")), health=f"unix://{d / 'ovs-vswitchd.ctl'}", stage=0),
    ]


def _vsctl(state: CloudState, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ovs-vsctl", "--timeout=10", *args], env=ovs_env(state), check=check)


def install_conntrack_shim(state: CloudState) -> None:
    """Neutron's conntrack deletions reach ovs-vswitchd's own conntrack too (userspace datapath,
    ovs_conntrack.py): at every `up`, also the in-place repair of a running cloud (idempotent)."""
    ovs_conntrack.install(state.venv / "bin", state.python, str(ovs_dir(state) / "ovs-vswitchd.ctl"))


def prepare(state: CloudState, log=lambda line: None) -> None:
    """Packages (what apt will install goes to `log` first), popek's libvirt tree, Open vSwitch running
    with its two bridges, the host's address on the external one. Idempotent: a second call finds
    everything in place and changes nothing. A host link with one of popek's names is refused."""
    if os.geteuid() != 0:
        raise CloudError("plan de données : il faut être root (Open vSwitch, libvirt, espaces de noms)")
    apt.install(DATAPLANE_APT, log=log)
    dnsmasq_conf(state).parent.mkdir(parents=True, exist_ok=True)
    dnsmasq_conf(state).write_text(DNSMASQ_CONF)
    _ensure_libvirt_python(state)
    _instances_dir(state)
    install_conntrack_shim(state)
    if svcmod.read_pid(state, "libvirtd") is None:
        _forget_legacy_host_setup()
        _libvirt_tree(state)  # before libvirtd starts: it reads its hooks once
    else:
        write_qemu_hook(state)  # a running cloud's guests started from now on get the new hook
    check_openflow_port(state)
    d = ovs_dir(state)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "conf.db").exists():
        _run(["ovsdb-tool", "create", str(d / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"])
    ovs = ovs_services(state)
    for svc in ovs[:1]:
        if svcmod.read_pid(state, svc.name) is None:
            svcmod.start(state, svc)
    svcmod.wait_healthy(state, ovs[:1], timeout=30)
    _vsctl(state, "--no-wait", "init")
    for svc in ovs[1:]:
        if svcmod.read_pid(state, svc.name) is None:
            # ovs-vswitchd makes a link for each bridge of the database as it starts: popek's names only
            for br in LEGACY_BRIDGES:
                _vsctl(state, "--no-wait", "--if-exists", "del-br", br)
            check_link_names(state)
            for name in (DATAPATH_PORT, INT_BRIDGE, EXT_BRIDGE):
                state.host_record.add("link", name)
            svcmod.start(state, svc)
    svcmod.wait_healthy(state, ovs[1:], timeout=30)
    for br in (INT_BRIDGE, EXT_BRIDGE):
        _vsctl(state, "--may-exist", "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev")
    # The host's foot on the public network: the subnet's gateway address, nothing routed beyond it.
    cidr = public_gateway_cidr()
    check_public_cidr(cidr, _addresses_the_host_needs())
    check_public_routes(cidr, _host_routes())
    _wait_link(EXT_BRIDGE)
    have = _run(["ip", "-4", "-o", "addr", "show", "dev", EXT_BRIDGE]).stdout
    if cidr not in have:
        _run(["ip", "addr", "add", cidr, "dev", EXT_BRIDGE])
    _run(["ip", "link", "set", EXT_BRIDGE, "up"])


# --- Open vSwitch ports whose Neutron port is gone ------------------------------------------------

#: The agents and nova-compute: they plug and unplug Neutron's ports on popek's bridges.
PLUGGERS = ("neutron-openvswitch-agent", "neutron-dhcp-agent", "neutron-l3-agent", "nova-compute")
#: While a plugger runs, a port is stale only if it still is this many seconds later: Neutron deletes a port
#: from its database before the agent (or nova, through os-vif) unplugs it.
STALE_SETTLE = 5.0


@dataclasses.dataclass(frozen=True)
class OvsPort:
    bridge: str
    name: str
    iface_id: str


def neutron_ovs_ports(bridge_ports: dict[str, list[str]], interfaces: dict) -> list[OvsPort]:
    """The ports of `bridge_ports` ({bridge: port names}, popek's bridges) whose interface of the same name
    carries a Neutron `iface-id` (external_ids), from `interfaces`: `ovs-vsctl --format=json
    --columns=name,external_ids list Interface`. A port marked `skip_cleanup` (as neutron-ovs-cleanup
    honours it), without an iface-id, or with several interfaces (a bond: no interface of its name), is
    not listed."""
    ids = {}
    heads = interfaces.get("headings", [])
    for row in interfaces.get("data", []):
        cols = dict(zip(heads, row))
        ext = cols.get("external_ids")
        pairs = dict(ext[1]) if isinstance(ext, list) and len(ext) == 2 and ext[0] == "map" else {}
        if isinstance(cols.get("name"), str) and pairs.get("iface-id") and "skip_cleanup" not in pairs:
            ids[cols["name"]] = pairs["iface-id"]
    return [OvsPort(br, name, ids[name]) for br, names in bridge_ports.items() for name in names if name in ids]


def stale_ports(ovs: list[OvsPort], neutron_port_ids: set[str]) -> list[OvsPort]:
    """The ports of `ovs` whose iface-id is not a port of Neutron's database (`neutron_port_ids`)."""
    return [p for p in ovs if p.iface_id not in neutron_port_ids]


def _read_ovs_ports(state: CloudState) -> list[OvsPort]:
    import json

    bridges = {br: _vsctl(state, "list-ports", br).stdout.split() for br in (INT_BRIDGE, EXT_BRIDGE)}
    listing = _vsctl(state, "--format=json", "--columns=name,external_ids", "list", "Interface").stdout
    return neutron_ovs_ports(bridges, json.loads(listing))


def neutron_port_ids(state: CloudState) -> set[str]:
    """The ids of every port in Neutron's database, read from the cloud's MariaDB (root over its unix
    socket, no password anywhere): it answers from stage 0 on, before neutron-server and the agents run."""
    if not bootstrap.neutron_connection(state).startswith("mysql"):
        raise CloudError("la base de Neutron n'est pas sur MariaDB")
    proc = _run(["/usr/bin/mariadb", f"--defaults-file={state.etc('mariadb') / 'my.cnf'}", "-uroot", "-N", "-B"],
                input="SELECT id FROM neutron.ports;\n", timeout=30)
    return set(proc.stdout.split())


def remove_stale_ports(state: CloudState, settle: float | None = None) -> list[OvsPort]:
    """Remove from popek's bridges the ports that carry a Neutron iface-id which is no port of Neutron's
    database any more (an agent's unplug that failed: a timed-out AddPortCommand leaves its row, and since
    OVSDB is persistent ovs-vswitchd makes the internal port's device again in the host's namespace at each
    start), and the device ovs-vswitchd made for each. Returns what was removed.

    Open vSwitch is read before Neutron (Neutron writes a port to its database before anyone plugs it).
    `settle`: seconds after which a port must still be stale (Neutron deletes before the agent unplugs);
    None: 0 when no agent nor nova-compute runs, else STALE_SETTLE. A port without an iface-id, or on a
    bridge not popek's, is never touched."""
    if settle is None:
        settle = STALE_SETTLE if any(svcmod.read_pid(state, n) is not None for n in PLUGGERS) else 0.0
    candidates = stale_ports(_read_ovs_ports(state), neutron_port_ids(state))
    if candidates and settle > 0:
        time.sleep(settle)
        again = set(stale_ports(_read_ovs_ports(state), neutron_port_ids(state)))
        candidates = [p for p in candidates if p in again]
    for port in candidates:
        _vsctl(state, "--if-exists", "del-port", port.bridge, port.name)
        # ovs-vswitchd destroys the tap it made; one it no longer holds (made by a vswitchd since killed) stays
        deadline = time.monotonic() + 3.0
        while _link_exists(port.name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _link_exists(port.name) and port.name in _tun_links():
            subprocess.run(["ip", "link", "delete", port.name], capture_output=True)
    return candidates


def clean_stale_ports(state: CloudState, log=lambda line: None) -> list[OvsPort]:
    """`remove_stale_ports` for `up`: one French line says what was removed, or why nothing could be checked
    (the cloud comes up all the same)."""
    try:
        removed = remove_stale_ports(state)
    except (CloudError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        log(f"ports Open vSwitch orphelins : vérification impossible ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return []
    if removed:
        log("ports Open vSwitch orphelins retirés (leur port Neutron n'existe plus), avec leur interface sur l'hôte : "
            + ", ".join(f"{p.name} ({p.bridge}, iface-id {p.iface_id})" for p in removed))
    return removed


def _instances_dir(state: CloudState) -> None:
    # libvirt needs nova's instances_path (its free space is the node's disk); the fake driver never did.
    (state.data("nova") / "instances").mkdir(parents=True, exist_ok=True)


def _wait_link(name: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    # `ip link`, not /sys/class/net: sysfs shows the network namespace that mounted it, not ours.
    while subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise CloudError(f"plan de données : l'interface {name} n'apparaît pas (ovs-vswitchd ?)")
        time.sleep(0.1)


# --- processes -----------------------------------------------------------------------------------

NOTHP_SCRIPT = Path(__file__).with_name("nothp.py")
L3_GUARD_SCRIPT = Path(__file__).with_name("l3_guard.py")
PRIVSEP_INPROC_SCRIPT = Path(__file__).with_name("privsep_inproc.py")


def nothp_prefix(state: CloudState) -> list[str]:
    """argv prefix that runs a program with transparent huge pages off, inherited by its children (nothp.py)."""
    return [state.python, "-I", "-S", str(NOTHP_SCRIPT)]


def inproc_argv(state: CloudState, program: str, args: list[str]) -> list[str]:
    """Python file `program` with `args`, its oslo.privsep contexts run in-process (privsep_inproc.py; -P: the
    launcher's folder, popek's modules, is not put on the cloud venv's sys.path)."""
    return [state.python, "-P", str(PRIVSEP_INPROC_SCRIPT), program, *args]


def services(state: CloudState) -> list[Service]:
    """Open vSwitch and libvirtd (stage 0), neutron's RPC server (1), its agents (2), nova-compute (3). The
    agents and nova-compute run their privileged calls in-process (privsep_inproc.py)."""
    etc = state.etc("neutron")
    env = ovs_env(state)
    conf = lambda *files: [a for f in ("neutron.conf", *files) for a in ("--config-file", str(etc / f))]  # noqa: E731
    agent = lambda name, *files: Service(  # noqa: E731
        name, [state.bin(name), *conf(*files)], env=env, log=str(state.log(name)), stage=2)
    privileged = lambda name, *files: dataclasses.replace(  # noqa: E731
        agent(name, *files), argv=inproc_argv(state, state.bin(name), conf(*files)))
    return [
        *ovs_services(state),
        # popek's own libvirtd, in a mount namespace of its own (libvirtd_script_text); slave propagation:
        # a namespace the host deletes (its /run/netns mount) goes from this namespace's view too. Transparent
        # huge pages off for it and its QEMUs (nothp.py)
        Service("libvirtd", [*nothp_prefix(state), "/usr/bin/unshare", "--mount", "--propagation", "slave", "/bin/sh",
                             str(libvirtd_script(state))], env=env, log=str(state.log("libvirtd")),
                health=f"unix://{_serving_libvirt_socket(state)}", stage=0),
        # Stage 1, before the agents: their first RPC calls go to queues the server declares when it starts
        # consuming; sent earlier, they are lost and each agent waits out a 60 s timeout (measured).
        dataclasses.replace(agent("neutron-rpc-server", "plugins/ml2/ml2_conf.ini"), stage=1),
        # it listens on the OpenFlow port, where popek's bridges take it as their controller
        dataclasses.replace(privileged("neutron-openvswitch-agent", "plugins/ml2/ml2_conf.ini",
                                       "plugins/ml2/openvswitch_agent.ini"), ports=(state.ports["openflow"],)),
        privileged("neutron-dhcp-agent", "dhcp_agent.ini"),
        # behind l3_guard.py: no start-up deletion of the machine's other qrouter-/snat-/fip- namespaces
        dataclasses.replace(agent("neutron-l3-agent", "l3_agent.ini"), argv=inproc_argv(
            state, str(L3_GUARD_SCRIPT), [state.bin("neutron-l3-agent"), *conf("l3_agent.ini")])),
        agent("neutron-metadata-agent", "metadata_agent.ini"),
        # nova-compute talks to libvirtd and (through os-vif and libvirt) to our OVS
        Service("nova-compute", inproc_argv(state, str(svcmod.NOVA_COMPUTE_SCRIPT),
                                            ["--config-file", str(state.etc("nova") / "nova.conf")]),
                env=env, log=str(state.log("nova-compute")), stage=3),
        fence_watch_service(state),
    ]


def fence_watch_service(state: CloudState) -> Service:
    """The fence's watcher (fence_watch.py): popek's nftables table put back as soon as the machine's firewall
    reload (`flush ruleset`) deletes it. Stage 0: it runs once `up` fenced the interfaces (before any service
    starts) and is stopped with the bus and the database by `down`, before the fence is removed. It runs with
    popek's own Python (-I: nothing of the caller's environment; popek's package is found in its site)."""
    return Service(fence_watch.SERVICE, [sys.executable, "-I", "-m", "popek.checks.localcloud.fence_watch",
                                         f"--ovs-rundir={ovs_dir(state)}", *fence_interfaces()],
                   log=str(state.log(fence_watch.SERVICE)), stage=0)


def fence_interfaces() -> tuple[str, ...]:
    """The cloud's own interfaces in the host's namespace, fenced by fence.py (lifecycle applies it once
    prepare made them, removes it after teardown)."""
    return (INT_BRIDGE, EXT_BRIDGE, "ovs-netdev")


def fence_taps(state: CloudState) -> tuple[str, ...]:
    """The taps of this cloud's guests now: the ports of popek's integration bridge that are links of the
    host (fence.guest_taps); () when its Open vSwitch does not answer."""
    return fence.taps_now(str(ovs_dir(state)), INT_BRIDGE, fence_interfaces())


# --- teardown and status -------------------------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def our_qemu_pids(state: CloudState) -> list[int]:
    """The QEMUs of this cloud's guests: a qemu-system process whose command line names a file of this
    cloud's state directory (its disk, its console log). A host's own guests never do."""
    root = str(state.root) + "/"
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if argv and "qemu-system" in Path(argv[0]).name and any(root in a for a in argv[1:]):
                pids.append(int(entry.name))
    return pids


def ovs_interfaces(state: CloudState) -> set[str]:
    """Names of every interface of this cloud's Open vSwitch database (bridges, neutron's qr-/qg-/tap
    ports, guests' taps), read from the database file itself once ovsdb-server has stopped."""
    import json

    db = ovs_dir(state) / "conf.db"
    if not db.exists():
        return set()
    query = json.dumps(["Open_vSwitch", {"op": "select", "table": "Interface", "where": [], "columns": ["name"]}])
    proc = subprocess.run(["ovsdb-tool", "query", str(db), query], capture_output=True, text=True)
    if proc.returncode != 0:  # still served: ask the server
        proc = subprocess.run(["ovs-vsctl", "--timeout=5", "--bare", "--columns=name", "list", "Interface"],
                              env={**os.environ, **ovs_env(state)}, capture_output=True, text=True)
        return set(proc.stdout.split())
    try:
        return {row["name"] for row in json.loads(proc.stdout)[0]["rows"]}
    except (ValueError, KeyError, IndexError, TypeError):
        return set()


def neutron_ids(state: CloudState) -> set[str]:
    """Ids of the networks and routers this cloud's agents served, from their own records under
    neutron's state path (dhcp/<network>/, external/pids/<router or network>.pid.haproxy, ha_confs/)."""
    data = state.data("neutron")
    ids = {p.name for p in (data / "dhcp").glob("*-*-*-*-*")}
    ids |= {p.name.split(".")[0] for p in (data / "external" / "pids").glob("*-*-*-*-*.pid*")}
    ids |= {p.name for p in (data / "ha_confs").glob("*-*-*-*-*")}
    return ids


def our_namespaces(state: CloudState, interfaces: set[str] | None = None) -> list[str]:
    """This cloud's network namespaces: `qrouter-<id>`/`qdhcp-<id>` whose id is one of `neutron_ids`, or
    that hold an interface of this cloud's Open vSwitch (`interfaces`). A host's own are never listed."""
    ids = neutron_ids(state)
    interfaces = ovs_interfaces(state) if interfaces is None else interfaces
    found = []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        ns = line.split()[0] if line.split() else ""
        if not ns.startswith(("qrouter-", "qdhcp-")):
            continue
        if ns.split("-", 1)[1] in ids:
            found.append(ns)
            continue
        links = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True, text=True).stdout
        if any(l.split(":")[1].strip().split("@")[0] in interfaces for l in links.splitlines() if ":" in l):
            found.append(ns)
    return found


def _tun_links() -> set[str]:
    import json

    out = subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, text=True).stdout or "[]"
    return {link["ifname"] for link in json.loads(out) if link.get("linkinfo", {}).get("info_kind") == "tun"}


def our_links(state: CloudState, interfaces: set[str] | None = None) -> list[str]:
    """The host's links that are this cloud's: written down in its host record, or a tap of its Open
    vSwitch (the netdev datapath's ports and neutron's are persistent taps that outlive ovs-vswitchd)."""
    interfaces = ovs_interfaces(state) if interfaces is None else interfaces
    recorded = state.host_record.names("link")
    return recorded + sorted((interfaces & _tun_links()) - set(recorded))


def teardown(state: CloudState) -> None:
    """After the processes are stopped: kill this cloud's guests, what its agents spawned in its
    namespaces (dnsmasq, haproxy), delete those namespaces, its loop devices, its links, the mount points
    it made. Only what is this cloud's (see the module docstring); tolerates "already gone" everywhere."""
    for pid in our_qemu_pids(state):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in ("ovs-vswitchd", "ovsdb-server"):
        ctl = ovs_dir(state) / f"{name}.ctl"
        if ctl.exists():
            subprocess.run(["ovs-appctl", "-t", str(ctl), "exit"], capture_output=True, timeout=10)
    interfaces = ovs_interfaces(state)
    for ns in our_namespaces(state, interfaces):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    for dev in loop_devices(state):  # attached volumes: the guests holding them are gone
        subprocess.run(["losetup", "-d", dev], capture_output=True)
    # The netdev datapath's bridge ports are persistent taps: they outlive ovs-vswitchd (the database
    # keeps the bridges for the next `up`). Taps libvirt made for guests go with QEMU.
    # So are the ports neutron moved into its namespaces: deleting a namespace hands them back here.
    for link in our_links(state, interfaces):
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
        if not _link_exists(link):
            state.host_record.discard("link", link)
    remove_recorded_dirs(state)
    _forget_legacy_host_setup()


def remove_recorded_dirs(state: CloudState) -> None:
    """rmdir the directories of the host record (mount points popek made), deepest first; one that is no
    longer empty (someone else's files now) is kept, and stays recorded."""
    for d in reversed(state.host_record.names("dir")):
        try:
            Path(d).rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        state.host_record.discard("dir", d)


def loop_devices(state: CloudState) -> list[str]:
    """Loop devices backed by the volumes of the dataplane's Cinder backend (loopvolume.py)."""
    if shutil.which("losetup") is None:
        return []
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True).stdout
    where = str(state.data("cinder") / "loop-volumes") + "/"
    return [line.split()[0] for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].startswith(where)]


def status(state: CloudState) -> str:
    """Why the dataplane runs or not, in French, one line."""

    if os.geteuid() != 0:
        return "plan de données indisponible : il faut être root"
    missing = apt.missing(DATAPLANE_APT)
    if missing:
        return f"plan de données non installé : paquets manquants {' '.join(missing)}"
    down = [s.name for s in services(state) if svcmod.read_pid(state, s.name) is None]
    unwatched = watch_note(down)
    down = [n for n in down if n != fence_watch.SERVICE]
    if down:
        return f"plan de données arrêté : {', '.join(down)} ne tourne(nt) pas"
    forwarding = forwarding_note(Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(), fence.present())
    if forwarding.startswith("MAIS") or unwatched:
        return f"plan de données en marche, {' ; '.join(n for n in (unwatched, forwarding) if n)}"
    repairs = state.log("tap-repair")
    repaired = len(repairs.read_text().splitlines()) if repairs.exists() else 0
    return (f"plan de données en marche : Open vSwitch (netdev) {INT_BRIDGE}/{EXT_BRIDGE}, libvirtd de popek "
            f"({'kvm' if kvm_is_hardware() else 'qemu TCG'}, {libvirt_socket(state)}), agents Neutron openvswitch/dhcp/l3/metadata"
            + (f" ; {repaired} tap(s) d'instance remis up (course d'OVS, {repairs})" if repaired else "")
            + (f" ; {forwarding}" if forwarding else ""))


def watch_note(down: list[str]) -> str:
    """What `popek cloud status` says when the fence's watcher (fence_watch.py) is not running, else ""."""
    if fence_watch.SERVICE not in down:
        return ""
    return (f"MAIS la garde de la clôture ({fence_watch.SERVICE}) ne tourne pas : un `flush ruleset` du pare-feu de "
            f"la machine retirerait la clôture sans qu'elle soit remise ; `popek cloud up` la relance "
            f"(voir {fence_watch.SERVICE}.log)")


def forwarding_note(ip_forward: str, fenced: bool) -> str:
    """What `popek cloud status` says of the host's IP forwarding (net.ipv4.ip_forward's value), in French: nothing
    when off; when on (a setting of the host's: Docker, libvirt's NAT network, a VPN; popek never sets it), calm
    while the fence stops all routing from and to the cloud (`fenced`), an alarm without the fence."""
    if ip_forward == "0":
        return ""
    if fenced:
        return ("routage IP de l'hôte actif (net.ipv4.ip_forward=1, réglage de l'hôte, pas de popek) : la clôture "
                "(table nftables inet popek) ne laisse rien router depuis ou vers le cloud")
    return ("MAIS le routage IP de l'hôte est actif (net.ipv4.ip_forward=1) et la clôture des instances est absente : "
            "l'hôte peut router leurs paquets")


# --- the dataplane proven with a real guest ----------------------------------------------------------

#: What the tiny image prints once DHCP and the metadata service answered: "popek-tiny: ready NAME A.B.C.D/N".
SMOKE_READY = r"popek-tiny: ready \S+ \d+\.\d+\.\d+\.\d+/\d+"


#: The smoke instance whose deletion nova accepted and `up` did not wait for ({"id", "name"}), in run/.
SMOKE_PENDING = "smoke-pending.json"


def smoke_lookup(state: CloudState) -> dict:
    """What the smoke instance needs from the APIs before its creation (the member's connection, the tiny image,
    flavor and the private network): `up` looks them up while nova-compute starts (~1 s less after it)."""
    conn = bootstrap.connect(state, "popek")
    return {"conn": conn, "image": conn.image.find_image("popek-tiny"), "flavor": conn.compute.find_flavor("tiny"),
            "net": conn.network.find_network("private")}


def smoke(state: CloudState, timeout: float = 150.0, looked: dict | None = None) -> float:
    """Boot the tiny image on `private` as the member and wait until its console says it got an address
    from Neutron's DHCP and its identity from the metadata service; delete it. The first guest after a
    start also warms libvirt's image cache. Returns the seconds it took; raises CloudError with the end of
    the guest's console when the dataplane does not deliver.

    A guest that delivered is deleted without waiting (~2 s of `up`): nova accepted the deletion, and it is
    recorded (SMOKE_PENDING) until settle_smoke sees the server gone, before anything that needs it (the
    next smoke, `down`, the repair of a running cloud); a guest that did not deliver is waited for here.
    `looked`: smoke_lookup's answer, made earlier (else looked up here)."""
    settle_smoke(state)
    looked = looked or smoke_lookup(state)
    conn, image, flavor, net = looked["conn"], looked["image"], looked["flavor"], looked["net"]
    marker = (image.properties or {}).get(compute.TINY_MARKER) if image is not None else None
    if marker is None or flavor is None or net is None:
        raise CloudError("plan de données : image popek-tiny (et son marqueur), gabarit tiny ou réseau private absent")

    t0 = time.monotonic()
    name = f"popek-essai-{secrets.token_hex(3)}"
    pending = state.run_dir / SMOKE_PENDING
    # recorded by name before nova is asked, by id once known: an `up` killed (SIGKILL) while the guest boots
    # leaves it findable by the next settle_smoke (measured, hT 2026-12-07: else ACTIVE for good)
    pending.write_text(json.dumps({"name": name}))
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}])
    pending.write_text(json.dumps({"id": server.id, "name": server.name}))
    try:
        try:
            compute.wait_active(conn, server, timeout)
        except AssertionError as exc:
            raise CloudError(f"plan de données : {exc}") from None
        # one hard reboot when the guest's first boot got no lease (see compute.lease_or_reboot)
        # the console read every second: a call costs ~50 ms here, a 2 s period cost 1 s of `up` on average
        compute.lease_or_reboot(conn, server, marker, timeout, interval=1)
        console = compute.console_log(conn, server, length=400)
        ready = re.findall(SMOKE_READY, console)
        if ready and "metadata instance-id" in console:  # its record stays until settle_smoke sees it gone
            conn.compute.delete_server(server, ignore_missing=True)
            server = None
            return time.monotonic() - t0
        tail = "\n".join([l for l in console.strip().splitlines() if "alive" not in l][-6:]) or "(console vide)"
        raise CloudError(f"plan de données : l'instance d'essai n'a pas obtenu d'adresse et de metadata ; "
                         f"fin de sa console :\n{tail}\njournaux dans {state.root / 'log'}")
    finally:
        if server is not None:
            conn.compute.delete_server(server, ignore_missing=True)
            conn.compute.wait_for_delete(server, interval=0.5, wait=120)
            pending.unlink(missing_ok=True)


SETTLE_API_TIMEOUT = 10.0  # s per API call: `down` settles the smoke first, a frozen API must not hang it


def settle_smoke(state: CloudState, timeout: float = 120.0) -> str | None:
    """Wait until the smoke instance whose deletion `up` did not wait for (SMOKE_PENDING) is gone; one that
    is still there (a deletion that failed: ERROR, or nothing in progress) is asked to be deleted again.
    Returns a French line saying what was waited for (None: nothing pending); raises CloudError naming the
    server when it is still there after `timeout` s (the record is kept: the next settle tries again)."""
    pending = state.run_dir / SMOKE_PENDING
    try:
        record = json.loads(pending.read_text())
    except FileNotFoundError:
        return None
    except ValueError:  # a torn write: nothing was asked of nova yet
        pending.unlink(missing_ok=True)
        return None
    conn = bootstrap.connect(state, "popek", api_timeout=SETTLE_API_TIMEOUT)
    server = conn.compute.find_server(record.get("id") or record["name"], ignore_missing=True)  # no id: a killed up's
    what = f"instance d'essai {record['name']} ({record.get('id') or getattr(server, 'id', '?')})"
    if server is not None:
        if server.status == "ERROR" or getattr(server, "task_state", None) != "deleting":
            conn.compute.delete_server(server, ignore_missing=True)  # a deletion that failed: once more
        try:
            conn.compute.wait_for_delete(server, interval=0.5, wait=timeout)
        except Exception as exc:  # noqa: BLE001 - the SDK's timeout, or an API error: say which server
            server = conn.compute.find_server(server.id, ignore_missing=True)
            fault = ((getattr(server, "fault", None) or {}).get("message") or "").strip() if server else ""
            raise CloudError(f"plan de données : l'{what} n'a pas pu être supprimée en {timeout:.0f} s "
                             f"(état {getattr(server, 'status', '?')}{' : ' + fault if fault else ''} ; "
                             f"{type(exc).__name__}) ; voir {state.log('nova-compute')}") from None
    pending.unlink(missing_ok=True)
    return f"{what} supprimée"
