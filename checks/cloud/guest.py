"""A guest this host reaches over SSH through a floating IP of its own (the dataplane scenarios, C14,
C18, C19, C24, C25, C26): give a server a floating IP, wait until the run's key logs in through it —
naming the failing component as soon as its console shows it (diagnosis.watch) — and keep what the
checks then need in one `ReachableGuest`: the server, the floating IP, the address, the user, the image,
the security group, the key and a liveness proof (traffic.Liveness) for the negative checks.

A library, like the rest of checks/: connections, ledgers and values come in as arguments. What a
scenario should keep as evidence goes through `attach(title, value)` (a str is text, anything else
JSON), a callable the caller gives; nothing here knows pytest or the report.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable, Optional

from popek.checks.cloud import compute, connection, diagnosis, network, secgroups, stuck, traffic

SSH_BOOT_TIMEOUT = 300      # a guest under QEMU TCG, through nova: boot, DHCP, metadata, dropbear
#: Seconds a floating IP may keep leading to its old instance after the API moved it (the L3 agent
#: rewrites its NAT within seconds).
MOVE_GRACE = 60
HEARTBEAT = "popek_heartbeat"  # image property: the prefix of the guest's console heartbeat
#: Where the user data of the cloud-init scenario (C19) write their token.
CLOUD_INIT_FILE = "/run/popek-cloud-init"

#: attach(title, value): keep `value` as evidence of the scenario (a str as text, anything else as JSON).
Attach = Callable[[str, object], None]


@dataclasses.dataclass
class ReachableGuest:
    """A server that answered SSH with the run's key through its floating IP `address`.

    alive: proof that it still runs (traffic.Liveness), asked by every negative check;
    ready_after: seconds from the moment the wait started (ACTIVE, or the floating IP associated) to SSH;
    token: what its user data wrote in CLOUD_INIT_FILE, when they wrote something."""
    server: object
    fip: object
    address: str
    user: str
    image: object
    group: object
    alive: Callable[[], bool]
    key: str = dataclasses.field(repr=False)  # the private half of the run's key (redacted)
    ready_after: float = 0.0
    token: Optional[str] = None
    _meta_data: Optional[dict] = dataclasses.field(default=None, repr=False)

    def run(self, command: str, timeout: float = 10.0) -> tuple[int, str]:
        """(exit status, output) of `command` run in the guest over SSH with the run's key."""
        return traffic.ssh_run(self.address, self.user, self.key, command, timeout=timeout)

    def meta_data(self) -> dict:
        """The instance's OpenStack metadata (openstack/latest/meta_data.json), fetched from inside it
        once (AssertionError, in French, when the guest cannot read them)."""
        if self._meta_data is None:
            status, out = self.run(compute.METADATA_GET.format(path="openstack/latest/meta_data.json"))
            try:
                self._meta_data = json.loads(out)
            except ValueError:
                raise AssertionError(f"metadata illisibles depuis l'instance (statut {status}) : {out[:300]!r}") from None
        return self._meta_data

    def reaches(self, target: str, timeout: float) -> bool:
        """True when this guest opens TCP/22 on `target` (another guest's fixed address) and reads an SSH
        banner; raises when this guest itself cannot be reached (traffic.tcp_from_guest)."""
        return traffic.tcp_from_guest(self.address, self.user, self.key, target, timeout)


@dataclasses.dataclass
class Neighbour:
    """A second guest on the same network, without a floating IP: reached from the first one only.
    group/rule: its own security group and SSH rule, when the scenario made them; alive: its liveness."""
    server: object
    fixed: str
    group: object = None
    rule: object = None
    alive: Optional[Callable[[], bool]] = None


@dataclasses.dataclass(frozen=True)
class Firewall:
    """A security group of the scenario that lets only SSH in, and that SSH rule (to remove it later)."""
    group: object
    ssh_rule: object


