"""Why a guest cannot be reached over SSH: the failing component named from its evidence, as soon as the
evidence is conclusive (issue #20, "a broken cloud is named, fast").

A guest that does not answer SSH through its floating IP can be stuck at any of the steps between
nova-compute and sshd: it never boots (compute), it asks DHCP and hears nothing (DHCP agent / switch),
it has its address but the metadata service at 169.254.169.254 does not answer (so no key), it is ready
but the floating IP does not lead to it (L3 agent / NAT), or its SSH server refuses the keypair. What the
guest printed on its serial console (the compute API's console log, member credentials) tells these apart;
where popek runs on the cloud's own network node, a probe of the fixed address from Neutron's DHCP
namespace tells "the floating IP does not lead there" from "the guest does not answer at all".

`watch()` polls these observations and stops at the first conclusive one, instead of a fixed 300–600 s
SSH timeout that ends in "SSH impossible". Everything it needs comes in as callables (no cloud, no
clock of its own beyond `time.monotonic`), so that the rules are unit-tested on recorded consoles.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from typing import Callable, Optional

from popek.checks.cloud import traffic

#: Seconds a guest may stay silent on its console after ACTIVE before "it does not boot" is concluded
#: (a kernel under QEMU TCG prints within ~10 s; ten times that is generous).
BOOT_GRACE = 90.0
#: Seconds after the kernel's first line without any DHCP lease before DHCP is named. The tiny image's
#: udhcpc asks for 90 s; cloud-init's first boot under TCG shows its address after 40–70 s.
DHCP_GRACE = {"tiny": 75.0, "cloud-init": 170.0}
#: Seconds after the lease without any answer of the metadata service: the tiny image asks it at once
#: (answers in ~1 s); cloud-init asks it within seconds of its network stage.
METADATA_GRACE = {"tiny": 25.0, "cloud-init": 60.0}
#: Refusals (HTTP 403) of nova's metadata API that Neutron's metadata agent logged while a guest waits, from
#: which "the shared secret differs" is conclusive: a healthy cloud logs none; the tiny image asks again every
#: second.
METADATA_REFUSALS = 3
#: What neutron-metadata-agent logs when nova's metadata API answers 403 (a bad signature of the request).
METADATA_FORBIDDEN = "The remote metadata server responded with Forbidden"
#: Seconds the guest may say it is ready while SSH through its floating IP does not answer.
SSH_GRACE = 60.0
#: Seconds the guest may say it is ready while its SSH server refuses the pair's key (the key is in place
#: before the guest says it is ready: only a moment for the SSH server to start).
KEY_GRACE = 15.0


@dataclasses.dataclass
class Console:
    """What a console log says, as far as reaching the guest goes (None: not said)."""
    booted: bool = False           # the guest printed something
    lease: Optional[str] = None    # the IPv4 address the guest got from DHCP
    dhcp_failed: bool = False      # the guest said it gave up on DHCP
    metadata_ok: bool = False      # the guest read something from the metadata service
    metadata_failed: Optional[str] = None  # a line where the guest says the metadata service failed
    ready: bool = False            # the guest says it finished booting (SSH server up)
    lines: tuple = ()              # the console's lines that matter, for the message


_UDHCPC_LEASE = re.compile(r"udhcpc: lease of (\d+\.\d+\.\d+\.\d+) obtained")
_TINY_READY = re.compile(r"popek-tiny: ready \S+ (\d+\.\d+\.\d+\.\d+)/\d+")
_CI_ADDR = re.compile(r"ci-info: \|\s*(?!lo\b)\S+\s*\|\s*True\s*\|\s*(\d+\.\d+\.\d+\.\d+)\s*\|")
_CI_MD_FAIL = re.compile(r"(?:url_helper|DataSource\w*)\.py\[WARNING\].*169\.254\.169\.254.*")
#: cloud-init reached 169.254.169.254 and got an HTTP 5xx (Neutron's proxy answers 503 when nova's metadata API
#: does not answer): the network path works, the metadata service does not. cloud-init retries every ~1.2 s
#: and does not repeat the URL on these lines.
_CI_MD_HTTP = re.compile(r"url_helper\.py\[WARNING\]: Endpoint returned a (5\d\d) error")
#: How many such answers in a row are conclusive: ~25 s of 5xx, which a healthy but loaded metadata
#: service does not give (a transient 503 now and then is retried by cloud-init and is not a failure).
MD_HTTP_ERRORS = 20
_NO_NETWORK = re.compile(r"Network is unreachable|No route to host|Name or service not known")


def read_console(text: str) -> Console:
    """The facts a console log gives (the tiny image's own lines, busybox udhcpc's, cloud-init's)."""
    seen = Console()
    keep = []
    http_errors = 0
    for line in text.splitlines():
        if line.strip():  # whatever the guest printed (a quiet kernel prints nothing before userspace)
            seen.booted = True
        if " alive " in line:  # the tiny image's heartbeat: proof of life, not news
            continue
        m = _UDHCPC_LEASE.search(line) or _TINY_READY.search(line) or _CI_ADDR.search(line)
        if m and not m.group(1).startswith(("127.", "169.254.")):
            seen.lease = m.group(1)
            keep.append(line)
        if "popek-tiny: dhcp failed" in line:
            seen.dhcp_failed = True
            keep.append(line)
        if "popek-tiny: metadata instance-id" in line:
            seen.metadata_ok = True
            keep.append(line)
        if "popek-tiny: no metadata service" in line:
            seen.metadata_failed = line.strip()
            keep.append(line)
        if _CI_MD_FAIL.search(line) and not _NO_NETWORK.search(line):
            short = re.sub(r".*?(Calling '[^']*' failed.*)", r"\1", line.strip())
            seen.metadata_failed = seen.metadata_failed or short
            keep.append(short)
        m = _CI_MD_HTTP.search(line)
        if m:
            http_errors += 1
            if http_errors == MD_HTTP_ERRORS:
                said = (f"{MD_HTTP_ERRORS} réponses HTTP {m.group(1)} de suite de 169.254.169.254 "
                        "(le proxy de metadata de Neutron répond, le service de metadata non)")
                seen.metadata_failed = seen.metadata_failed or said
                keep.append(said)
        if "Used fallback datasource" in line:  # cloud-init found no metadata service: DataSourceNone
            seen.metadata_failed = seen.metadata_failed or line.strip()[-200:]
            keep.append(line)
        if "Cloud-init v." in line and " finished at " in line:
            if "DataSourceNone" in line:
                seen.metadata_failed = seen.metadata_failed or line.strip()[-200:]
            else:
                seen.metadata_ok = seen.metadata_ok or seen.metadata_failed is None
            seen.ready = True
            keep.append(line)
        if "popek-tiny: ready" in line or re.search(r"\blogin: *$", line):
            seen.ready = True
            keep.append(line)
    seen.lines = tuple(dict.fromkeys(keep))[-6:]
    return seen


#: The guest kernel's own last words: only this exact line counts as a panic (never a guess).
_PANIC = re.compile(r"Kernel panic - not syncing")
_OOPS = re.compile(r"\bOops: ")
_STAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s*")


@dataclasses.dataclass(frozen=True)
class Panic:
    """A guest kernel panic read on its console: the panic line, and the Oops line before it (None when
    the kernel printed none)."""
    panic: str
    oops: Optional[str] = None

    def quote(self) -> str:
        return " ; ".join(x for x in (self.oops, self.panic) if x)

    def emulator(self) -> bool:
        """An Oops on int3: the guest kernel's code patching met stale translated code (QEMU TCG)."""
        return bool(self.oops) and "int3" in self.oops


def kernel_panic(text: str) -> Optional[Panic]:
    """The first kernel panic (`Kernel panic - not syncing`) in a console log, with the last Oops line
    printed before it (timestamps dropped); None when the console holds no such line."""
    oops = None
    for line in text.splitlines():
        if _OOPS.search(line):
            oops = _STAMP.sub("", line).strip()[:200]
        elif _PANIC.search(line):
            return Panic(panic=_STAMP.sub("", line).strip()[:200], oops=oops)
    return None


def panic_message(panic: Panic) -> str:
    """What the user reads when a guest kernel panics (French)."""
    cause = ("défaut de l'émulateur QEMU TCG sans KVM (un int3 de la modification de code du noyau exécuté sur "
             "du code traduit périmé)" if panic.emulator() else "panique du noyau de l'invité")
    return (f"le noyau de l'invité a paniqué au démarrage ({panic.quote()}) : {cause} ; d'après cette preuve, les "
            "services du cloud ne sont pas en cause")


class Unreachable(AssertionError):
    """A guest could not be reached; `component` names what failed, the message says from what evidence.
    panic: the guest kernel's panic when that is what stopped it (component "guest-panic")."""

    def __init__(self, component: str, message: str, panic: Optional[Panic] = None):
        super().__init__(message)
        self.component = component
        self.panic = panic


@dataclasses.dataclass
class Observer:
    """How `watch` looks at one guest. Every member is a callable so that the rules can be fed
    recorded observations.

    ssh: one SSH attempt: "ok", "key-refused" (the server answered and refused the key) or "no-answer";
    console: the console log's text; status: the server's status (ACTIVE, ERROR…) and Nova's fault
    message, if any; fixed_answers: whether the guest's fixed address answers TCP/22 from inside the
    cloud (Neutron's DHCP namespace), None when that cannot be probed from here;
    kind: "tiny" (popek's initramfs image, which says each step on its console) or "cloud-init";
    address: the floating IP (for the messages); health: the dead component the cloud's health records
    name now (stuck.health_word, admin), None when they name none or cannot be read: a port left unwired
    by a dead L2 agent or neutron-rpc-server gets no lease either, and that is not the DHCP agent's fault;
    host_firewall: which chains of this host's own firewall drop its traffic with the floating IP
    (host_firewall_drops), None when none does or that cannot be traced: asked once, before blaming L3/NAT
    (a Suspect is appended to the verdict that follows instead);
    dhcp_disabled: the subnets of the guest's port whose DHCP is off in Neutron (subnets_without_dhcp), None
    when DHCP is on or that cannot be read: asked when the lease is overdue, before blaming a DHCP agent;
    foreign_flows: the OpenFlow flows of the cloud's bridges that no agent wrote (ovs_foreign_flows, the embedded
    cloud only), None when there is none or they cannot be read: asked before blaming DHCP, the metadata service
    or L3/NAT (a Suspect is a note on the verdict that follows)."""
    ssh: Callable[[], str]
    console: Callable[[], str]
    status: Callable[[], tuple[str, str]]
    fixed_answers: Callable[[], Optional[bool]] = lambda: None
    kind: str = "tiny"
    address: str = "?"
    health: Callable[[], Optional[str]] = lambda: None
    host_route: Callable[[], Optional[str]] = lambda: None
    metadata_refusals: Callable[[], list] = lambda: []
    host_firewall: Callable[[], Optional[str]] = lambda: None
    dhcp_disabled: Callable[[], Optional[str]] = lambda: None
    foreign_flows: Callable[[], Optional[str]] = lambda: None


def _quote(lines) -> str:
    return " | ".join(line.strip()[:240] for line in lines) or "(rien de significatif)"


def _foreign(obs: Observer) -> tuple[Optional[str], str]:
    """obs.foreign_flows() as (the conclusive finding or None, a note to append to another verdict or "")."""
    flows = obs.foreign_flows()
    if isinstance(flows, Suspect):
        return None, f" ; peut-être aussi : {flows}"
    return flows or None, ""


def judge(obs: Observer, seen: Console, elapsed: float, since_boot: Optional[float],
          since_lease: Optional[float], since_ready: Optional[float], last_ssh: str) -> Optional[Unreachable]:
    """The conclusive failure given the observations so far (None: keep waiting). `elapsed`: seconds since
    the watch began (the server was ACTIVE); `since_*`: seconds since the console first showed that
    (None: not yet); `last_ssh`: the last SSH attempt's outcome."""
    kind = obs.kind if obs.kind in DHCP_GRACE else "cloud-init"
    route = obs.host_route()
    if route:  # this host's own routing table: conclusive whatever the guest does
        return Unreachable("host-route", f"l'IP flottante {obs.address} ne répond pas en SSH : {route} ; d'après cette "
                                         "preuve, ni l'instance ni les agents du cloud ne sont en cause")
    if not seen.booted:
        if elapsed > BOOT_GRACE:
            return Unreachable("compute", f"l'instance ne démarre pas (calcul) : sa console est vide {elapsed:.0f} s "
                                          "après ACTIVE")
        return None
    if seen.lease is None and seen.metadata_failed is None:  # a metadata timeout means the network is up
        if seen.dhcp_failed or (since_boot is not None and since_boot > DHCP_GRACE[kind]):
            said = f"l'instance a démarré il y a {since_boot or 0:.0f} s et n'a obtenu aucune adresse"
            off = obs.dhcp_disabled()  # the API's own record: no DHCP server answers on such a subnet, by design
            if off:
                return Unreachable("subnet-dhcp", f"pas de bail DHCP : {said} ; {off} : aucun serveur DHCP n'y répond "
                                                  f"(ni l'agent DHCP ni un autre) ; console : {_quote(seen.lines)}")
            dead = obs.health()
            if dead:
                return Unreachable("health", f"pas de bail DHCP : {said} ; {dead} ; console : {_quote(seen.lines)}")
            flows, note = _foreign(obs)
            if flows:
                return Unreachable("ovs-flow", f"pas de bail DHCP : {said} ; {flows} ; console : {_quote(seen.lines)}")
            return Unreachable("dhcp", f"pas de bail DHCP : {said} (agent DHCP ?){note} ; "
                                       f"console : {_quote(seen.lines)}")
        return None
    if not seen.metadata_ok:
        refused = obs.metadata_refusals() if seen.lease else []
        if len(refused) >= METADATA_REFUSALS:
            return Unreachable("metadata", f"le service de metadata refuse les requêtes (HTTP 403) : l'instance a son "
                                           f"bail DHCP ({seen.lease}) et l'agent de metadata de Neutron a reçu "
                                           f"{len(refused)} refus de Nova depuis son démarrage (« {refused[-1][-160:]} ») "
                                           "— le secret partagé (metadata_proxy_shared_secret) de l'agent et celui de "
                                           "Nova diffèrent")
        if seen.metadata_failed or (since_lease is not None and since_lease > METADATA_GRACE[kind]):
            lease = (f"son bail DHCP ({seen.lease}) depuis {since_lease or 0:.0f} s" if seen.lease
                     else "du réseau (ses requêtes atteignent 169.254.169.254 ou y expirent, sans erreur de route)")
            dead = obs.health()  # a dead metadata agent or router named by the health records comes first
            if dead:
                return Unreachable("health", f"le service de metadata ne répond pas (169.254.169.254) : l'instance a "
                                             f"{lease} ; {dead} ; console : {_quote(seen.lines)}")
            flows, note = _foreign(obs)
            if flows:
                return Unreachable("ovs-flow", f"169.254.169.254 ne répond pas à l'instance, qui a {lease} : {flows} ; "
                                               f"console : {_quote(seen.lines)}")
            return Unreachable("metadata", "le service de metadata ne répond pas (169.254.169.254) : l'instance a "
                                           f"{lease}, sans réponse des metadata{note} ; console : {_quote(seen.lines)}")
        return None
    if since_ready is not None and since_ready > KEY_GRACE and last_ssh == "key-refused":
        return Unreachable("keypair", f"la clé de la paire est refusée par l'instance, prête depuis "
                                      f"{since_ready:.0f} s (le serveur SSH de {obs.address} répond)")
    if since_ready is not None and since_ready > SSH_GRACE and last_ssh != "key-refused":
        where = f"l'instance est prête depuis {since_ready:.0f} s (console : {_quote(seen.lines[-2:])})"
        wall = obs.host_firewall()  # this host's own firewall, traced: conclusive before any cloud component
        if wall and not isinstance(wall, Suspect):
            return Unreachable("host-firewall", f"l'IP flottante {obs.address} ne répond pas en SSH : {wall} ; {where} ; "
                                                "d'après cette preuve, c'est cet hôte qui bloque, pas le cloud")
        if wall:  # counters of rules that do not name the address: a note on the verdict that follows, no verdict
            where += f" ; peut-être aussi : {wall}"
        flows, note = _foreign(obs)  # a flow no agent wrote, on the way: conclusive before L3/NAT
        if flows:
            return Unreachable("ovs-flow", f"l'IP flottante {obs.address} ne répond pas en SSH : {flows} ; {where}")
        where += note
        fixed = obs.fixed_answers()  # a probe from the DHCP namespace: only when the host is not the cause
        if fixed is True:
            return Unreachable("l3", f"l'IP flottante {obs.address} ne mène pas à l'instance (L3/NAT) : son adresse "
                                     f"fixe {seen.lease} répond sur le port 22 depuis l'espace de noms DHCP ; {where}")
        if fixed is False:
            return Unreachable("network", f"l'instance ne répond ni sur l'IP flottante {obs.address} ni sur son adresse "
                                          f"fixe {seen.lease} (depuis l'espace de noms DHCP) ; {where}")
        return Unreachable("l3", f"l'IP flottante {obs.address} ne répond pas en SSH (L3/NAT ?) alors que {where}")
    return None


def watch(obs: Observer, timeout: float, interval: float = 2.0,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until SSH through the floating IP works; returns the seconds it took.

    Raises Unreachable as soon as the observations are conclusive (see `judge`), or after `timeout`
    seconds with what was last seen. A server in ERROR is a compute failure at once."""
    start = clock()
    first: dict[str, float] = {}
    last_ssh, seen = "no-answer", Console()
    while True:
        now = clock()
        last_ssh = obs.ssh()
        if last_ssh == "ok":
            return now - start
        status, fault = obs.status()
        if status == "ERROR":
            raise Unreachable("compute", f"l'instance est passée en ERROR (calcul) : {fault or 'sans message de Nova'}")
        text = obs.console()
        panic = kernel_panic(text)
        if panic is not None:  # the guest is dead: no later evidence can come, stop at once
            raise Unreachable("guest-panic", panic_message(panic), panic)
        seen = read_console(text)
        for fact, there in (("boot", seen.booted), ("lease", seen.lease), ("ready", seen.ready)):
            if there and fact not in first:
                first[fact] = now
        ago = {fact: now - t for fact, t in first.items()}
        verdict = judge(obs, seen, now - start, ago.get("boot"), ago.get("lease"), ago.get("ready"), last_ssh)
        if verdict is not None:
            raise verdict
        if now - start > timeout:
            raise Unreachable("ssh", f"SSH vers {obs.address} impossible en {timeout:.0f} s (dernière tentative : "
                                     f"{last_ssh}) ; console : {_quote(seen.lines)}")
        sleep(interval)


def subnets_without_dhcp(conn, port) -> Optional[str]:
    """The IPv4 subnets of `port`'s fixed addresses whose DHCP Neutron has off (`enable_dhcp` False), in French;
    None when DHCP is on for each, or when a subnet cannot be read (evidence only, never required)."""
    off = []
    for ip in getattr(port, "fixed_ips", None) or []:
        try:
            subnet = conn.network.get_subnet(ip["subnet_id"])
        except Exception:  # gone, no right to read it: nothing to say
            return None
        if subnet.ip_version == 4 and subnet.is_dhcp_enabled is False:
            off.append(f"{subnet.name or subnet.id} ({subnet.cidr})")
    if not off:
        return None
    return (f"DHCP désactivé dans Neutron sur le sous-réseau {', '.join(off)} de l'instance "
            f"(enable_dhcp False : openstack subnet show)")


def _in_netns(namespace: str, argv: list[str], timeout: float) -> Optional[int]:
    """Exit status of `argv` run inside network namespace `namespace`; None when that namespace cannot
    be entered from here (not root, not the cloud's network node) or the command could not run."""
    try:
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if namespace not in namespaces.split():
        return None
    try:
        return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                              timeout=timeout + 10).returncode
    except (OSError, subprocess.SubprocessError):
        return None


def netns_tcp(namespace: str, address: str, port: int = 22, timeout: float = 3.0) -> Optional[bool]:
    """Whether address:port accepts a TCP connection from inside network namespace `namespace` (e.g.
    Neutron's qdhcp-<network id>); None when that cannot be probed from here."""
    import sys

    probe = (f"import socket,sys\ntry:\n socket.create_connection(('{address}',{int(port)}),{timeout}).close()\n"
             "except OSError:\n sys.exit(1)")
    status = _in_netns(namespace, [sys.executable, "-c", probe], timeout)
    return None if status not in (0, 1) else status == 0


def netns_ping(namespace: str, address: str, timeout: float = 2.0) -> Optional[bool]:
    """Whether `address` answers one ICMP echo from inside network namespace `namespace`; None when that
    cannot be probed from here."""
    status = _in_netns(namespace, ["ping", "-n", "-c", "1", "-W", str(max(1, int(timeout))), address], timeout)
    return None if status not in (0, 1) else status == 0


def _stdout(argv: list[str], timeout: float = 10) -> Optional[str]:
    """`argv`'s standard output when it ran and exited 0; None when it could not run, timed out or failed
    (what is read from here to diagnose is never required)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _ip_json(argv: list[str]) -> list:
    import json

    try:
        return json.loads(_stdout(["ip", "-j", *argv]) or "[]")
    except ValueError:
        return []


def host_route_conflict(address: str, bridges: list[str], routes: Optional[list] = None,
                        chosen: Optional[str] = None, links: Optional[list] = None) -> Optional[str]:
    """Why this host does not send `address` (a floating IP) to the cloud's external network, in French: a
    route of `bridges` (the cloud's external bridges on this host, e.g. the embedded cloud's popek-ex) covers
    it, yet the kernel picks another device (a more specific route of the owner's: a bridge or a libvirt
    network over part of the same addresses). None when the route goes through one of `bridges`, when none
    of them covers `address`, or when the routes cannot be read (popek away from the cloud's network node).
    routes / chosen: `ip -j route show match ADDRESS` and the device of `ip -j route get ADDRESS` (read here
    when not given). Also named: a bridge of `bridges` whose address network holds `address` and that is down
    (`ip link set … down`: its route went with it, the host sends the address elsewhere); links: `ip -j addr
    show dev BRIDGE` of each bridge (read here when not given and the route does not go through a bridge)."""
    if not bridges:
        return None
    routes = _ip_json(["route", "show", "match", address]) if routes is None else routes
    if chosen is None:
        chosen = next((r.get("dev") for r in _ip_json(["route", "get", address])), None)
    if chosen not in bridges:
        down = bridge_down(address, bridges, chosen, links)
        if down:
            return down
    ours = [r for r in routes if r.get("dev") in bridges and r.get("dst") != "default"]
    if not chosen or chosen in bridges or not ours:
        return None
    taken = [r for r in routes if r.get("dev") == chosen and r.get("dst") != "default"]
    if not taken:
        return None
    flags = ", ".join(taken[0].get("flags") or [])
    return (f"cet hôte envoie {address} par {chosen} (route {taken[0].get('dst')}{' ' + flags if flags else ''}), "
            f"pas par {ours[0].get('dev')}, le pont du réseau externe du cloud (route {ours[0].get('dst')}) : une "
            f"route plus précise d'une autre interface de l'hôte capte ces adresses (un pont ou un réseau de "
            f"l'hôte qui chevauche le réseau externe du cloud)")


def bridge_down(address: str, bridges: list[str], chosen: Optional[str], links: Optional[list] = None) -> Optional[str]:
    """host_route_conflict's other case, in French: a bridge of `bridges` holding an address whose network holds
    `address` is down (no UP flag), so the kernel took its route away and sends `address` by `chosen` (None: no
    route at all). None when no such bridge is down. links: `ip -j addr show dev BRIDGE` of each (read here)."""
    import ipaddress

    if links is None:
        links = [link for bridge in bridges for link in _ip_json(["addr", "show", "dev", bridge])]
    for link in links:
        if link.get("ifname") not in bridges or "UP" in (link.get("flags") or []):
            continue
        for info in link.get("addr_info") or []:
            try:
                net = ipaddress.ip_interface(f"{info.get('local')}/{info.get('prefixlen')}").network
                if ipaddress.ip_address(address) not in net:
                    continue
            except ValueError:
                continue
            way = f"par {chosen}" if chosen else "nulle part (aucune route)"
            return (f"cet hôte envoie {address} {way}, pas par {link['ifname']}, le pont du réseau externe du cloud "
                    f"({info.get('local')}/{info.get('prefixlen')}) : ce pont est à l'arrêt (ip link : pas de drapeau "
                    f"UP, état {link.get('operstate') or '?'}), sa route vers {net} a disparu avec lui")
    return None


#: One trace line of `nft monitor trace`: "trace id ID FAMILY TABLE CHAIN (packet: …|rule … (verdict X)|policy X)".
_TRACE_LINE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (.*)$")


def trace_drops(text: str, own_table: str) -> list[dict]:
    """The drops in `text` (`nft monitor trace` output) of the packets that popek's table `own_table` marked
    for tracing: [{"table": "inet ownerfw", "chain": "output", "how": "rule … (verdict drop)" or "policy drop",
    "packet": "tcp"/"icmp"/…}], in the order they happened. Packets another tracer marked are ignored."""
    ours, proto, drops = set(), {}, []
    for line in text.splitlines():
        m = _TRACE_LINE.match(line.strip())
        if not m:
            continue
        tid, family, table, chain, rest = m.groups()
        if table == own_table:
            ours.add(tid)
        if tid not in ours:
            continue
        if rest.startswith("packet:"):
            p = re.search(r"\bip protocol (\S+)", rest)
            proto.setdefault(tid, p.group(1) if p else "?")
        elif table != own_table and (re.search(r"\(verdict (drop|reject)\)\s*$", rest) or re.match(r"policy drop\b", rest)):
            how = re.sub(r" counter packets \d+ bytes \d+", " counter", rest.strip())  # the same rule, each time
            drops.append({"table": f"{family} {table}", "chain": chain, "how": how, "packet": proto.get(tid, "?")})
    return drops


def _stale_trace_tables(listing: Optional[str]) -> list[str]:
    """The `inet popek-trace-<pid>` tables of `listing` (`nft -j list tables`) whose process is gone: left by
    a host_firewall_drops killed (SIGKILL, OOM) between making its table and its `finally`."""
    import json
    import os

    try:
        items = json.loads(listing or "{}").get("nftables", [])
    except ValueError:
        return []
    stale = []
    for item in items:
        t = item.get("table") if isinstance(item, dict) else None
        m = re.fullmatch(r"popek-trace-(\d+)", (t or {}).get("name", ""))
        if not m or t.get("family") != "inet":
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            stale.append(t["name"])
        except (PermissionError, OverflowError):
            pass
    return stale


#: One line of `iptables-legacy-save -c`: a table, a chain's policy with its counters, or a rule with its counters.
_LEGACY_TABLE = re.compile(r"^\*(\S+)$")
_LEGACY_POLICY = re.compile(r"^:(\S+) (\S+) \[(\d+):\d+\]$")
_LEGACY_RULE = re.compile(r"^\[(\d+):\d+\] -A (\S+) (.*)$")


def legacy_counters(text: Optional[str]) -> dict[tuple[str, str, str], int]:
    """The dropping rules and policies of `text` (`iptables-legacy-save -c`) with their packet counters:
    {(table, chain, "policy DROP" or the rule as written): packets}. A rule drops when its target is DROP or
    REJECT; a policy when it is DROP."""
    found: dict[tuple[str, str, str], int] = {}
    table = "?"
    for line in (text or "").splitlines():
        line = line.strip()
        m = _LEGACY_TABLE.match(line)
        if m:
            table = m.group(1)
            continue
        m = _LEGACY_POLICY.match(line)
        if m and m.group(2) == "DROP":
            found[(table, m.group(1), "policy DROP")] = int(m.group(3))
            continue
        m = _LEGACY_RULE.match(line)
        if m and re.search(r"(?:^| )-j (DROP|REJECT)\b", m.group(3)):
            key = (table, m.group(2), f"-A {m.group(2)} {m.group(3)}")
            found[key] = found.get(key, 0) + int(m.group(1))
    return found


def _legacy_rule_may_match(rule: str, address: str, packets, local: Optional[str] = None) -> bool:
    """Whether `rule` (one line of iptables-legacy-save) can concern the traffic between this host (its
    address `local` towards `address`, None when unknown) and `address`, either way: each of its source and
    destination absent, negated or covering the right end; and a protocol among `packets` (None: any)."""
    import ipaddress

    def may(opt: str, addr: Optional[str]) -> bool:
        m = re.search(rf"(?:^| )(! )?{opt} (\S+)", rule)
        if not m or m.group(1) or addr is None:
            return True
        try:
            return ipaddress.ip_address(addr) in ipaddress.ip_network(m.group(2), strict=False)
        except ValueError:
            return True

    outgoing = may("-d", address) and may("-s", local)
    incoming = may("-s", address) and may("-d", local)
    proto = re.search(r"(?:^| )(! )?-p (\S+)", rule)
    any_proto = packets is None or proto is None or bool(proto.group(1)) or proto.group(2) in packets
    return (outgoing or incoming) and any_proto


def legacy_names(how: str, address: str) -> bool:
    """Whether the iptables-legacy rule `how` names `address` itself: a -d or -s (not negated) that covers
    it. Only such a rule's counter is evidence about this traffic; a policy or a rule without addresses counts
    every packet of the host (ufw's INPUT DROP, Docker's FORWARD DROP drop background traffic all the time)."""
    import ipaddress

    for m in re.finditer(r"(?:^| )(! )?-[sd] (\S+)", how):
        if m.group(1):
            continue
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(m.group(2), strict=False):
                return True
        except ValueError:
            continue
    return False


class Suspect(str):
    """What host_firewall_drops says when the only drops it saw are counters of iptables-legacy policies or
    rules that do not name the address (and rose beyond an idle interval's): a note for the verdict that
    follows the other probes, never the verdict "host-firewall"."""


def legacy_drops(before: dict, after: dict, address: str, packets=None, local: Optional[str] = None) -> list[dict]:
    """The dropping rules and policies of iptables-legacy (legacy_counters before and after an attempt) whose
    packet counter rose meanwhile and that can concern the traffic between `local` (this host's address
    towards `address`, None: unknown) and `address`: [{"table": "filter (iptables-legacy)", "chain", "how",
    "packets": n}]. nftables does not see these tables: only their counters say it."""
    drops = []
    for (table, chain, how), n in after.items():
        rose = n - before.get((table, chain, how), 0)
        if rose <= 0:
            continue
        if how != "policy DROP" and not _legacy_rule_may_match(how, address, packets, local):
            continue
        drops.append({"table": f"{table} (iptables-legacy)", "chain": chain, "how": how, "packets": rose})
    return drops


def host_firewall_drops(address: str, port: int = 22, timeout: float = 1.5, packets=None,
                        owners_only: bool = False) -> Optional[str]:
    """Which chains of this host's own firewall (nftables, iptables-nft) drop its traffic with `address` (a
    floating IP), in French; None when none does, or when that cannot be traced from here (not root, no nft).
    packets: the kinds of packets that count ("tcp", "icmp"…), None for all; owners_only: leave out the drops
    of popek's own fence (`table inet popek`, which drops only unsolicited packets from the cloud: evidence
    about the cloud, not a block of this host's traffic). A verdict on SSH asks ("tcp",), owners_only.

    One TCP connection attempt to `port` and one ping, traced through netfilter: a table of popek's own, made
    for the moment and deleted afterwards (`inet popek-trace-<pid>`), marks the packets to and from `address`
    (`meta nftrace`) before any other chain sees them, and `nft monitor trace` says which chain's rule or
    policy dropped them. Nothing of the host's tables is changed. iptables-legacy's tables (x_tables, which
    nftables neither lists nor traces) are read with `iptables-legacy-save -c` before and after: a dropping
    rule or policy whose counter rose meanwhile, and that can concern `address`, is named with its count.
    Counters are not a trace: only a rule whose -d/-s covers `address` is evidence; a policy or a rule without
    addresses (which any background packet raises) counts only beyond an idle interval as long as the attempt,
    and when nothing else dropped, the answer is a Suspect (a note, never the verdict "host-firewall").
    A trace table whose process is gone (killed before its `finally`) is deleted first."""
    import os

    if os.geteuid() != 0:
        return None
    legacy_before = _stdout(["iptables-legacy-save", "-c"])
    nft = _stdout(["nft", "--version"]) is not None
    if not nft and legacy_before is None:
        return None
    began = time.monotonic()
    drops = _nft_traced_drops(address, port, timeout) if nft else _attempt(address, port, timeout) or []
    lasted = time.monotonic() - began
    if drops is None:
        return None
    drops = [d for d in drops
             if (packets is None or d["packet"] in packets) and not (owners_only and d["table"] == "inet popek")]
    legacy = []
    if legacy_before is not None:
        local = next((r.get("prefsrc") for r in _ip_json(["route", "get", address])), None)
        legacy = legacy_drops(legacy_counters(legacy_before), legacy_counters(_stdout(["iptables-legacy-save", "-c"])),
                              address, packets, local)
        vague = [d for d in legacy if not legacy_names(d["how"], address)]
        if vague:
            # counters are not a trace: an idle interval as long as the attempt, and only the rise beyond it
            quiet = legacy_counters(_stdout(["iptables-legacy-save", "-c"]))
            time.sleep(min(max(lasted, 1.0), 10.0))
            idle = legacy_drops(quiet, legacy_counters(_stdout(["iptables-legacy-save", "-c"])), address, packets, local)
            background = {(d["table"], d["chain"], d["how"]): d["packets"] for d in idle}
            for d in vague:
                d["background"] = background.get((d["table"], d["chain"], d["how"]), 0)
                d["packets"] -= d["background"]
            legacy = [d for d in legacy if d["packets"] > 0]
    if not drops and not legacy:
        return None
    named = [d for d in legacy if "background" not in d]
    if not drops and not named:  # only policies or rules without the address rose: a suspicion, not a verdict
        return Suspect("le pare-feu iptables-legacy de cet hôte a jeté des paquets pendant l'essai, sans preuve qu'ils "
                       f"concernaient {address} — " + " ; ".join(
                           f"table {d['table']}, chaîne {d['chain']} : {d['how'][:160]} (+{d['packets']} paquet(s) "
                           f"au-delà des {d['background']} d'un intervalle calme aussi long)" for d in legacy[:3]))
    rules: dict[str, list[str]] = {}  # each dropping rule or policy once, with the kinds of packets it dropped
    for d in drops:
        kinds = rules.setdefault(f"table {d['table']}, chaîne {d['chain']} : {d['how'][:160]}", [])
        if d["packet"] not in kinds:
            kinds.append(d["packet"])
    seen = [f"{where} (paquet{'s' if len(kinds) > 1 else ''} {', '.join(kinds)})" for where, kinds in rules.items()]
    seen += [f"table {d['table']}, chaîne {d['chain']} : {d['how'][:160]} ({d['packets']} paquet(s) jeté(s) pendant "
             "l'essai, compteur de iptables-legacy-save -c)" for d in named]
    seen += [f"peut-être aussi : table {d['table']}, chaîne {d['chain']} : {d['how'][:160]} (+{d['packets']} "
             f"paquet(s) au-delà d'un intervalle calme, règle qui ne nomme pas {address})"
             for d in legacy if "background" in d]
    if named:
        whose = "le pare-feu iptables-legacy de cet hôte (pas celui du cloud, invisible à nftables)"
    elif all(d["table"] == "inet popek" for d in drops):
        whose = "la clôture de popek"
    else:
        whose = "le pare-feu de cet hôte (nftables/iptables, pas celui du cloud)"
    return f"{whose} jette le trafic entre cet hôte et {address} — " + " ; ".join(seen[:3])


def _attempt(address: str, port: int, timeout: float) -> None:
    """One TCP connection attempt to `address`:`port` and one ping (what host_firewall_drops watches)."""
    import socket

    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except OSError:
        pass
    try:
        subprocess.run(["ping", "-n", "-c", "1", "-W", "1", address], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):  # no ping here: the TCP attempt alone
        pass


def _nft_traced_drops(address: str, port: int, timeout: float) -> Optional[list[dict]]:
    """`_attempt`, traced through nftables (see host_firewall_drops): trace_drops' list, None when it could
    not be traced."""
    import os
    import tempfile

    for stale in _stale_trace_tables(_stdout(["nft", "-j", "list", "tables"])):
        subprocess.run(["nft", "delete", "table", "inet", stale], capture_output=True, timeout=10)
    table = f"popek-trace-{os.getpid()}"
    script = (f"table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n"
              f"  chain out {{\n    type filter hook output priority -350;\n    ip daddr {address} meta nftrace set 1\n  }}\n"
              f"  chain pre {{\n    type filter hook prerouting priority -350;\n    ip saddr {address} meta nftrace set 1\n  }}\n}}\n")
    with tempfile.TemporaryFile("w+") as out:
        try:
            monitor = subprocess.Popen(["nft", "monitor", "trace"], stdout=out, stderr=subprocess.DEVNULL)
        except OSError:
            return None
        try:
            time.sleep(0.3)  # the monitor subscribes before the first traced packet
            if subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                              timeout=10).returncode != 0:
                return None
            _attempt(address, port, timeout)
            time.sleep(0.3)
        except (OSError, subprocess.SubprocessError):
            return None
        finally:
            subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, timeout=10)
            monitor.terminate()
            try:
                monitor.wait(5)
            except subprocess.TimeoutExpired:
                monitor.kill()
                monitor.wait()
        out.seek(0)
        return trace_drops(out.read(), table)


def fip_path(fip: str, fixed: str, port_mac: str, router_id: str) -> dict:
    """Facts on the way from this host to floating IP `fip` (DNATed by router `router_id` to `fixed`, the
    port whose MAC is `port_mac`), read where popek runs on the cloud's network node: which MAC this host
    sends `fip` to, which routers' namespaces hold `fip` and with which gateway MAC, whether the router
    has the DNAT rule, which MAC the router sends `fixed` to, and whether `fixed` answers from the router.
    Empty when the namespaces cannot be read from here."""
    try:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    routers = [w for w in names.split() if w.startswith("qrouter-")]
    ours = f"qrouter-{router_id}"
    if ours not in routers:
        return {}
    facts: dict = {"host_neighbour": [{k: n.get(k) for k in ("dev", "lladdr", "state")}
                                      for n in _ip_json(["neigh", "show", "to", fip])],
                   "holders": {}}
    for ns in routers:
        for link in _ip_json(["-n", ns, "addr", "show"]):
            if any(a.get("local") == fip for a in link.get("addr_info", [])):
                facts["holders"][ns] = {"dev": link.get("ifname"), "mac": link.get("address")}
    try:
        nat = subprocess.run(["ip", "netns", "exec", ours, "iptables-save", "-t", "nat"], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        nat = ""
    facts["dnat"] = any(f"-d {fip}/32" in line and f"--to-destination {fixed}" in line for line in nat.splitlines())
    facts["router_neighbour"] = [{k: n.get(k) for k in ("dev", "lladdr", "state")}
                                 for n in _ip_json(["-n", ours, "neigh", "show", "to", fixed])]
    facts["router_pings_fixed"] = netns_ping(ours, fixed)
    # one more ping of the floating IP from here, with what a host firewall dropped meanwhile (popek's own
    # fence counts the cloud's packets it refuses; None where there is none)
    before = _fence_refused()
    facts["host_pings_fip"] = traffic.ping(fip, 2)
    after = _fence_refused()
    facts["fence_refused_during_ping"] = None if before is None or after is None else after - before
    facts["host_firewall"] = host_firewall_drops(fip)
    facts["router"], facts["fip"], facts["fixed"], facts["port_mac"] = ours, fip, fixed, port_mac
    return facts


#: Neutron's OVS firewall: the OpenFlow table of a port's ingress rules (neutron_lib ovs_constants)
RULES_INGRESS_TABLE = 82


def port_icmp_flows(mgmt: Optional[str], port_id: str) -> Optional[list[str]]:
    """The ingress-rule flows of ICMP that Neutron's OVS firewall installed for port `port_id` (its tap
    `tap<id[:11]>` on the integration bridge of OpenFlow socket `mgmt`): [] when the rule is not (yet) in
    the switch; None when that cannot be read from here."""
    if not mgmt:
        return None
    ofctl = ["ovs-ofctl", "-O", "OpenFlow13"]
    shown = _stdout([*ofctl, "show", f"unix:{mgmt}"])
    m = re.search(r"^\s*(\d+)\(tap" + re.escape(port_id[:11]) + r"[^)]*\)", shown or "", re.M)
    if not m:
        return None
    flows = _stdout([*ofctl, "dump-flows", f"unix:{mgmt}", f"table={RULES_INGRESS_TABLE},reg5={m.group(1)}"])
    if flows is None:
        return None
    return [line.strip() for line in flows.splitlines() if re.search(r"\bicmp\b", line)]


def ovs_facts(ctl: Optional[str], fixed: str) -> dict:
    """What a userspace Open vSwitch (the embedded cloud's netdev datapath, control socket `ctl`) holds for
    the fixed address `fixed`: its conntrack entries (Neutron's firewall keeps one per connection, zone =
    network, ct_mark=1 once a removed rule no longer allows it) and the datapath flows of ICMP to it
    (cached for 10 s after their last packet). Read first when a ping is lost: both age out within seconds.
    Empty without `ctl` or when ovs-vswitchd does not answer."""
    if not ctl:
        return {}
    conntrack = _stdout(["ovs-appctl", "-t", ctl, "dpctl/dump-conntrack"])
    flows = _stdout(["ovs-appctl", "-t", ctl, "dpctl/dump-flows"])
    if conntrack is None and flows is None:
        return {}
    mine = f"dst={fixed},"
    return {"ovs_fixed": fixed,
            "ovs_conntrack": [line for line in (conntrack or "").splitlines() if mine in line.split("reply=")[0]][:40],
            "ovs_icmp_flows": [line for line in (flows or "").splitlines()  # not 10.0.0.5 for 10.0.0.55
                               if re.search(rf"\bdst={re.escape(fixed)}[,/)]", line) and "proto=1," in line][:20]}


def ovs_findings(facts: dict, source: Optional[str] = None) -> list[str]:
    """What ovs_facts() say, in French: ICMP connections of `source` (this host's address on the external
    network, None: any) to the fixed address that the userspace conntrack keeps marked invalid (Neutron's
    OVS firewall asks only the kernel's conntrack to forget them: on the netdev datapath they stay, and keep
    dropping their packets while those keep coming), and ICMP datapath flows that drop."""
    if not facts:
        return []
    said = []
    fixed = facts["ovs_fixed"]
    marked = [line for line in facts["ovs_conntrack"] if line.startswith("icmp,") and re.search(r",mark=0*1\b", line)
              and (source is None or f"src={source}," in line)]
    if marked:
        ids = sorted({m.group(1) for m in (re.search(r"\bid=(\d+)", line) for line in marked) if m})
        said.append(f"le conntrack d'Open vSwitch (datapath en espace utilisateur) garde {len(marked)} connexion(s) "
                    f"ICMP vers {fixed} marquée(s) invalide(s) (ct_mark=1 : règle retirée pendant qu'elles passaient ; "
                    f"identifiant(s) ICMP {', '.join(ids[:5])}) : Neutron ne les efface que du conntrack du noyau, "
                    f"un ping qui garde cet identifiant reste jeté")
    rule_flows = facts.get("ovs_port_icmp_rule_flows")
    if rule_flows == []:
        said.insert(0, f"aucun flux OpenFlow de règle ICMP pour le port de {fixed} (table {RULES_INGRESS_TABLE} du pont "
                       f"d'intégration) au moment de l'échec : l'agent Open vSwitch de Neutron n'avait pas (encore) "
                       f"appliqué la règle ICMP du groupe")
    dropping = [line for line in facts["ovs_icmp_flows"] if line.rstrip().endswith("actions:drop")]
    if dropping:
        used = re.search(r"used:([^,]+)", dropping[0])
        said.append(f"le datapath d'Open vSwitch a {len(dropping)} flux ICMP vers {fixed} qui jette(nt) les paquets "
                    f"(dernier usage : {used.group(1) if used else '?'})")
    return said


#: The OVS agent's own word on its cookies, logged when it cleans its bridges of stale flows once after it starts
#: (neutron's ofswitch.cleanup_flows), after the line's time and pid: "2026-12-07 09:42:14.380 19790 INFO … Reserved
#: cookies for popek-int: {16090543154770756775}". Its flows carry one of these; it deletes any other only at its next
#: start.
_RESERVED_COOKIES = re.compile(r"^\S+ \S+ (\d+) .*?Reserved cookies for (\S+): (?:set\(\)|\{([\d, ]*)\})", re.M)
#: The tables of the integration bridge where Neutron's OVS firewall writes a port's flows. While it rewrites them it
#: stamps them with a cookie of the moment (firewall.update_cookie_context, not in the logged set) and some keep it:
#: there a flow with a non-zero cookie the agent did not log is no evidence (neutron_lib ovs_constants 60–94).
FIREWALL_TABLES = frozenset({60, 71, 72, 73, 81, 82, 91, 92, 93, 94})
#: The fields of an `ovs-ofctl dump-flows` line that are counters or options, not part of what the flow matches.
_FLOW_META = {"cookie", "duration", "table", "n_packets", "n_bytes", "idle_age", "hard_age", "idle_timeout",
              "hard_timeout", "importance", "send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts",
              "no_byte_counts", "priority"}
#: The priority of a flow whose `ovs-ofctl dump-flows` line says none (OFP_DEFAULT_PRIORITY).
DEFAULT_PRIORITY = 32768


def agent_cookies(log_text: str, alive: Optional[Callable[[int], bool]] = None) -> dict[str, set[int]]:
    """{bridge: the cookies the OVS agent reserved for it} from the last "Reserved cookies for …" line of each
    bridge in the agent's log (`log_text`). alive(pid): whether the agent process that wrote a line still runs; a
    bridge whose last line comes from a process gone (a new agent that has not said its cookies yet) is left out,
    as is a bridge the log does not name."""
    last: dict[str, tuple[int, set[int]]] = {}
    for m in _RESERVED_COOKIES.finditer(log_text or ""):
        last[m.group(2)] = (int(m.group(1)), {int(c) for c in re.findall(r"\d+", m.group(3) or "")})
    return {bridge: cookies for bridge, (pid, cookies) in last.items() if alive is None or alive(pid)}


def parse_flows(dump: Optional[str]) -> list[dict]:
    """The flows of `dump` (`ovs-ofctl dump-flows` output): [{"cookie": int, "table": int, "priority": int,
    "packets": int or None, "match": "dl_vlan=4095,…" ("" for every packet), "actions": str,
    "text": the flow as written, without its counters}]."""
    flows = []
    for line in (dump or "").splitlines():
        line = line.strip()
        if "actions=" not in line or line.startswith(("OFPST", "NXST")):  # the reply's header
            continue
        head, actions = line.split("actions=", 1)
        fields = [f for f in re.split(r"[,\s]+", head) if f]
        value = {k: v for k, _, v in (f.partition("=") for f in fields)}
        try:
            cookie = int(value.get("cookie", "0"), 16)
            table = int(value.get("table", "0"))
            priority = int(value.get("priority", DEFAULT_PRIORITY))
            packets = int(value["n_packets"]) if "n_packets" in value else None
        except ValueError:
            continue
        match = ",".join(f for f in fields if f.partition("=")[0] not in _FLOW_META)
        text = f"cookie={cookie:#x}, table={table}, priority={priority}{',' + match if match else ''} actions={actions}"
        flows.append({"cookie": cookie, "table": table, "priority": priority, "packets": packets, "match": match,
                      "actions": actions.strip(), "text": text})
    return flows


def foreign_flows(dump: Optional[str], cookies: Optional[set[int]],
                  firewall_tables=frozenset()) -> Optional[list[dict]]:
    """The flows of `dump` (`ovs-ofctl dump-flows` of one bridge) that no agent wrote: a cookie none of `cookies`
    (what the OVS agent reserved for that bridge), and either 0 (no writer's stamp: `ovs-ofctl add-flow`'s default)
    or outside `firewall_tables` (FIREWALL_TABLES on the integration bridge: where the firewall's own cookies of
    the moment live), those most likely to see a packet first first (lowest table, highest priority). None when this
    cannot be told: no dump, no cookies, or no flow of the dump carries the agent's cookies (the agent restarted
    since it said them, or does not drive this bridge)."""
    flows = parse_flows(dump)
    if not cookies or not any(f["cookie"] in cookies for f in flows):
        return None
    alien = [f for f in flows
             if f["cookie"] not in cookies and (f["cookie"] == 0 or f["table"] not in firewall_tables)]
    return sorted(alien, key=lambda f: (f["table"], -f["priority"]))


def _flow_said(bridge: str, flow: dict) -> str:
    """One foreign flow, in French, with its text as the evidence."""
    match = f", match {flow['match']}" if flow["match"] else ", tout paquet"
    took = "" if flow["packets"] is None else f", {flow['packets']} paquet(s) pris"
    return (f"un flux OpenFlow étranger (cookie {flow['cookie']:#x}, table {flow['table']}, priorité {flow['priority']}"
            f"{match}, actions={flow['actions'][:120]}{took}) dans {bridge}, écrit par aucun agent — "
            f"« {flow['text'][:300]} »")


#: match fields that name who a packet is from or for (a flow that has none covers every guest's packets)
_PATH_FIELDS = {
    "mac": {"dl_src", "dl_dst", "eth_src", "eth_dst", "arp_sha", "arp_tha", "nd_sll", "nd_tll"},
    "ip": {"nw_src", "nw_dst", "ip_src", "ip_dst", "arp_spa", "arp_tpa", "ipv6_src", "ipv6_dst", "nd_target"},
    "port": {"in_port", "reg5"},  # reg5: the OVS firewall's copy of the port's OpenFlow number
    "vlan": {"dl_vlan", "vlan_vid", "reg6"}}  # reg6: the OVS firewall's conntrack zone, the local VLAN


def _names(kind: str, value: str, path: dict, bridge: str) -> bool:
    """Whether one match field's `value` (of `kind`, _PATH_FIELDS) in `bridge` names something of `path`."""
    import ipaddress

    value = value.lower()
    if kind == "ip":
        try:
            net = ipaddress.ip_network(value, strict=False)
            return any(ipaddress.ip_address(a) in net for a in path.get("ip", ()) if a)
        except ValueError:
            return False
    if kind == "vlan":
        try:
            return (int(value.split("/")[0], 0) & 0xFFF) in {int(v) for v in path.get("vlan", ())}
        except ValueError:
            return False
    value = value.split("/")[0]
    if kind == "port" and re.fullmatch(r"0x[0-9a-f]+|\d+", value):
        value = str(int(value, 0))
    known = path.get("port", {}).get(bridge, ()) if kind == "port" else path.get(kind, ())
    return value in {str(v).lower() for v in known}


def on_path(flow: dict, path: Optional[dict], bridge: str) -> bool:
    """Whether `flow` (parse_flows) of `bridge` can take the guest's packets: its match names no MAC, IP, OpenFlow port or
    VLAN (empty, or protocol fields only: every guest's packets of that kind), or names one of `path`
    ({"mac": its port's MAC and the router's/DHCP's, "ip": its fixed and floating IPs, 169.254.169.254…,
    "port": {bridge: the OpenFlow ports of its tap, router and DHCP ports}, "vlan": their local VLANs}). Not when `path` is unknown and the
    match names someone."""
    named = [(kind, v) for k, _, v in (f.partition("=") for f in flow["match"].split(",") if f)
             for kind, keys in _PATH_FIELDS.items() if k in keys]
    if not named:
        return True
    return bool(path) and any(_names(kind, v, path, bridge) for kind, v in named)


def ofports(shown: Optional[str], port_ids) -> set[str]:
    """The OpenFlow port numbers, in `shown` (`ovs-ofctl show` of the integration bridge), of Neutron ports
    `port_ids` (their devices tap…, qr-…, qg-…: the prefix and the id's first 11 characters)."""
    found = set()
    for port_id in port_ids:
        m = re.search(r"^\s*(\d+)\((?:tap|qr-|qg-|ha-)" + re.escape(port_id[:11]) + r"[^)]*\)", shown or "", re.M)
        if m:
            found.add(m.group(1))
    return found


def local_vlans(dump: Optional[str], ports: set[str]) -> set[int]:
    """The local VLANs that the OVS agent's flows of `dump` (the integration bridge) give the packets coming in
    on OpenFlow ports `ports`: set_field:<4096+vlan>->vlan_vid or mod_vlan_vid:<vlan> (table 0, a patch port),
    or set_field:<vlan>->reg6 (table 60, the OVS firewall's conntrack zone of a tap: its local VLAN)."""
    found = set()
    for flow in parse_flows(dump):
        fields = dict(f.partition("=")[::2] for f in flow["match"].split(",") if f)
        if fields.get("in_port") not in ports:
            continue
        for m in re.finditer(r"set_field:(0x[0-9a-fA-F]+|\d+)->(?:vlan_vid|reg6)|mod_vlan_vid:(\d+)", flow["actions"]):
            found.add(int(m.group(1) or m.group(2), 0) & 0xFFF)
    return found


def _counts(dump: Optional[str]) -> Optional[dict[str, int]]:
    """{flow text: packets} of one dump; None without a dump."""
    if dump is None:
        return None
    return {f["text"]: f["packets"] or 0 for f in parse_flows(dump)}


def foreign_flow_findings(dumps: dict[str, Optional[str]], cookies: dict[str, set[int]],
                          integration: Optional[str] = None, before: Optional[dict[str, Optional[str]]] = None,
                          path: Optional[Callable[[], Optional[dict]]] = None) -> Optional[str]:
    """What the flows of the embedded cloud's bridges say, in French: `dumps` {bridge: `ovs-ofctl dump-flows`},
    `cookies` {bridge: the cookies the OVS agent reserved for it} (agent_cookies), `integration` the integration
    bridge (where the firewall's tables are), `before` the same dumps read when the watch began, `path` what
    names the guest's way (on_path; asked only when a foreign flow took packets during the watch).

    A flow no agent wrote (foreign_flows) whose packets grew during the watch and whose match can take the
    guest's packets is on the traffic's way and does what no agent decided: conclusive, named first. Any other
    foreign flow (idle, its packets all older than the watch, no `before` to tell, or another guest's) is only
    a Suspect (a note). None when there is none, or when it cannot be told."""
    taken, other = [], []
    grown = []
    for bridge, dump in dumps.items():
        tables = FIREWALL_TABLES if bridge == integration else frozenset()
        start = _counts((before or {}).get(bridge))
        for flow in foreign_flows(dump, cookies.get(bridge), tables) or []:
            if flow["packets"] and start is not None and flow["packets"] > start.get(flow["text"], 0):
                grown.append((bridge, flow))
            else:
                other.append((bridge, flow, "sans paquet pris" if not flow["packets"] else
                              "aucun paquet pris pendant l'observation" if start is not None else
                              "sans relevé au début de l'observation"))
    if grown:
        where = path() if path else None
        for bridge, flow in grown:
            if on_path(flow, where, bridge):
                taken.append((bridge, flow))
            else:
                other.append((bridge, flow, "ne vise pas le chemin de cette instance"))
    if taken:
        ours = " ; ".join(f"{b} : {', '.join(f'{c:#x}' for c in sorted(cookies[b]))}"
                          for b in dict.fromkeys(b for b, _ in taken))
        more = f" (et {len(taken) - 2} autre(s))" if len(taken) > 2 else ""
        return (" ; ".join(_flow_said(b, f) for b, f in taken[:2]) + more
                + f" — il a pris des paquets pendant l'observation et peut prendre ceux de l'instance ; l'agent "
                f"Open vSwitch de Neutron marque les siens de son cookie ({ours}), les agents du cloud ne sont pas "
                "en cause")
    if other:
        return Suspect(" ; ".join(f"{_flow_said(b, f)} ({why})" for b, f, why in other[:2]))
    return None


def _process_runs(pid: int) -> bool:
    """Whether process `pid` still runs (on this host)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def ovs_flow_dumps(bridges: dict[str, str]) -> dict[str, Optional[str]]:
    """{bridge: `ovs-ofctl dump-flows` of its OpenFlow management socket (None when it cannot be read)}: the
    counters at a watch's start, for ovs_foreign_flows(before=…)."""
    return {bridge: _stdout(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", f"unix:{mgmt}"])
            for bridge, mgmt in bridges.items()}


def ovs_foreign_flows(bridges: dict[str, str], agent_log: Optional[str], integration: Optional[str] = None,
                      limit: int = 64 << 20, alive: Callable[[int], bool] = _process_runs,
                      before: Optional[dict[str, Optional[str]]] = None,
                      path: Optional[Callable[[], Optional[dict]]] = None) -> Optional[str]:
    """foreign_flow_findings() on the live bridges: `bridges` {bridge: its OpenFlow management socket (the
    embedded cloud's userspace OVS)}, `agent_log` the OVS agent's log file (its last `limit` bytes are read for
    the cookies it reserved, from lines of an agent process still `alive`), `integration` the integration
    bridge, `before` the dumps at the watch's start (ovs_flow_dumps) and `path` the guest's way
    (foreign_flow_findings). None when nothing is foreign or that cannot be read from here."""
    if not bridges or not agent_log:
        return None
    try:
        with open(agent_log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - limit))
            cookies = agent_cookies(f.read().decode("utf-8", "replace"), alive)
    except OSError:
        return None
    dumps = {bridge: _stdout(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", f"unix:{mgmt}"])
             for bridge, mgmt in bridges.items() if bridge in cookies}
    return foreign_flow_findings(dumps, cookies, integration, before, path)


def _fence_refused() -> Optional[int]:
    """Packets popek's fence (`table inet popek`, counter `refused_input`) has refused so far; None
    without that table."""
    import json

    try:
        out = subprocess.run(["nft", "-j", "list", "counter", "inet", "popek", "refused_input"],
                             capture_output=True, text=True, timeout=10)
        for item in json.loads(out.stdout or "{}").get("nftables", []):
            if "counter" in item:
                return int(item["counter"].get("packets", 0))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return None


def fip_findings(facts: dict) -> list[str]:
    """What `fip_path()`'s facts say, in French, most conclusive first: a floating IP held by another
    router too, this host sending it to a MAC that is not our router's gateway, a missing DNAT rule, a
    stale neighbour entry in the router for the fixed address."""
    if not facts:
        return []
    said = []
    fip, fixed, ours = facts["fip"], facts["fixed"], facts["router"]
    holders = facts["holders"]
    others = sorted(ns for ns in holders if ns != ours)
    if others:
        said.append(f"l'IP flottante {fip} est aussi portée par {', '.join(others)} (agent L3 : adresse non retirée "
                    f"d'un autre routeur)")
    if ours not in holders:
        said.append(f"le routeur {ours} ne porte pas l'IP flottante {fip} sur sa passerelle (agent L3)")
    gateway = holders.get(ours, {}).get("mac")
    sent_to = [n.get("lladdr") for n in facts["host_neighbour"] if n.get("lladdr")]
    if gateway and sent_to and gateway not in sent_to:
        owner = [ns for ns, h in holders.items() if h.get("mac") in sent_to]
        said.append(f"cet hôte envoie {fip} à la MAC {sent_to[0]}"
                    f"{' (' + owner[0] + ')' if owner else ''}, pas à la passerelle du routeur ({gateway}) : "
                    f"entrée ARP de l'hôte périmée")
    if not facts["dnat"]:
        said.append(f"le routeur n'a pas de règle DNAT {fip} → {fixed} (agent L3, NAT)")
    seen = [n.get("lladdr") for n in facts["router_neighbour"] if n.get("lladdr")]
    if seen and facts["port_mac"] and facts["port_mac"].lower() not in [s.lower() for s in seen]:
        said.append(f"le routeur envoie {fixed} à la MAC {seen[0]}, pas à celle du port ({facts['port_mac']}) : "
                    f"entrée ARP du routeur périmée")
    if isinstance(facts.get("host_firewall"), Suspect):
        said.append("peut-être aussi : " + facts["host_firewall"])
    elif facts.get("host_firewall"):
        said.insert(0, facts["host_firewall"])
    refused = facts.get("fence_refused_during_ping")
    if refused:
        said.append(f"pendant un ping de {fip}, la clôture de popek (nft table inet popek) a refusé {refused} "
                    f"paquet(s) entrant(s) : la réponse revient sans être reconnue comme une connexion de l'hôte")
    if facts.get("host_pings_fip") is True:
        said.append(f"{fip} répond de nouveau au ping depuis cet hôte au moment du diagnostic (perte passagère)")
    if facts["router_pings_fixed"] is False:
        said.append(f"{fixed} ne répond pas au ping depuis le routeur")
    elif facts["router_pings_fixed"] is True and not said:
        said.append(f"{fixed} répond au ping depuis le routeur, qui porte l'IP flottante et sa règle DNAT : "
                    f"la perte est entre cet hôte et la passerelle du routeur")
    return said
