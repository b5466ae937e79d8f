"""F3: Neutron's refusals for lack of quota (OverQuota, HTTP 409 « Quota exceeded for resources: [...] »)
are IGNORÉ with Neutron's own numbers (GET /v2.0/quotas/{project}/details) only when those show the project
at its limit; any other 409 stays ÉCHEC. Fakes stand for the SDK's objects only (pure logic, no cloud)."""
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import compute, network
from popek.checks.cloud.shared import Shared
from popek.steps import cloud_network

from fakes_neutron import Ledger, QuotaDetails

ROUTER_OVER = "Quota exceeded for resources: ['router']."


def conflict(details=ROUTER_OVER):
    return sdk_exc.ConflictException(message=details, details=details, http_status=409)


class Net(QuotaDetails):
    """conn.network: a router refused with `refused`, quota details as given (or refused themselves)."""

    def __init__(self, refused, quota):
        self.refused, self.quota, self.made = refused, quota, []

    def networks(self, **query):
        return iter([NS(id="ext", name="public")])

    def create_network(self, name):
        self.made.append(("network", name))
        return NS(id="n1", name=name)

    def create_subnet(self, **kwargs):
        self.made.append(("subnet", kwargs["name"]))
        return NS(id="s1", name=kwargs["name"])

    def get_network(self, net_id):
        return NS(id=net_id, subnet_ids=["s1"])

    def create_router(self, **kwargs):
        raise self.refused


def details(limit=1, used=1, reserved=0):
    return NS(routers={"limit": limit, "used": used, "reserved": reserved}, networks={"limit": 2, "used": 0})


def conn_with(refused=None, quota=None):
    return NS(current_project_id="p1", network=Net(refused or conflict(), details() if quota is None else quota))


def test_a_router_refused_at_its_quota_is_neutrons_numbers():
    reason = network.quota_refusal(conn_with(), conflict())
    assert "quota router : limite 1, en usage 1" in reason
    assert "HTTP 409" in reason and "pas une panne du cloud" in reason
    # reserved counts: 1 used + 1 reserved of 2
    assert "réservé(s) 1" in network.quota_refusal(conn_with(quota=details(2, 1, 1)), conflict())


def test_a_409_whose_details_show_room_or_cannot_be_read_or_another_conflict_is_no_quota():
    assert network.quota_refusal(conn_with(quota=details(limit=3, used=1)), conflict()) is None
    assert network.quota_refusal(conn_with(quota=details(limit=-1, used=9)), conflict()) is None
    assert network.quota_refusal(conn_with(quota=sdk_exc.ForbiddenException("policy")), conflict()) is None
    assert network.quota_refusal(conn_with(), conflict("IP address 10.0.0.5 already allocated in subnet")) is None
    assert network.quota_refusal(conn_with(), sdk_exc.HttpException(message="x", details=ROUTER_OVER,
                                                                    http_status=500)) is None
    assert network.quota_refusal(conn_with(), RuntimeError(ROUTER_OVER)) is None


def test_the_routed_step_skips_with_the_router_quota():
    """A student's own lab router took the project's only one (classroom quota routers 1)."""
    conn = conn_with()
    shared = Shared(conn=conn, ledger=Ledger())
    with pytest.raises(pytest.skip.Exception, match=r"quota router : limite 1, en usage 1"):
        cloud_network.routed(shared, conn, None)
    # kept for the run as NoRoom: the pair (which asks for routed) is IGNORÉ the same way
    with pytest.raises(compute.NoRoom, match="quota router"):
        shared.routed()


def test_the_routed_step_fails_when_neutrons_details_show_room():
    conn = conn_with(quota=details(limit=5, used=1))
    shared = Shared(conn=conn, ledger=Ledger())
    with pytest.raises(AssertionError, match="réseau du run relié au réseau externe .*: .*Quota exceeded"):
        cloud_network.routed(shared, conn, None)


def test_a_floating_ip_refused_at_its_quota_is_no_room_and_another_409_is_not():
    class FipNet(Net):
        def create_ip(self, **kwargs):
            raise self.refused

    quota = NS(floating_ips={"limit": 2, "used": 2, "reserved": 0})
    conn = NS(current_project_id="p1",
              network=FipNet(conflict("Quota exceeded for resources: ['floatingip']."), quota))
    with pytest.raises(compute.NoRoom, match="quota floatingip : limite 2, en usage 2"):
        network.create_floating_ip(conn, Ledger(), NS(id="ext"))
    conn.network.refused = conflict("No more IP addresses available on network ext.")
    with pytest.raises(sdk_exc.ConflictException):
        network.create_floating_ip(conn, Ledger(), NS(id="ext"))


def test_the_run_s_floating_ip_refused_at_its_quota_is_ignored_and_asked_again_next_time():
    """Under -n 2 another scenario's floating IP may hold the project's last one when the run's is made."""
    from popek.checks.cloud.shared import Routed
    from popek.steps import cloud_dataplane

    class FipNet:
        def __init__(self):
            self.refuse, self.quota = True, NS(floating_ips={"limit": 2, "used": 2, "reserved": 0})

        def get_quota(self, project, details=False):
            return self.quota

        def ips(self, **query):
            return []

        def create_ip(self, floating_network_id, description):
            if self.refuse:
                raise conflict("Quota exceeded for resources: ['floatingip'].")
            return NS(id="fip-1", description=description)

        def ports(self, device_id=None, **kwargs):
            return [NS(id="port-1")]

        def update_ip(self, fip, port_id=None):
            return fip

        def get_ip(self, fip_id):
            return NS(id=fip_id, port_id="port-1")

    conn = NS(current_project_id="p1", network=FipNet())
    shared = Shared(conn=conn, ledger=Ledger())
    shared._made["pair"] = ([NS(id="srv-1", name="s1")], None)
    shared._made["routed"] = (Routed(external=NS(id="ext"), network=NS(id="n1"), router=NS(id="r1")), None)
    shared._fip_name = "popek-test-fip"
    with pytest.raises(pytest.skip.Exception, match="quota floatingip : limite 2, en usage 2"):
        cloud_dataplane.run_fip_reached(None, conn, shared, None, None, None, None)
    conn.network.refuse = False      # the other scenario's floating IP is gone: the next one gets the run's
    assert shared.pair_fip().id == "fip-1"