class ConsoleSince:
    """The server's whole console log, or what it printed since `mark()` (after a reboot)."""

    def __init__(self, conn, server):
        self.conn, self.server, self.offset = conn, server, 0

    def full(self) -> str:
        return compute.console_log(self.conn, self.server, length=None)

    def mark(self) -> None:
        self.offset = len(self.full())

    def __call__(self) -> str:
        return self.full()[self.offset:]


def image_of(conn, server):
    """The Glance image `server` booted from."""
    return conn.image.get_image((server.image or {})["id"])


def liveness(conn, server, image) -> traffic.Liveness:
    """The liveness proof of `server`: ACTIVE, and a newer console heartbeat where its image prints one."""
    return traffic.Liveness(conn, server, (image.properties or {}).get(HEARTBEAT))


def fixed_address(conn, server) -> str:
    """The first fixed address of `server`'s port."""
    return network.server_port(conn, server).fixed_ips[0]["ip_address"]


def observer(conn, server, image, address, user, private, console, admin=None) -> diagnosis.Observer:
    """What diagnosis.watch looks at while `server` is not reachable yet: SSH through `address`, its
    console, its status, its fixed address probed from the DHCP namespace (on the network node), and the
    health records' word (admin: an admin connection, or None)."""
    port = network.server_port(conn, server)
    fixed = port.fixed_ips[0]["ip_address"] if port.fixed_ips else None
    md_log = connection.EmbeddedLog("neutron-metadata-agent")  # its 403s from nova, from now on
    flows_before = embedded_flow_dumps()  # the flows' counters at the watch's start

    def status():
        # asked every round: the list without details says "not in ERROR" without a Neutron request
        # (compute.listed_in); the server itself is read when it is in ERROR (for Nova's fault) or the list
        # cannot be read
        if compute.listed_in(conn, server, "ERROR") is False:
            return "pas ERROR", ""
        now = conn.compute.get_server(server.id)
        return now.status, (getattr(now, "fault", None) or {}).get("message", "")

    return diagnosis.Observer(
        ssh=lambda: traffic.ssh_attempt(address, user, private),
        console=console, status=status,
        # on the cloud's network node: does the guest answer from Neutron's DHCP namespace of its network?
        fixed_answers=lambda: diagnosis.netns_tcp(f"qdhcp-{port.network_id}", fixed) if fixed else None,
        kind="tiny" if (image.properties or {}).get(compute.TINY_MARKER) else "cloud-init", address=address,
        health=lambda: health_word(admin),
        host_route=lambda: diagnosis.host_route_conflict(address, connection.embedded_external_bridges()),
        metadata_refusals=lambda: md_log.lines(diagnosis.METADATA_FORBIDDEN),
        host_firewall=lambda: diagnosis.host_firewall_drops(address, packets=("tcp",), owners_only=True),
        dhcp_disabled=lambda: diagnosis.subnets_without_dhcp(conn, port),
        foreign_flows=lambda: embedded_foreign_flows(flows_before, flow_path(conn, server, address)))


def _embedded_bridges() -> tuple[dict[str, str], Optional[str], Optional[str]]:
    """The embedded cloud's bridges ({bridge: its OpenFlow management socket}, integration and external), the
    integration bridge's name and the OVS agent's log file; ({}, None, None) without an embedded cloud."""
    from pathlib import Path

    ctl, mgmt = connection.embedded_ovs_ctl(), connection.embedded_int_bridge()
    if not ctl or not mgmt:
        return {}, None, None
    run = Path(ctl).parent
    bridges = {Path(mgmt).stem: mgmt}
    bridges.update({b: str(run / f"{b}.mgmt") for b in connection.embedded_external_bridges()
                    if (run / f"{b}.mgmt").exists()})
    return bridges, Path(mgmt).stem, str(run.parent / "log" / "neutron-openvswitch-agent.log")


def embedded_flow_dumps() -> Optional[dict[str, Optional[str]]]:
    """The flows of the embedded cloud's bridges now, with their counters (diagnosis.ovs_flow_dumps): read when a
    watch begins, so that embedded_foreign_flows can tell a foreign flow that takes packets during the watch from
    one that took them before; None without an embedded cloud."""
    bridges, _, _ = _embedded_bridges()
    return diagnosis.ovs_flow_dumps(bridges) if bridges else None


