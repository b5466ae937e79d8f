"""A reader-only account (Keystone's `reader` role: a teacher's audit account) is refused every creation by
the services' default policies. hA, 2026-12-07, live on a fresh project of the embedded cloud: 10 scenarios
ÉCHEC and 3 errors (403 'rule:create_network is disallowed by policy', Swift's PUT 403, Glance's image data
403 told as 'image pas prête à démarrer'), the dataplane skipped as 'impossible à établir : ForbiddenException'.
Now: the scenarios that write need `write`, asked once by creating one security group; a reader refused
is IGNORÉ with that reason, a reader on a cloud of legacy policies (writes allowed) runs everything."""
import types

from openstack import exceptions as sdk_exc

from popek.checks.cloud import needs, probe

NS = types.SimpleNamespace


class FakeNetwork:
    """Neutron as the probe sees it: create_security_group refused (403) or accepted, and what cleanup asks."""

    def __init__(self, refuse: bool):
        self.refuse, self.groups, self.deleted = refuse, [], []

    def create_security_group(self, name, description):
        if self.refuse:
            raise sdk_exc.ForbiddenException(
                "ForbiddenException: 403", http_status=403,
                details="rule:create_security_group is disallowed by policy")
        group = NS(id=f"sg{len(self.groups)}", name=name, created_at=None)
        self.groups.append(group)
        return group

    def security_groups(self, project_id=None):
        return [g for g in self.groups if g.id not in self.deleted]

    def delete_security_group(self, group, ignore_missing=True):
        self.deleted.append(getattr(group, "id", group))


def _cloud(roles, refuse):
    network = FakeNetwork(refuse)
    conn = NS(network=network, current_project_id="p1")
    return NS(roles=roles, conn=conn, facts={"prefix": "popek-0123abcd-gw0"}), network


def test_read_only_roles():
    assert probe.read_only(["reader"]) and probe.read_only(["Reader"])
    assert not probe.read_only(["member", "reader"])    # a member's token carries the implied reader too
    assert not probe.read_only(["reader", "heat_stack_owner"])     # an unknown role may write
    assert not probe.read_only([])


def test_a_reader_refused_is_ignored_with_the_true_reason_and_asked_once():
    cloud, network = _cloud(["reader"], refuse=True)
    said = needs.need_write(cloud)
    assert said.startswith("ce compte n'a que le rôle reader") and "HTTP 403" in said
    assert "rule:create_security_group" in said
    network.refuse = False      # the answer is the session's: not asked again
    assert needs.need_write(cloud) == said and network.groups == []


def test_a_reader_allowed_to_write_runs_and_the_probe_group_is_deleted():
    cloud, network = _cloud(["reader"], refuse=False)
    assert needs.need_write(cloud) is None
    assert [g.name.startswith("popek-0123abcd-gw0-write-probe-") for g in network.groups] == [True]
    assert network.deleted == ["sg0"]


def test_a_member_is_not_probed():
    cloud, network = _cloud(["member", "reader"], refuse=True)
    assert needs.need_write(cloud) is None and network.groups == []


def test_the_write_need_is_asked_before_the_dataplane():
    from popek.checks import needs as registry

    order = list(registry.REQUIREMENTS)
    assert order.index("write") < order.index("dataplane")


def test_a_kind_the_reader_may_not_even_list_is_no_orphan_and_no_error(monkeypatch):
    """Swift answers a reader's container listing 403: the run's end sweep raised it as 'nettoyage du run
    incomplet' (exit 1) although the account could not have made a container (hA, live, reader2)."""
    from popek.checks.cloud import ledger

    def list_dated(conn, kind):
        if kind == "container":
            raise sdk_exc.ForbiddenException("ForbiddenException: 403", http_status=403)
        return [("sg1", "popek-0123abcd-gw0-sg-1", None)] if kind == "security_group" else []
    monkeypatch.setattr(ledger, "list_dated", list_dated)
    found = ledger.orphans(NS(), current_run=None)
    assert [(e.kind, e.name) for e in found] == [("security_group", "popek-0123abcd-gw0-sg-1")]
