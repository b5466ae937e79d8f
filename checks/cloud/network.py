"""Neutron: routed project networks and floating IPs (C24), the course's "numéro de téléphone portable"."""
from __future__ import annotations

import contextlib
import re

from popek.checks.cloud import compute
from popek.checks.cloud.waits import poll


def external_network(conn):
    """The first external network (where floating IPs come from), or None."""
    return next(iter(conn.network.networks(is_router_external=True)), None)


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
#: Neutron's quota names (in OverQuota, in GET /v2.0/quotas/{project}/details) -> openstacksdk's QuotaDetails attributes
NEUTRON_QUOTAS = {"floatingip": "floating_ips", "network": "networks", "subnet": "subnets", "port": "ports",
                  "router": "routers", "security_group": "security_groups",
                  "security_group_rule": "security_group_rules", "subnetpool": "subnet_pools",
                  "rbac_policy": "rbac_policies"}


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
    try:
        quota = conn.network.get_quota(conn.current_project_id, details=True)
    except Exception:  # policy, an older Neutron without /details: not confirmed, not a reason
        return None
    full = []
    for name in re.findall(r"[a-z_]+", found["names"]):
        detail = getattr(quota, NEUTRON_QUOTAS.get(name, name), None)
        if not isinstance(detail, dict):
            continue
        limit, used, reserved = detail.get("limit"), detail.get("used"), detail.get("reserved") or 0
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (limit, used, reserved)) or limit < 0:
            continue
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


def routed_network(conn, ledger, external, cidr: str = "10.78.0.0/24"):
    """A new network + subnet, and a router from it to `external` (so its ports can get floating IPs).
    compute.NoRoom when Neutron refuses one of them for lack of quota (quota_room)."""
    with quota_room(conn):
        net = compute.create_network(conn, ledger, cidr)
        router = ledger.create("router", "router", lambda name: conn.network.create_router(
            name=name, external_gateway_info={"network_id": external.id}))
        subnet_id = net.subnet_ids[0]
        ledger.record("router_interface", f"{router.name}:{subnet_id}", id=router.id,
                      router_id=router.id, subnet_id=subnet_id)
        conn.network.add_interface_to_router(router, subnet_id=subnet_id)
    return net, router


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