def flow_path(conn, server, address: Optional[str]) -> Callable[[], Optional[dict]]:
    """What names the way of `server`'s packets in the embedded cloud's bridges (diagnosis.on_path), read when
    asked (a foreign flow took packets): the MACs and IPs of its port, of its network's router and DHCP ports and
    of that router's gateway; its floating IP `address` and 169.254.169.254; those ports' OpenFlow numbers on the
    integration bridge and their local VLANs. None when its port cannot be read."""
    def read() -> Optional[dict]:
        try:
            port = network.server_port(conn, server)
            ports = [port] + [p for p in conn.network.ports(network_id=port.network_id)
                              if (p.device_owner or "").startswith(("network:router_interface", "network:dhcp"))]
            for router in {p.device_id for p in ports[1:] if (p.device_owner or "").startswith("network:router")}:
                ports += list(conn.network.ports(device_id=router, device_owner="network:router_gateway"))
        except Exception:  # noqa: BLE001 - a diagnosis never fails the verdict it explains
            return None
        path = {"mac": {p.mac_address for p in ports if p.mac_address},
                "ip": {a["ip_address"] for p in ports for a in (p.fixed_ips or [])}
                | {a for a in (address, "169.254.169.254") if a},
                "port": {}, "vlan": set()}
        bridges, integration, _ = _embedded_bridges()
        if integration:
            numbers = diagnosis.ofports(diagnosis._stdout(["ovs-ofctl", "-O", "OpenFlow13", "show",
                                                           f"unix:{bridges[integration]}"]), [p.id for p in ports])
            path["port"][integration] = numbers
            path["vlan"] = diagnosis.local_vlans(diagnosis.ovs_flow_dumps({integration: bridges[integration]})
                                                 [integration], numbers)
        return path
    return read


def embedded_foreign_flows(before: Optional[dict] = None,
                           path: Optional[Callable[[], Optional[dict]]] = None) -> Optional[str]:
    """The OpenFlow flows of the embedded cloud's bridges (integration and external) that no agent wrote
    (diagnosis.ovs_foreign_flows), with the cookies its OVS agent logged, `before` the dumps at the watch's start
    (embedded_flow_dumps) and `path` the guest's way (flow_path); None without an embedded cloud."""
    bridges, integration, log = _embedded_bridges()
    if not bridges:
        return None
    return diagnosis.ovs_foreign_flows(bridges, log, integration=integration, before=before, path=path)


def foreign_flows_note(before: Optional[dict] = None, path: Optional[Callable[[], Optional[dict]]] = None) -> str:
    """" ; " and the flows of the embedded cloud's bridges that no agent wrote (embedded_foreign_flows, `before`
    and `path` as there), for a verdict that traffic passes where a security group should block it (such a flow
    can send packets past the firewall's tables); "" when there is none, or no embedded cloud."""
    found = embedded_foreign_flows(before, path)
    if not found:
        return ""
    return f" ; {'peut-être : ' if isinstance(found, diagnosis.Suspect) else ''}{found}"


def health_word(admin) -> Optional[str]:
    """The dead component the cloud's health records name (admin), else what is wrong inside the embedded
    cloud (a service frozen or dead, a silent database or bus: ovs-vswitchd frozen leaves every agent
    alive and the guest without a lease; a network's dead dnsmasq or haproxy: connection.guest_trouble),
    else None."""
    word = stuck.health_word(admin) if admin is not None else None
    trouble = connection.guest_trouble()
    return word or (f"sur le cloud embarqué : {' ; '.join(trouble)}" if trouble else None)


def dead_agents(admin) -> list[str]:
    """The binaries of the Neutron agents the admin API shows as not alive ([] without admin).
    admin: an admin connection, or None."""
    if admin is None:
        return []
    try:
        return sorted({a.binary for a in admin.network.agents() if not a.is_alive})
    except Exception:  # evidence only
        return []


