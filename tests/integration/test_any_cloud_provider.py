"""Any cloud, round 4: a provider-network cloud, as many universities run theirs. Members may not create
networks or routers (Neutron's policy says so); the admin made one network and shared it with the project.
popek must boot on that network, run what it can there, and say IGNORÉ « ce cloud refuse … » for what needs
a network, a router or a floating IP of its own: never ÉCHEC for the policy, never RÉUSSI for what it did
not check.

Made on the embedded cloud without disturbing others: a fresh member-only project (test_foreign_project's),
a network `popek-hA-provider-<hex>` of the admin's shared with that project alone (an RBAC rule, not
`shared: true`: the other projects never see it), and `create_network` / `create_router` refused to that
project alone in neutron's policy.d (test_live_paths.policy_rules: oslo.policy re-reads it at the next
request, checked with a request before it is relied on; the default back checked after). All deleted in
the end.

Opt-in: POPEK_SLOW_FAULTS=1, under `flock -x /tmp/popek-cloud.lock` (a policy file of the cloud's)."""
from __future__ import annotations

import contextlib
import secrets
import time

import pytest

from faults import slow
from test_foreign_project import _project, _run
from helpers import running_cloud
from test_live_paths import policy_rules

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("un projet sans droit de créer réseau ni routeur, popek lancé dessus", " (sous flock -x)")]

@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="changer la politique de Neutron du cloud embarqué")


def refused_rules(project_id: str) -> dict:
    """Neutron's create_network and create_router as its defaults say (neutron_lib.policy.rules
    ADMIN_OR_PROJECT_MEMBER), but not for `project_id`. The project is named as a quoted literal compared to
    the target's (oslo.policy's generic check): Neutron reads `project_id:<literal>` as its OwnerCheck, which
    wants `%(field)s` and fails every request (HTTP 500 PolicyInitError, live 14:18 UTC)."""
    scoped = f"(rule:admin_only) or (role:member and project_id:%(project_id)s and not '{project_id}':%(project_id)s)"
    return {"create_network": scoped, "create_router": scoped}


def _member_may_create_network(entry) -> bool:
    """Whether the project's member gets a network from Neutron (one is made, then deleted at once)."""
    import openstack
    from openstack import exceptions

    conn = openstack.connect(**entry["auth"], region_name=entry["region_name"])
    try:
        net = conn.network.create_network(name=f"popek-hA-probe-{secrets.token_hex(3)}")
    except exceptions.ForbiddenException:
        return False
    conn.network.delete_network(net)
    return True


@contextlib.contextmanager
def shared_network(admin, project_id: str):
    """A network of the admin's with a DHCP subnet, shared with `project_id` alone (RBAC access_as_shared);
    the project's ports on it, the rule, the subnet and the network deleted in the end."""
    net = admin.network.create_network(name=f"popek-hA-provider-{secrets.token_hex(3)}")
    try:
        admin.network.create_subnet(name=net.name, network_id=net.id, ip_version=4, cidr="10.252.17.0/24",
                                    enable_dhcp=True)
        admin.network.create_rbac_policy(object_type="network", object_id=net.id, action="access_as_shared",
                                         target_project_id=project_id)
        yield net
    finally:
        _servers_deleted(admin, project_id)     # before the network they sit on (_project's end comes later)
        deadline = time.time() + 120
        while time.time() < deadline:
            ports = [p for p in admin.network.ports(network_id=net.id) if p.device_owner != "network:dhcp"]
            for p in ports:
                if p.project_id == project_id and not p.device_id:
                    with contextlib.suppress(Exception):
                        admin.network.delete_port(p)
            if not ports:
                break
            time.sleep(2)
        for rbac in admin.network.rbac_policies(object_id=net.id):
            with contextlib.suppress(Exception):
                admin.network.delete_rbac_policy(rbac)
        admin.network.delete_network(net)


@contextlib.contextmanager
def provider_cloud(state, admin, project, entry):
    """The project as a provider-network cloud's: the shared network, and the policy in force (checked)."""
    with shared_network(admin, project.id) as net:
        with policy_rules(state, "neutron-api", "neutron", refused_rules(project.id),
                          lambda: not _member_may_create_network(entry),
                          lambda: _member_may_create_network(entry)) as refused:
            assert refused, "Neutron n'a pas relu sa politique : le membre crée encore des réseaux"
            yield net


def _servers_deleted(admin, pid):
    for s in admin.compute.servers(all_projects=True, project_id=pid):
        admin.compute.delete_server(s, force=True)
    deadline = time.time() + 120
    while list(admin.compute.servers(all_projects=True, project_id=pid)) and time.time() < deadline:
        time.sleep(2)


def test_a_provider_network_cloud_uses_the_shared_network_and_ignores_what_needs_a_router(state, tmp_path):
    with _project() as (admin, project, name, password, entry), provider_cloud(state, admin, project, entry):
        proc, found, written = _run(tmp_path, entry, "-n", "2")
    status = {r["name"]: (r["status"], (r.get("statusDetails") or {}).get("message", "")[:300]) for r in found}
    assert found and proc.returncode == 0, (proc.stdout[-3000:], {k: v for k, v in status.items() if v[0] != "passed"})
    assert all(s in ("passed", "skipped") for s, _ in status.values()), status
    skipped = [m for s, m in status.values() if s == "skipped"]
    assert any("ce cloud refuse" in m for m in skipped), skipped
    assert password not in written
