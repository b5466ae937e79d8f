"""Neutron: routed project networks and floating IPs (C24), the course's "numéro de téléphone portable"."""
from __future__ import annotations

import contextlib
import re
from typing import Optional

from popek.checks.cloud import compute
from popek.checks.cloud.neutron_quota import NEUTRON_QUOTAS, counts as _free, details as _details, neutron_room_reason
from popek.checks.cloud.waits import poll


#: Neutron's device owner of a floating IP: a subnet whose service_types are set gives floating IPs only
#: when they include it (Neutron's subnet service types extension)
FIP_OWNER = "network:floatingip"


def _configured(conn) -> tuple[Optional[str], list[str]]:
    """The clouds.yaml entry's own choice, as openstacksdk reads it: (the network of `nat_source: true`,
    the networks of `routes_externally: true`), names or ids; (None, []) when it says nothing."""
    config = getattr(conn, "config", None)
    try:
        source = config.get_nat_source() if config is not None else None
        routes = list(config.get_external_ipv4_networks() or []) if config is not None else []
    except Exception:  # an entry openstacksdk cannot read this way: no choice of its own
        return None, []
    return (source if isinstance(source, str) and source else None), [r for r in routes if isinstance(r, str)]


def fip_subnet_problem(conn, net) -> Optional[str]:
    """Why Neutron can give no floating IP from the external network `net` (French), from its subnets as
    this account sees them: none at all, none in IPv4 (floating IPs are IPv4), or every IPv4 one kept by
    its service_types for other ports (no "network:floatingip" among them). None when one can, and when
    its subnets cannot be read (a policy that hides them: Neutron's own answer will then say)."""
    ids = getattr(net, "subnet_ids", None)
    if ids is None:
        return None
    if not ids:
        return "aucun sous-réseau"
    try:
        subnets = [s for s in conn.network.subnets(network_id=net.id) if s.id in ids]
    except Exception:  # subnets hidden from this account: not known, not a reason
        return None
    if not subnets:
        return None
    v4 = [s for s in subnets if s.ip_version == 4]
    if not v4:
        return "aucun sous-réseau IPv4 (une IP flottante est IPv4)"
    if not any(not s.service_types or FIP_OWNER in s.service_types for s in v4):
        kinds = sorted({t for s in v4 for t in s.service_types})
        return f"ses sous-réseaux IPv4 sont réservés à d'autres ports (service_types : {', '.join(kinds)})"
    return None


def external_choice(conn) -> tuple[list, str]:
    """([the external networks to take floating IPs from, best first], why, in French), as the `openstack`
    client's library picks them: the network the clouds.yaml entry names `nat_source: true` (openstacksdk's
    source of floating IPs; Tempest's public_network_id is the same idea), then those it names
    `routes_externally: true`; else every external network (router:external) that can give a floating IP
    (fip_subnet_problem), in Neutron's order (openstacksdk's default is the first external one, whatever its
    subnets). ([], why) when there is none."""
    externals = list(conn.network.networks(is_router_external=True))
    if not externals:
        return [], "aucun réseau externe (router:external) visible de ce projet"
    source, routes = _configured(conn)
    named = [n for key in ([source] if source else []) + routes for n in externals if key in (n.name, n.id)]
    if named:
        first = named[0]
        how = "nat_source" if source in (first.name, first.id) else "routes_externally"
        return list({n.id: n for n in named}.values()), f"{first.name} : désigné par l'entrée clouds.yaml ({how}: true)"
    problems = {n.id: fip_subnet_problem(conn, n) for n in externals}
    fit = [n for n in externals if problems[n.id] is None]
    left = " ; ".join(f"{n.name} écarté : {problems[n.id]}" for n in externals if problems[n.id])
    unknown = (f" ; {source or ', '.join(routes)} nommé(s) par l'entrée clouds.yaml mais absent(s) des réseaux "
               "externes") if source or routes else ""
    if not fit:
        return [], f"aucun réseau externe ne peut donner d'IP flottante ({left}){unknown}"
    why = f"{fit[0].name} : " + ("le seul réseau externe" if len(externals) == 1 else
                                 "le premier réseau externe dont un sous-réseau IPv4 donne des IP flottantes")
    return fit, why + (f" ({left})" if left else "") + unknown