def agent_state(admin) -> Optional[list[dict]]:
    """The Neutron agents as the admin API shows them (alive or not); None without admin."""
    if admin is None:
        return None
    try:
        return [{"agent": a.agent_type, "binaire": a.binary, "hôte": a.host, "vivant": a.is_alive,
                 "activé": a.is_admin_state_up, "dernier signe": a.last_heartbeat_at}
                for a in admin.network.agents()]
    except Exception as exc:  # evidence only: never hide the scenario's own failure
        return [{"erreur": f"{type(exc).__name__}: {exc}"}]


def reach(conn, ledger, external, access, server, image, group, attach: Attach,
          timeout: float = SSH_BOOT_TIMEOUT, since: str = "ACTIVE", admin=None) -> ReachableGuest:
    """Give `server` a floating IP on `external` (recorded in `ledger`) and wait until SSH with the key
    of `access` (shared.Access) logs in through it.

    The wait ends as soon as the guest's console (and, on the cloud's network node, a probe of its fixed
    address) shows which component failed: AssertionError then names it (and the dead Neutron agents,
    with `admin`), and the console and the agents' state are attached. since: what the wait counts from,
    in the message. admin: an admin connection or None."""
    fip = network.create_floating_ip(conn, ledger, external)
    network.associate(conn, fip, network.server_port(conn, server))
    return reach_through(conn, fip, access, server, image, group, attach, timeout, since, admin)


def reach_through(conn, fip, access, server, image, group, attach: Attach, timeout: float = SSH_BOOT_TIMEOUT,
                  since: str = "ACTIVE", admin=None) -> ReachableGuest:
    """Wait until SSH with the key of `access` logs in through `fip`, a floating IP already associated with
    `server`'s port (see reach())."""
    address, user = fip.floating_ip_address, compute.login_user(image)
    started = time.monotonic()
    console = ConsoleSince(conn, server)
    obs = observer(conn, server, image, address, user, access.private, console, admin)
    try:
        try:
            diagnosis.watch(obs, timeout)
        except diagnosis.Unreachable as exc:
            if exc.component != "dhcp" or obs.kind != "tiny" or "neutron-dhcp-agent" in dead_agents(admin):
                raise
            # userspace OVS can leave a new tap down (compute.lease_or_reboot says how): one hard reboot
            attach("incident du plan de données (contourné)", f"{exc}\n→ redémarrage forcé de l'instance")
            console.mark()
            conn.compute.reboot_server(server, "HARD")
            compute.wait_active(conn, server)
            diagnosis.watch(obs, timeout)
    except diagnosis.Unreachable as exc:
        attach("console de l'instance (SSH impossible)", console.full())
        agents = agent_state(admin)
        if agents is not None:
            attach("agents Neutron (état vu par l'API admin)", agents)
        dead = dead_agents(admin)
        said = f" ; agents Neutron hors service (API admin) : {', '.join(dead)}" if dead else ""
        message = f"{exc}{said} [constaté {time.monotonic() - started:.0f} s après : {since}]"
        if exc.panic is not None:
            raise GuestPanicked(message, exc.panic) from None
        raise AssertionError(message) from None
    ready_after = round(time.monotonic() - started, 1)
    return ReachableGuest(server=server, fip=fip, address=address, user=user, image=image, group=group,
                          alive=liveness(conn, server, image), key=access.private, ready_after=ready_after)


