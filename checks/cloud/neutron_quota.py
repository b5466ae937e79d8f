"""Neutron's quotas as its details show them (GET /v2.0/quotas/{project}/details): what is left of each, and
Nova's refusal of a server for lack of ports read against them. Imports nothing of popek's cloud modules, so
that compute (a server's refusal) and network (what a network makes) both use it."""
from __future__ import annotations

from typing import Optional

#: Neutron's quota names (in OverQuota, in GET /v2.0/quotas/{project}/details) -> openstacksdk's QuotaDetails attributes
NEUTRON_QUOTAS = {"floatingip": "floating_ips", "network": "networks", "subnet": "subnets", "port": "ports",
                  "router": "routers", "security_group": "security_groups",
                  "security_group_rule": "security_group_rules", "subnetpool": "subnet_pools",
                  "rbac_policy": "rbac_policies"}


def details(conn):
    """Neutron's quota details of this project (GET /v2.0/quotas/{project}/details), None when they cannot
    be read (a policy, an older Neutron without /details)."""
    try:
        return conn.network.get_quota(conn.current_project_id, details=True)
    except Exception:  # not known: no reason either way
        return None


def counts(detail) -> Optional[tuple[int, int, int]]:
    """(limit, used, reserved) of one quota's details when all are counts and the limit is not unlimited."""
    if not isinstance(detail, dict):
        return None
    limit, used, reserved = detail.get("limit"), detail.get("used"), detail.get("reserved") or 0
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (limit, used, reserved)) or limit < 0:
        return None
    return limit, used, reserved


def neutron_shortfalls(quota, needs: dict) -> list[str]:
    """The Neutron quotas (`needs`: {Neutron's quota name: how many more}, e.g. {"router": 1, "port": 2})
    whose details (`quota`: openstacksdk's QuotaDetails) leave less room, one French phrase each: "quota
    port : limite 3, en usage 3, il en faut 2 de plus". Unknown or unlimited (-1) limits are no shortfall."""
    found = []
    for name, want in needs.items():
        found_counts = counts(getattr(quota, NEUTRON_QUOTAS.get(name, name), None)) if want else None
        if found_counts is None:
            continue
        limit, used, reserved = found_counts
        if limit - used - reserved < want:
            found.append(f"quota {name} : limite {limit}, en usage {used}"
                         + (f", réservé(s) {reserved}" if reserved else "") + f", il en faut {want} de plus")
    return found


def neutron_room_reason(conn, needs: dict, what: str = "ce scénario") -> Optional[str]:
    """Why the project has no room for what `what` is about to make in Neutron (French, the quotas with
    their limits and use, read once from GET /v2.0/quotas/{project}/details), None when there is room or
    the details cannot be read (Neutron's own refusal is then still read: quota_room)."""
    if not any(needs.values()):
        return None
    quota = details(conn)
    lacking = neutron_shortfalls(quota, needs) if quota is not None else []
    if not lacking:
        return None
    return (f"le quota Neutron de ce projet ne laisse pas la place dont {what} a besoin ({' ; '.join(lacking)}) : "
            "une limite du projet, pas une panne du cloud")


#: Nova's refusal of a server when Neutron's port quota leaves no port for it (PortLimitExceeded, HTTP 403)
NOVA_PORTS = "Maximum number of ports exceeded"


def nova_port_refusal(conn, status, said: str, ports: int = 1) -> Optional[str]:
    """The French reason when Nova refused a server because Neutron's port quota has no room (HTTP 403
    « Maximum number of ports exceeded », which gives no numbers) AND Neutron's quota details confirm it:
    fewer than `ports` free (limit - used - reserved). None otherwise: another refusal, or details that
    show room or cannot be read (the scenario's failure then)."""
    if status != 403 or NOVA_PORTS not in (said or ""):
        return None
    quota = details(conn)
    lacking = neutron_shortfalls(quota, {"port": ports}) if quota is not None else []
    if not lacking:
        return None
    return (f"refusé par Nova faute de port (HTTP 403) : {lacking[0]} (Neutron) ; Nova : « {said.strip()} » : "
            "une limite du projet, pas une panne du cloud")