def external_network(conn):
    """The external network floating IPs come from (external_choice's first), or None."""
    return next(iter(external_choice(conn)[0]), None)


def floating_ip_quota_reason(conn, needed: int = 0) -> str | None:
    """Why this project can have no floating IP at all (French): its Neutron quota of floating IPs is 0,
    the operator's choice for this project, not a fault of the cloud; with `needed`, also why it cannot
    have `needed` more now: its limit minus those it uses (the run's own floating IP among them, held on
    the pair's first server for the whole run) leaves fewer. None otherwise, or when the quota cannot be
    read (a policy that hides it: the scenarios then meet Neutron's own answer)."""
    try:
        quota = conn.network.get_quota(conn.current_project_id, details=True)
        detail = quota.floating_ips if isinstance(quota.floating_ips, dict) else {"limit": quota.floating_ips}
        limit = detail.get("limit")
    except Exception:  # policy, an older Neutron without /details: not known, not a reason
        return None
    if limit == 0:
        return ("le quota d'IP flottantes de ce projet est 0 (Neutron, quota floatingip) : aucune IP flottante "
                "ne peut y être créée")
    used = detail.get("used")
    if needed and isinstance(limit, int) and limit > 0 and isinstance(used, int) \
            and limit - used - (detail.get("reserved") or 0) < needed:
        return (f"le quota d'IP flottantes de ce projet ne laisse pas les {needed} IP flottante(s) de plus dont "
                f"ce scénario a besoin (Neutron, quota floatingip : limite {limit}, utilisées {used}, dont l'IP "
                "flottante que le run garde sur sa première instance s'il l'a déjà créée) : une limite du "
                "projet, pas une panne du cloud")
    return None


#: Neutron's refusal for lack of quota (neutron_lib.exceptions.OverQuota, a Conflict: HTTP 409), which
#: names the resources but gives no numbers: "Quota exceeded for resources: ['router']."
NEUTRON_OVER = re.compile(r"Quota exceeded for resources: \[(?P<names>[^\]]*)\]")


def quota_refusal(conn, exc) -> str | None:
    """The French reason when `exc` is Neutron's refusal for lack of quota (HTTP 409 « Quota exceeded for
    resources: [...] ») AND Neutron's own quota details of this project (GET /v2.0/quotas/{project}/details)
    show a named resource at its limit (used + reserved >= limit): "quota router : limite 1, en usage 1".
    None for anything else: another 409 (a conflict, an address in use), a refusal whose details show room
    or cannot be read (a policy, an older Neutron): that stays the scenario's failure."""
    if getattr(exc, "status_code", None) != 409:
        return None
    said = getattr(exc, "details", None) or str(exc)
    found = NEUTRON_OVER.search(said or "")
    if not found:
        return None
    quota = _details(conn)
    if quota is None:   # policy, an older Neutron without /details: not confirmed, not a reason
        return None
    full = []
    for name in re.findall(r"[a-z_]+", found["names"]):
        counts = _free(getattr(quota, NEUTRON_QUOTAS.get(name, name), None))
        if counts is None:
            continue
        limit, used, reserved = counts
        if used + reserved >= limit:
            full.append(f"quota {name} : limite {limit}, en usage {used}"
                        + (f", réservé(s) {reserved}" if reserved else ""))
    if not full:
        return None
    return (f"refusé par Neutron faute de quota (HTTP 409) : {' ; '.join(full)} ; Neutron : « {said} » : une "
            "limite du projet, pas une panne du cloud")


@contextlib.contextmanager
def quota_room(conn):
    """Inside: Neutron's refusal for lack of quota, confirmed by its quota details (quota_refusal), is
    raised as compute.NoRoom (IGNORÉ with the quota: steps.cloud_compute.room); anything else as it was."""
    try:
        yield
    except Exception as exc:
        over = quota_refusal(conn, exc)
        if over:
            raise compute.NoRoom(over) from exc
        raise