def run_fip_guest(conn, fip, access, server, image, group, attach: Attach, since: str, admin=None) -> ReachableGuest:
    """`server` reached through the run's floating IP `fip` (shared.pair_fip), which is not trusted: it
    must lead to the server's port (else it is put back there, and `attach` says so: a scenario before
    did not give it back), and SSH through it must land on the server's own fixed address within
    MOVE_GRACE s (the L3 agent may still lead it where a scenario had moved it). AssertionError when the
    floating IP is gone or keeps leading elsewhere."""
    port = network.server_port(conn, server)
    try:
        current = conn.network.get_ip(fip.id)
    except Exception as exc:
        raise AssertionError(f"l'IP flottante du run {fip.floating_ip_address} est introuvable : "
                             f"{type(exc).__name__} : {exc}") from None
    if current.port_id != port.id:
        attach("IP flottante du run remise sur l'instance", {
            "adresse": current.floating_ip_address, "menait au port": current.port_id,
            "port de l'instance": port.id})
        try:
            current = network.associate(conn, current, port)
        except Exception as exc:
            from openstack import exceptions as sdk_exc
            if not isinstance(exc, sdk_exc.ConflictException):
                raise
            try:
                held = [f.floating_ip_address for f in conn.network.ips(port_id=port.id)]
            except Exception:   # the message only: Neutron's refusal is the finding
                held = []
            raise AssertionError(f"l'IP flottante du run {current.floating_ip_address} ne peut pas revenir sur "
                                 f"l'instance {server.name} : son port porte déjà l'IP flottante "
                                 f"{', '.join(held) or '(aucune visible)'} (Neutron : une IP flottante par "
                                 "adresse fixe)") from None
    found = reach_through(conn, current, access, server, image, group, attach, since=since, admin=admin)
    fixed = port.fixed_ips[0]["ip_address"]
    seen = []

    def on_server() -> bool:
        try:
            _, out = found.run("ip -4 -o addr show", timeout=5)
        except Exception as exc:
            seen.append(f"{type(exc).__name__}: {exc}")
            return False
        seen.append(out.strip())
        return f" {fixed}/" in out
    if not traffic.wait_until(on_server, MOVE_GRACE, interval=2):
        raise AssertionError(f"SSH via l'IP flottante du run {found.address} n'arrive pas sur l'instance "
                             f"{server.name} ({fixed}) en {MOVE_GRACE} s ; vu : {(seen or ['rien'])[-1][:300]}")
    return found


class GuestPanicked(AssertionError):
    """reach() failed because the guest's kernel panicked (its console says `Kernel panic - not syncing`)."""

    def __init__(self, message: str, panic: diagnosis.Panic):
        super().__init__(message)
        self.panic = panic


def boot_reachable(conn, ledger, routed, access, group, attach: Attach, image, flavor, user_data=None,
                   timeout: float = SSH_BOOT_TIMEOUT, admin=None) -> ReachableGuest:
    """Boot a guest of `image`/`flavor` on `routed`'s network (shared.Routed) with the key of `access`, in
    `group`, and `reach()` it (its wait counts from ACTIVE).

    A guest whose kernel panics while booting (its console's `Kernel panic - not syncing`, nothing else:
    a Debian guest under QEMU TCG multi-threaded: 2 of 64 boots measured) is deleted through `ledger` and replaced
    once, which `attach` records; a second panic fails at once with the console's Oops line."""
    for attempt in (1, 2):
        # admin: a boot stuck in BUILD or in ERROR names the dead component from the health records (stuck.py)
        server = compute.boot(conn, ledger, "guest", image, flavor, routed.network, key_name=access.keypair.name,
                              user_data=user_data, security_groups=[group.name], admin=admin)
        try:
            return reach(conn, ledger, routed.external, access, server, image, group, attach, timeout, admin=admin)
        except GuestPanicked as exc:
            if attempt == 2:
                raise AssertionError(f"{exc} ; seconde panique, sur l'instance de remplacement") from None
            cause = ("défaut de l'émulateur QEMU TCG sans KVM" if exc.panic.emulator()
                     else "panique du noyau de l'invité")
            attach("incident de l'invité (contourné)",
                   f"le noyau de l'invité a paniqué au démarrage ({exc.panic.quote()}) : {cause} ; "
                   "instance remplacée une fois")
            ledger.delete(server.id)
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)


