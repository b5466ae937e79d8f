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

    cloud, fails = _cloud(sdk_exc.ForbiddenException("policy", http_status=403))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert "plan de données impossible à établir : ForbiddenException" in needs.need_dataplane(cloud)