#: What a routed network makes in Neutron: a network, its subnet, a router, and two ports of the project
#: (the subnet's DHCP port, the router's interface; the router's gateway port is nobody's project's)
ROUTED_NEEDS = {"network": 1, "subnet": 1, "router": 1, "port": 2}


def routed_room(conn) -> None:
    """compute.NoRoom, before anything is made, when Neutron's quota details leave no room for a routed
    network (ROUTED_NEEDS): a tight classroom project is IGNORÉ up front with the numbers."""
    reason = neutron_room_reason(conn, ROUTED_NEEDS, "le réseau routé du run (réseau, sous-réseau, routeur)")
    if reason:
        raise compute.NoRoom(reason)


def routed_network(conn, ledger, external, cidr: str = "10.78.0.0/24"):
    """A new network + subnet, and a router from it to `external` (so its ports can get floating IPs).
    compute.NoRoom when the quota details leave no room for them (routed_room) or when Neutron refuses one
    of them for lack of quota (quota_room)."""
    routed_room(conn)
    with quota_room(conn):
        net = compute.create_network(conn, ledger, cidr)
        router = ledger.create("router", "router", lambda name: conn.network.create_router(
            name=name, external_gateway_info={"network_id": external.id}))
        subnet_id = net.subnet_ids[0]
        ledger.record("router_interface", f"{router.name}:{subnet_id}", id=router.id,
                      router_id=router.id, subnet_id=subnet_id)
        conn.network.add_interface_to_router(router, subnet_id=subnet_id)
    return net, router


#: Neutron's refusal of a port on a network with no free address (IpAddressGenerationFailure, HTTP 409)
NO_ADDRESS = "No more IP addresses available on network"


def routed_to_external(conn, ledger, cidr: str = "10.78.0.0/24"):
    """(external, network, router, passed_over, why): routed_network() to the first of external_choice()'s
    networks whose router gateway gets an address; one that Neutron says has no free address left (409 « No
    more IP addresses available on network … »: the project cannot allocate from it) gives way to the next,
    the same network and subnet kept, and is kept in passed_over as (its name, Neutron's words) for the
    evidence (a class on this cloud would meet that full network); why: external_why() of the network used,
    from the same one reading of the external networks (kept with the run's routed network, so that a
    scenario does not read them again). None when the cloud has no external network that can give floating
    IPs. compute.NoRoom when Neutron refuses one of them for lack of quota (quota_room)."""
    from openstack import exceptions as sdk_exc

    choice = external_choice(conn)
    candidates = choice[0]
    if not candidates:
        return None
    routed_room(conn)
    passed_over = []
    with quota_room(conn):
        net = compute.create_network(conn, ledger, cidr)
        for i, external in enumerate(candidates):
            try:
                router = ledger.create("router", "router", lambda name: conn.network.create_router(
                    name=name, external_gateway_info={"network_id": external.id}))
                break
            except sdk_exc.ConflictException as exc:
                said = str(getattr(exc, "details", None) or exc)
                if i == len(candidates) - 1 or NO_ADDRESS not in said:
                    raise
                passed_over.append((external.name, said))
        subnet_id = net.subnet_ids[0]
        ledger.record("router_interface", f"{router.name}:{subnet_id}", id=router.id,
                      router_id=router.id, subnet_id=subnet_id)
        conn.network.add_interface_to_router(router, subnet_id=subnet_id)
    return external, net, router, tuple(passed_over), external_why(conn, external, passed_over, choice=choice)


def external_why(conn, used, passed_over=(), choice=None) -> str:
    """Why the run's floating IPs come from `used` (French, for the evidence): external_choice()'s reason
    (`choice`: its answer when the caller has just read it, else read here), and each network
    routed_to_external() passed over (`passed_over`: (name, Neutron's words) as it met them) because
    Neutron refused the run's router an address there. When `used` is not the first choice and nothing was
    met, the choice is said as read then, not guessed."""
    try:
        chosen, why = choice if choice is not None else external_choice(conn)
    except Exception as exc:  # the list itself refused: say so rather than guess
        why = f"les réseaux externes ne se relisent pas ({type(exc).__name__})"
        chosen = []
    if passed_over:
        met = " ; ".join(f"{name} passé : Neutron a refusé une adresse au routeur du run (HTTP 409 « {said} »)"
                         for name, said in passed_over)
        return f"{used.name} : {met} ; l'ordre du choix : {why}"
    if chosen and chosen[0].id == used.id:
        return why
    return f"{used.name} : le réseau où le run a fait son routeur ; l'ordre du choix relu maintenant : {why}"