def lease(conn, server, image, attach: Attach) -> None:
    """The tiny image says when it got (or missed) its DHCP lease: one hard reboot when it missed it."""
    marker = (image.properties or {}).get(compute.TINY_MARKER)
    note = compute.lease_or_reboot(conn, server, marker) if marker else None
    if note:
        attach("incident du plan de données (contourné)", note)


def neighbour(conn, server, image, attach: Attach) -> Neighbour:
    """`server`, a guest of `image` already booted on the first guest's network, once it has its lease."""
    lease(conn, server, image, attach)
    return Neighbour(server=server, fixed=fixed_address(conn, server))


def join_only(conn, ledger, server, group) -> None:
    """Make `server` (one of the run's shared servers, already up) a member of `group` alone for this
    scenario: its port's security groups become [group], and `ledger` gives it back the groups it had at
    the scenario's end (before it deletes `group`, recorded earlier). A guest already up costs no boot (a
    tiny guest's boot under TCG: ~8 CPU-s of QEMU, plus nova's and neutron's share); the agent applies a
    port's new groups as it applies a new port's."""
    port = network.server_port(conn, server)
    ledger.record("port_security_groups", port.name or "", id=port.id, groups=list(port.security_group_ids or []))
    conn.network.update_port(port, security_group_ids=[group.id])


def behind_remote_group(conn, ledger, server, first: ReachableGuest, attach: Attach) -> Neighbour:
    """`server`, a second guest of `first`'s image on its network (the run's second server, up and leased),
    made for this scenario a member of a group of its own alone, whose only ingress rule lets SSH in from
    the members of `first`'s group (egress kept: DHCP, metadata).

    The group has no ingress rule yet when the port joins it, and `first` must then be refused: so the
    scenario's "reaches" that follows is proven under this group, not under the groups the port had
    before (which let SSH in from anywhere) while the agent was still applying the change.
    AssertionError when `first` still reaches it."""
    group = secgroups.create_group(conn, ledger, "sg-distant")
    lease(conn, server, first.image, attach)
    fixed, alive = fixed_address(conn, server), liveness(conn, server, first.image)
    join_only(conn, ledger, server, group)
    if not traffic.blocked(lambda: first.reaches(fixed, 3), alive):
        raise AssertionError(f"la seconde instance ({fixed}) reste joignable sur le port 22 après être passée dans un "
                             f"groupe sans règle d'entrée : le groupe de son port n'est pas appliqué")
    rule = secgroups.add_rule(conn, ledger, group, **secgroups.ssh_in(remote_group_id=first.group.id))
    return Neighbour(server=server, fixed=fixed, group=group, rule=rule, alive=alive)


