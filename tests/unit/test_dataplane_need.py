"""The dataplane need skips only a cloud that has no dataplane, never a broken one (issue #20): a real
hypervisor whose nova-compute is down, or a cloud that does not answer the probe, makes the scenarios run
and fail naming the component, instead of an IGNORÉ that hides the fault (forged observations)."""
import types

import pytest
from keystoneauth1 import exceptions as ks

from popek.checks.cloud import needs, probe


@pytest.mark.parametrize("up, known, reason", [
    (["QEMU"], ["QEMU"], None),
    (["fake"], ["fake"], "hyperviseur fake"),
    (["QEMU"], ["QEMU", "fake"], None),          # an old fake node left down beside the real one
    (["fake"], ["QEMU", "fake"], "hyperviseur fake"),
    # nova-compute killed (live, 2026-12-06): its QEMU node is down; the dataplane exists, broken
    ([], ["QEMU"], None),
    ([], ["fake"], "hyperviseur fake"),
    ([], [], "aucun hyperviseur"),
])
def test_hypervisor_reason(up, known, reason):
    said = probe.hypervisor_reason(up, known)
    assert said is None if reason is None else reason in said


def _cloud(raises: BaseException):
    def dataplane_reason(cloud):
        raise raises
    return types.SimpleNamespace(facts={}), dataplane_reason


def test_a_cloud_that_times_out_during_the_probe_is_not_skipped(monkeypatch):
    # RabbitMQ frozen (live): Neutron's GET /v2.0/networks timed out in the probe, and the traffic scenario
    # was IGNORÉ "plan de données impossible à établir : ConnectTimeout"
    cloud, fails = _cloud(ks.ConnectTimeout("Request to http://127.0.0.1:9696/v2.0/networks timed out"))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) is None
    assert "dataplane" not in cloud.facts      # asked again by the next scenario


def test_an_http_500_during_the_probe_is_not_skipped(monkeypatch):
    from openstack import exceptions as sdk_exc

    cloud, fails = _cloud(sdk_exc.HttpException("boom", http_status=503))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) is None


def test_a_probe_refused_by_policy_stays_a_reason(monkeypatch):
    from openstack import exceptions as sdk_exc

    # F4 live (a reader whose Neutron lets it write security groups, not networks): the reason read
    # « ForbiddenException: ForbiddenException: 403: Client Error for url: …/v2.0/networks, rule:… »
    cloud, fails = _cloud(sdk_exc.ForbiddenException("403: Client Error for url: http://n/v2.0/networks",
                                                     http_status=403,
                                                     details="rule:create_network is disallowed by policy"))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    said = needs.need_dataplane(cloud)
    assert said == ("plan de données impossible à établir : le cloud refuse à ce compte de créer l'instance sonde "
                    "ou son réseau (HTTP 403 : rule:create_network is disallowed by policy)"), said


def _quota_conn(floating_ips=None, error=None):
    def get_quota(project_id, details=False):
        assert details and project_id == "p1"
        if error:
            raise error
        return types.SimpleNamespace(floating_ips=floating_ips)
    return types.SimpleNamespace(current_project_id="p1", network=types.SimpleNamespace(get_quota=get_quota))


def test_a_floating_ip_quota_of_zero_is_a_reason_not_a_failure():
    """hX, 2026-12-07: a fresh member project with Neutron's floatingip quota at 0 had both C24 scenarios
    ÉCHEC ("409 … Quota exceeded for resources: ['floatingip']") on a healthy cloud; the operator gave that
    project no floating IP: IGNORÉ with that reason. A quota that is merely used up stays Neutron's answer."""
    from popek.checks.cloud import network

    assert "quota d'IP flottantes de ce projet est 0" in network.floating_ip_quota_reason(
        _quota_conn({"limit": 0, "used": 0, "reserved": 0}))
    assert network.floating_ip_quota_reason(_quota_conn({"limit": 50, "used": 1, "reserved": 0})) is None
    assert network.floating_ip_quota_reason(_quota_conn({"limit": -1, "used": 3, "reserved": 0})) is None
    assert network.floating_ip_quota_reason(_quota_conn(error=PermissionError("policy"))) is None


def test_the_dataplane_reason_names_the_quota_before_booting_a_probe(monkeypatch):
    """A member on a cloud whose project has no floating IP: the reason comes from the API alone, no probe
    instance is booted for a question the quota already answers."""
    from popek.checks.cloud import network, probe

    monkeypatch.setattr(network, "external_network", lambda conn: object())
    monkeypatch.setattr(probe, "_probe_console", lambda cloud: pytest.fail("probe instance booted"))
    cloud = types.SimpleNamespace(admin=None, conn=_quota_conn({"limit": 0, "used": 0, "reserved": 0}))
    assert probe.dataplane_reason(cloud).endswith("pas d'IP flottante pour joindre les instances depuis l'hôte")