def no_external_reason(conn) -> str:
    """Why the run has no external network to take floating IPs from (French), for a skip."""
    try:
        return external_choice(conn)[1]
    except Exception as exc:  # the list itself refused: say so rather than guess
        return f"les réseaux externes ne se lisent pas ({type(exc).__name__})"


def server_port(conn, server, timeout: float = 30):
    """The server's first port (Neutron creates it during the boot)."""
    ports = poll(lambda: list(conn.network.ports(device_id=server.id)), bool, timeout, 0.5, final_look=True)
    if not ports:
        raise LookupError(f"l'instance {server.name} n'a pas de port")
    return ports[0]


def create_floating_ip(conn, ledger, external):
    """A floating IP from `external`; its description carries the run's name (floating IPs have no name).
    compute.NoRoom when Neutron refuses it for lack of quota (quota_room: a race with another scenario)."""
    with quota_room(conn):
        return ledger.create("floating_ip", "fip", lambda name: conn.network.create_ip(
            floating_network_id=external.id, description=name))


def associate(conn, fip, port):
    """Point `fip` at `port`; returns the floating IP as Neutron now shows it."""
    conn.network.update_ip(fip, port_id=port.id)
    return conn.network.get_ip(fip.id)


def free_port(conn, ledger, port, keep=None) -> None:
    """Take off `port` every floating IP but `keep` (Neutron gives a fixed address one floating IP per external
    network: the run's own floating IP must leave its server's port before a scenario's one can lead
    there), each recorded in `ledger` first, to be put back on `port` at the end."""
    for other in list(conn.network.ips(port_id=port.id)):
        if keep is not None and other.id == keep.id:
            continue
        ledger.record("floating_ip_port", other.description or "", id=other.id, port_id=port.id)
        conn.network.update_ip(other, port_id=None)


def move(conn, ledger, fip, port, put_back: bool = True):
    """Point `fip` at `port`, which other floating IPs leave first (free_port); with `put_back`, `ledger` then
    points `fip` back where it led (the run's floating IP, given back to its server at the scenario's
    end, after the others went back: records are undone newest first). Returns the floating IP as
    Neutron now shows it. Without `put_back` (a scenario's own floating IP), `ledger` first takes `fip` off
    its port: undone before the records of free_port, the port is free again when the others come back
    (a scenario stopped between two moves would else put the run's floating IP back on a port that
    `fip` still holds: 409, one floating IP per fixed address)."""
    before = len(ledger.entries)
    free_port(conn, ledger, port, keep=fip)
    led = conn.network.get_ip(fip.id).port_id
    if put_back and led and led != port.id:
        ledger.record("floating_ip_port", fip.description or "", id=fip.id, port_id=led)
    elif not put_back and (len(ledger.entries) > before or not any(
            e.kind == "floating_ip_association" and e.id == fip.id and not e.done for e in ledger.entries)):
        ledger.record("floating_ip_association", fip.description or "", id=fip.id)   # newer than free_port's
    return associate(conn, fip, port)


def fip_target(conn, fip) -> dict:
    """Where the floating IP points: {"port_id", "fixed_ip", "address"}."""
    current = conn.network.get_ip(fip.id)
    return {"address": current.floating_ip_address, "port_id": current.port_id,
            "fixed_ip": current.fixed_ip_address, "status": current.status}


def wait_server_address(conn, server, address: str, timeout: float = 30) -> bool:
    """True once Nova lists `address` among the server's addresses (network info cache refreshed)."""
    def listed(addrs: dict) -> bool:
        return any(a.get("addr") == address for net in addrs.values() for a in net)

    return listed(poll(lambda: conn.compute.get_server(server.id).addresses or {}, listed, timeout, 1) or {})