def why_no_ping(conn, group, guest: ReachableGuest, attach: Attach, flows_before: Optional[dict] = None) -> str:
    """Where a ping that a rule allows is lost: the guest itself (not alive), the group (its rules as the
    API has them), or the way to its floating IP (the fixed address answers from the DHCP namespace, and
    then what the network node holds for that floating IP: diagnosis.fip_path). A flow no agent wrote that took
    the guest's packets since `flows_before` (embedded_flow_dumps, the wait's start) is named instead."""
    rules = secgroups.rules_of(conn, group)
    attach("règles du groupe au moment de l'échec", rules)
    icmp = [r for r in rules if r["direction"] == "ingress" and r["protocol"] in ("icmp", "1")]
    port = network.server_port(conn, guest.server)
    fixed = port.fixed_ips[0]["ip_address"]
    ovs = diagnosis.ovs_facts(connection.embedded_ovs_ctl(), fixed)  # first: its flows age out in 10 s
    if ovs:  # the embedded cloud: is the ICMP rule in the port's OpenFlow flows yet (the OVS agent's part)?
        rule_flows = diagnosis.port_icmp_flows(connection.embedded_int_bridge(), port.id)
        if rule_flows is not None and icmp:  # no ICMP rule in the group: none for the agent to apply either
            ovs["ovs_port_icmp_rule_flows"] = rule_flows
        attach("Open vSwitch (espace utilisateur) : conntrack et flux ICMP de l'adresse fixe", ovs)
    # a flow no agent wrote, taking packets on its way since `flows_before` (the wait's start): named before L3/NAT
    foreign = embedded_foreign_flows(flows_before, flow_path(conn, guest.server, guest.address))
    if foreign and not isinstance(foreign, diagnosis.Suspect):
        return foreign
    inside = diagnosis.netns_ping(f"qdhcp-{port.network_id}", fixed)
    attach("console de l'instance", compute.console_log(conn, guest.server, length=60))
    alive = guest.alive()
    said = [f"règle ICMP en entrée dans le groupe : {'oui' if icmp else 'NON'}",
            f"instance {'vivante (battement de cœur récent)' if alive else 'NON prouvée vivante'}"]
    if inside is True:
        said.append(f"son adresse fixe {fixed} répond au ping depuis l'espace de noms DHCP : le groupe laisse passer, "
                    f"c'est le chemin vers l'IP flottante {guest.address} qui perd le ping (L3/NAT)")
        fip = conn.network.get_ip(guest.fip.id)
        facts = diagnosis.fip_path(guest.address, fixed, port.mac_address, fip.router_id or "")
        if facts:
            attach("chemin vers l'IP flottante", facts)
            said.extend(diagnosis.fip_findings(facts))
    elif inside is False:
        said.append(f"son adresse fixe {fixed} ne répond pas non plus depuis l'espace de noms DHCP")
    said.extend(diagnosis.ovs_findings(ovs))
    if foreign:
        said.append(f"peut-être aussi : {foreign}")
    return " ; ".join(said)


def ping_lost(conn, group, guest: ReachableGuest, attach: Attach, timeout: float, within: float = 60) -> Optional[str]:
    """None once a ping of `timeout` s reaches `guest` within `within` s; else where it is lost (why_no_ping)."""
    flows_before = embedded_flow_dumps()
    if traffic.wait_until(lambda: traffic.ping(guest.address, timeout), within):
        return None
    return why_no_ping(conn, group, guest, attach, flows_before)


def lands_on(guest: ReachableGuest, fixed: str, timeout: float = SSH_BOOT_TIMEOUT) -> tuple[bool, list[str]]:
    """Whether SSH through `guest.address` arrives, within `timeout` s, on the guest whose fixed address is
    `fixed` (the floating IP was moved there): (arrived, what SSH saw, oldest first).

    AssertionError at once when SSH keeps arriving on another guest MOVE_GRACE s after the first such
    answer: the move did not happen."""
    seen, elsewhere = [], []

    def on_target():
        try:
            _, out = guest.run("ip -4 -o addr show", timeout=5)
        except Exception as exc:  # the target may still be booting
            seen.append(type(exc).__name__)
            return False
        seen.append(out)
        if f" {fixed}/" in out:
            return True
        elsewhere.append(time.monotonic())  # SSH answers, from another guest: the move did not happen
        if elsewhere[-1] - elsewhere[0] > MOVE_GRACE:
            raise AssertionError(f"SSH via {guest.address} arrive toujours, {MOVE_GRACE} s après le déplacement, "
                                 f"sur une autre instance que la seconde ({fixed}) : {out.strip()[:300]}")
        return False
    return traffic.wait_until(on_target, timeout, interval=2), seen


def cloud_init_user_data(token: str) -> str:
    """#cloud-config user data that write `token` into CLOUD_INIT_FILE."""
    return f"#cloud-config\nwrite_files:\n  - path: {CLOUD_INIT_FILE}\n    content: \"{token}\\n\"\n"


def wrote_token(guest: ReachableGuest, timeout: float = 120) -> bool:
    """True once CLOUD_INIT_FILE in the guest holds its `token` (within `timeout` s)."""
    def read():
        _, out = guest.run(f"cat {CLOUD_INIT_FILE}")
        return out.strip() == guest.token
    return traffic.wait_until(read, timeout, interval=3)
