"""A provider-network cloud: members may not create networks or routers (Neutron's policy: HTTP 403
rule:create_network), they plug their instances into the network the admin shared. What needs a network or
a router of its own is IGNORÉ « ce cloud refuse à ce compte … » (compute.Refused, a NoRoom: every place that
skips on a quota skips on it), never ÉCHEC; a 403 that is a quota's stays a quota's. Forged API answers."""
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import compute


class Ledger:
    def __init__(self):
        self.made = []

    def create(self, kind, what, make):
        self.made.append(kind)
        return make(f"popek-0123abcd-{what}")


def _refusing(details):
    def create_network(**_):
        raise sdk_exc.ForbiddenException(message="403: Client Error", details=details)
    return NS(network=NS(create_network=create_network))


def test_a_network_refused_by_the_policy_is_refused_with_its_words():
    with pytest.raises(compute.Refused) as caught:
        compute.create_network(_refusing("(rule:create_network) is disallowed by policy"), Ledger())
    said = str(caught.value)
    assert said.startswith("ce cloud refuse à ce compte la création d'un réseau (Neutron, create_network)")
    assert "HTTP 403 : (rule:create_network) is disallowed by policy" in said
    assert isinstance(caught.value, compute.NoRoom)     # skipped wherever a quota is


def test_a_403_for_a_quota_is_not_taken_for_the_policy():
    with pytest.raises(sdk_exc.ForbiddenException):
        compute.create_network(_refusing("Quota exceeded for instances: Requested 1, but already used 10 of 10 "
                                          "instances"), Ledger())


def test_other_errors_go_through():
    def create_network(**_):
        raise sdk_exc.HttpException(message="500", http_status=500)
    with pytest.raises(sdk_exc.HttpException) as caught:
        compute.create_network(NS(network=NS(create_network=create_network)), Ledger())
    assert not isinstance(caught.value, compute.NothingToBoot)


def _router_refused(monkeypatch, cloud):
    from popek.checks.cloud import shared as mod
    from tests.unit.test_shared import _patched

    shared = _patched(monkeypatch, cloud)
    nets = []
    monkeypatch.setattr(mod.compute, "project_network", lambda conn, ledger, existing=None: nets.append("shared") or
                        "the-admins-shared-net")

    def routed_to_external(conn, ledger):
        raise sdk_exc.ForbiddenException(message="403", details="(rule:create_router) is disallowed by policy")
    monkeypatch.setattr(mod.network, "routed_to_external", routed_to_external)
    return shared, nets


def test_a_router_refused_leaves_the_pair_on_the_shared_network_and_the_router_ignored(monkeypatch):
    from tests.unit.test_shared import _Cloud

    booted_on = []
    cloud = _Cloud(accepted=2, ends="ACTIVE")
    boot = cloud.boot
    cloud.boot = lambda conn, ledger, what, image, flavor, net, **kw: booted_on.append(net) or boot(
        conn, ledger, what, image, flavor, net, **kw)
    shared, nets = _router_refused(monkeypatch, cloud)
    monkeypatch.setattr("popek.checks.cloud.shared.neutron_quota.neutron_room_reason", lambda *a, **k: None)
    monkeypatch.setattr("popek.checks.cloud.shared.compute.quota_reason", lambda *a, **k: None)
    assert shared.pair() == ["server-0", "server-1"]
    assert booted_on == ["the-admins-shared-net"] * 2
    with pytest.raises(compute.Refused, match=r"ce cloud refuse à ce compte un routeur .*rule:create_router"):
        shared.routed()     # what needs a floating IP: IGNORÉ with the policy's words


def test_the_refusal_is_kept_as_a_refusal_for_the_other_workers(tmp_path):
    from popek.checks.cloud.shared import RunShared

    def refused():
        raise compute.Refused("ce cloud refuse à ce compte un routeur (HTTP 403 : x)")
    first = RunShared(None, tmp_path, "popek-0123abcd-run", ("private", "public"))
    with pytest.raises(compute.Refused):
        first.get("routed", refused)
    other = RunShared(None, tmp_path, "popek-0123abcd-run", ("private", "public"))
    with pytest.raises(compute.Refused, match="un routeur"):
        other.get("routed", lambda: pytest.fail("made twice"))


# hR F1: only Neutron's policy refusing the rule of the very call made is the cloud's policy; any other 403 stays
# a fault (ÉCHEC), and the probe's refused network is said as a policy, not as a quota.

def test_a_403_page_that_no_policy_wrote_is_not_the_clouds_policy():
    page = "<html><head><title>403 Forbidden</title></head><body>Blocked by administrative rules</body></html>"
    with pytest.raises(sdk_exc.ForbiddenException):
        compute.create_network(_refusing(page), Ledger())


def test_another_calls_rule_is_not_the_networks():
    with pytest.raises(sdk_exc.ForbiddenException):
        compute.create_network(_refusing("(rule:create_network_segment_range) is disallowed by policy"), Ledger())


@pytest.mark.parametrize("details", ["(rule:create_subnet) is disallowed by policy",
                                     "(rule:add_router_interface) is disallowed by policy",
                                     "<html>403 Forbidden</html>"])
def test_a_403_in_routed_that_is_not_the_routers_rule_stays_a_fault(monkeypatch, details):
    from popek.checks.cloud import shared as mod
    from tests.unit.test_shared import _Cloud, _patched

    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))

    def routed_to_external(conn, ledger):
        raise sdk_exc.ForbiddenException(message="403", details=details)
    monkeypatch.setattr(mod.network, "routed_to_external", routed_to_external)
    with pytest.raises(Exception) as caught:
        shared.routed()
    assert not isinstance(caught.value, compute.NothingToBoot), caught.value
    assert "create_router" not in str(caught.value)


def test_a_routers_attribute_refused_is_the_routers_policy(monkeypatch):
    from popek.checks.cloud import shared as mod
    from tests.unit.test_shared import _Cloud, _patched

    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))

    def routed_to_external(conn, ledger):
        raise sdk_exc.ForbiddenException(message="403", details="(rule:create_router and "
                                         "rule:create_router:external_gateway_info) is disallowed by policy")
    monkeypatch.setattr(mod.network, "routed_to_external", routed_to_external)
    with pytest.raises(compute.Refused, match="un routeur"):
        shared.routed()


def _probe_refused(monkeypatch, kind):
    from popek.checks.cloud import needs, probe

    cloud = NS(facts={}, roles=["member"], choice=NS(kind=kind))

    def dataplane_reason(cloud):
        compute.create_network(_refusing("(rule:create_network) is disallowed by policy"), Ledger())
    monkeypatch.setattr(probe, "dataplane_reason", dataplane_reason)
    return needs.need_dataplane(cloud), cloud


def test_the_probes_network_refused_is_said_as_a_policy_not_a_quota(monkeypatch):
    said, cloud = _probe_refused(monkeypatch, "os-cloud")
    assert said.startswith("plan de données impossible à établir : ce cloud refuse à ce compte la création d'un "
                           "réseau (Neutron, create_network)"), said
    assert "quota" not in said and "la politique de ce cloud" in said
    assert cloud.facts["dataplane"] == said


def test_on_the_embedded_cloud_the_probes_network_refused_is_a_fault(monkeypatch):
    # popek writes the embedded cloud's policy (members may create networks): a refusal there is a policy file
    # left behind, a fault; the scenarios run and fail (not kept for the session)
    said, cloud = _probe_refused(monkeypatch, "embedded")
    assert said is None and "dataplane" not in cloud.facts
