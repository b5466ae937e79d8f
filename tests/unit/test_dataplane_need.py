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


def _cloud(raises: BaseException, roles=("member",)):
    def dataplane_reason(cloud):
        raise raises
    return types.SimpleNamespace(facts={}, roles=list(roles)), dataplane_reason


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
                                                     details="rule:create_network is disallowed by policy"),
                          roles=["reader"])
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    said = needs.need_dataplane(cloud)
    assert said == ("plan de données impossible à établir : ce compte n'a que le rôle reader : le cloud refuse de "
                    "lui créer l'instance sonde ou son réseau (HTTP 403 : rule:create_network is disallowed by "
                    "policy)"), said
    assert cloud.facts["dataplane"] == said       # once for the session


def _forbidden():
    from openstack import exceptions as sdk_exc

    return sdk_exc.ForbiddenException("403: Client Error for url: http://nova/v2.1/servers", http_status=403,
                                      details="Policy doesn't allow os_compute_api:servers:create to be performed.")


def test_a_members_403_is_not_its_account_but_the_clouds_fault(monkeypatch):
    """hR F1: a member refused by a broken policy was told « le cloud refuse à ce compte… » and every
    dataplane scenario was IGNORÉ: a member may create instances; the scenarios run and fail saying so."""
    cloud, fails = _cloud(_forbidden(), roles=["member", "reader"])
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) is None
    assert "dataplane" not in cloud.facts


def test_a_readers_403_worded_by_compute_boot_stays_a_reason(monkeypatch):
    """compute.boot turns Nova's 403 into an AssertionError raised from None: the 403 is its context."""
    def boot_refused():
        try:
            raise _forbidden()
        except Exception as exc:
            raise AssertionError(f"server create refusé par Nova (HTTP 403) : {exc.details}") from None

    try:
        boot_refused()
    except AssertionError as exc:
        refused = exc
    cloud, fails = _cloud(refused, roles=["reader"])
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert "ce compte n'a que le rôle reader" in needs.need_dataplane(cloud)
    cloud, fails = _cloud(refused, roles=["member"])
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) is None


@pytest.mark.parametrize("raised", [
    # wait_active on a cloud whose only nova-compute is dead or disabled (its finding from the health records)
    AssertionError("l'instance popek-abcd1234-probe est en ERROR : No valid host was found (nova-compute@host1 "
                   "arrêté)"),
    AssertionError("server create refusé par Nova (HTTP 400) : Invalid key_name provided."),
    AssertionError("l'instance popek-abcd1234-probe est bloquée en BUILD (spawning) depuis 60 s : "
                   "neutron-openvswitch-agent@host1 mort"),
])
def test_a_probe_that_fails_on_a_broken_cloud_lets_the_scenarios_fail(monkeypatch, raised):
    """hR F1: the probe's failures on a broken cloud were the session's IGNORÉ reason for every dataplane
    scenario (« plan de données impossible à établir : AssertionError: … No valid host … »): the verdict
    could not fail. They run now, and fail naming the component."""
    cloud, fails = _cloud(raised)
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) is None
    assert "dataplane" not in cloud.facts


def test_a_neutron_conflict_is_not_a_reason(monkeypatch):
    from openstack import exceptions as sdk_exc

    cloud, fails = _cloud(sdk_exc.ConflictException("409: Client Error", http_status=409,
                                                    details="IP address 10.77.0.5 already allocated"))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) is None


def test_no_room_or_nothing_to_boot_stays_the_sessions_reason(monkeypatch):
    from popek.checks.cloud import compute

    cloud, fails = _cloud(compute.NoRoom("quota instances : limite 2, en usage 2"))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    said = needs.need_dataplane(cloud)
    assert said == ("plan de données impossible à établir : pas de place pour l'instance sonde dans le quota du "
                    "projet (quota instances : limite 2, en usage 2)"), said
    assert cloud.facts["dataplane"] == said
    cloud, fails = _cloud(compute.NothingToBoot("aucune image active"))
    monkeypatch.setattr(probe, "dataplane_reason", fails)
    assert needs.need_dataplane(cloud) == ("plan de données impossible à établir : rien pour démarrer l'instance "
                                           "sonde (aucune image active)")


def test_the_probes_network_refused_for_quota_is_no_room(monkeypatch):
    """The probe's own network refused by Neutron for lack of quota (confirmed by its details): NoRoom, the
    project's limit; any other refusal of the network stays what it was."""
    from openstack import exceptions as sdk_exc

    from popek.checks.cloud import compute, ledger, network

    over = sdk_exc.ConflictException("409", http_status=409,
                                     details="Quota exceeded for resources: ['network'].")
    monkeypatch.setattr(compute, "pick_image", lambda conn, avoid=(): object())
    monkeypatch.setattr(compute, "pick_flavor", lambda conn, image: object())
    monkeypatch.setattr(compute, "project_network", lambda conn, led: (_ for _ in ()).throw(over))
    monkeypatch.setattr(compute, "boot", lambda *a, **k: pytest.fail("booted without a network"))
    monkeypatch.setattr(ledger.Ledger, "cleanup", lambda self: None)
    monkeypatch.setattr(network, "quota_refusal",
                        lambda conn, exc: "quota network : limite 1, en usage 1" if exc is over else None)
    cloud = types.SimpleNamespace(conn=types.SimpleNamespace(), facts={"prefix": "popek-abcd1234"})
    with pytest.raises(compute.NoRoom, match="quota network"):
        probe._probe_console(cloud)
    monkeypatch.setattr(network, "quota_refusal", lambda conn, exc: None)
    with pytest.raises(sdk_exc.ConflictException):
        probe._probe_console(cloud)


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
