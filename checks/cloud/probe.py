"""Does this cloud have a dataplane (real guests, real traffic), or only APIs? Decided honestly:

1. with admin credentials, the hypervisor types Nova reports (`fake` = Nova's test driver: no guest runs);
2. floating IPs need an external network, and a project whose floating-IP quota is not 0;
3. as a member, what a probe instance prints on its console (Nova's fake driver returns a canned
   "FAKE CONSOLE OUTPUT"; a real guest prints its kernel's boot log): booted only when 2 leaves it open.

And may this account write at all? An account whose only role is Keystone's `reader` (a teacher's audit
account) is refused every creation by the default policies of every service since their "secure RBAC"
defaults; a cloud still on the legacy defaults (`project_id:%(project_id)s`) lets it write. Asked, not
guessed: one security group is created and deleted (write_refused).
"""
from __future__ import annotations

from typing import Optional

FAKE_CONSOLE = "FAKE CONSOLE OUTPUT"


def hypervisor_types(admin_conn, up_only: bool = True) -> list[str]:
    """Hypervisor types Nova knows (admin only), e.g. ['QEMU'] or ['fake']; up_only: of the compute
    nodes whose service is up (a node left from an earlier configuration stays listed, down)."""
    return sorted({h.hypervisor_type for h in admin_conn.compute.hypervisors(details=True)
                   if h.hypervisor_type and (h.state == "up" or not up_only)})


def hypervisor_reason(up: list[str], known: list[str]) -> Optional[str]:
    """Why the cloud has no dataplane from the hypervisor types Nova reports: `up` those of compute nodes
    whose service is up, `known` all of them. None when guests run for real here, or would: a real
    hypervisor (QEMU, KVM…) whose nova-compute is down is a broken dataplane, not an absent one — its
    scenarios run and fail naming nova-compute from the health records (stuck.py), instead of a skip that
    would hide the fault (nova-compute killed, issue #20). A down node of the fake driver stays a reason."""
    if up:
        return "hyperviseur fake : pas de plan de données" if all(t.lower() == "fake" for t in up) else None
    if any(t.lower() != "fake" for t in known):
        return None
    if known:
        return "hyperviseur fake : pas de plan de données"
    return "aucun hyperviseur dans Nova : aucun nova-compute ne s'est jamais enregistré"


def _probe_console(cloud, timeout: float = 90) -> Optional[str]:
    """Boot a probe instance as the member and read its console: the reason if it is a fake guest."""
    from popek.checks.cloud import compute, network
    from popek.checks.cloud.ledger import Ledger
    from popek.checks.cloud.waits import poll

    ledger = Ledger(cloud.conn, cloud.facts["prefix"])
    try:
        image = compute.pick_image(cloud.conn)
        flavor = compute.pick_flavor(cloud.conn, image)
        with network.quota_room(cloud.conn):     # Neutron's quota full: compute.NoRoom (a limit, not a fault)
            net = compute.project_network(cloud.conn, ledger)
        server = compute.boot(cloud.conn, ledger, "probe", image, flavor, net)
        log = poll(lambda: compute.console_log(cloud.conn, server), bool, timeout, 3) or ""
        if FAKE_CONSOLE in log:
            return "hyperviseur fake : pas de plan de données (la console de l'instance sonde est factice)"
        if not log:
            return "l'instance sonde n'a rien écrit sur sa console : impossible d'établir un plan de données"
        return None
    finally:
        ledger.cleanup()


def dataplane_reason(cloud) -> Optional[str]:
    """None when guests really run and floating IPs exist; else the French reason."""
    from popek.checks.cloud import network

    if cloud.admin is not None:
        reason = hypervisor_reason(hypervisor_types(cloud.admin), hypervisor_types(cloud.admin, up_only=False))
        if reason:
            return reason
    if network.external_network(cloud.conn) is None:   # none at all, or none that can give floating IPs: say which
        return f"{network.no_external_reason(cloud.conn)} : pas d'IP flottante pour joindre les instances depuis l'hôte"
    quota = network.floating_ip_quota_reason(cloud.conn)
    if quota:
        return f"{quota} : pas d'IP flottante pour joindre les instances depuis l'hôte"
    if cloud.admin is None:     # the API answers first; a probe instance only when they leave the question open
        return _probe_console(cloud)
    return None


#: Keystone's read-only default role (admin ⊃ member ⊃ reader), and the observer roles some services define:
#: an account holding only these may be refused every write.
READ_ONLY_ROLES = frozenset({"reader", "observer", "load-balancer_observer", "load-balancer_global_observer"})


def read_only(roles) -> bool:
    """True when the token's role names are all read-only ones (and there is at least one)."""
    names = {str(r).lower() for r in roles or []}
    return bool(names) and names <= READ_ONLY_ROLES


def refusal_text(exc: BaseException) -> Optional[str]:
    """The policy's words of an HTTP 403 (openstacksdk's ForbiddenException), None for anything else."""
    from openstack import exceptions as sdk_exc

    if not isinstance(exc, sdk_exc.ForbiddenException):
        return None
    words = (getattr(exc, "details", None) or "").strip()
    return f"HTTP 403{' : ' + words[:160] if words else ''}"


def write_refused(cloud) -> Optional[str]:
    """Why this account cannot create anything in its project (French), None when it can or may.

    Only asked of an account whose roles are all read-only (read_only()); any other account is let run
    (a refusal is then that scenario's finding). The question: creating one security group (then deleted),
    the cheapest creation every course scenario that writes depends on."""
    from popek.checks.cloud import secgroups
    from popek.checks.cloud.ledger import Ledger

    if not read_only(cloud.roles):
        return None
    ledger = Ledger(cloud.conn, cloud.facts["prefix"])
    try:
        secgroups.create_group(cloud.conn, ledger, "write-probe")
    except Exception as exc:  # only a 403 is the answer; anything else is no answer to this question
        refused = refusal_text(exc)
        if refused is None:
            return None
        roles = ", ".join(sorted(cloud.roles))
        return (f"ce compte n'a que le rôle {roles} : le cloud refuse ses écritures (création d'un groupe de "
                f"sécurité par Neutron : {refused})")
    finally:
        ledger.cleanup()
    return None
