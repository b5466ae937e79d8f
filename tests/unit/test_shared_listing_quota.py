"""The run's pair refused for lack of quota stays refused for the whole run (NoRoom, kept): the scenarios
that only *list* a server of the run (C17's GET /servers, C33/C36's `openstack server list`) then take one
server of their own when the quota has room for one, else are IGNORÉ with both reasons. Forged quota, no
cloud."""
import pytest

from popek.checks.cloud import shared as shared_mod
from popek.checks.cloud.compute import NoRoom

from tests.unit.test_shared import _Cloud, _patched


class _Ledger:
    def __init__(self):
        self.booted = []


def _quota(monkeypatch, room_for: int):
    asked = []

    def quota_reason(conn, instances=0, what="", **kwargs):
        asked.append(instances)
        return None if instances <= room_for else \
            f"quota instances de {what} : limite {room_for + 1}, en usage 1 (besoin : {instances})"
    monkeypatch.setattr(shared_mod.compute, "quota_reason", quota_reason)
    return asked


def test_a_listing_scenario_takes_its_own_server_when_the_pair_has_no_room(monkeypatch):
    cloud = _Cloud(accepted=5, ends="ACTIVE")
    shared = _patched(monkeypatch, cloud)
    asked = _quota(monkeypatch, room_for=1)
    ledger = _Ledger()
    server, why = shared.listed(ledger)
    assert (server, why) == ("server-0", None) and cloud.created == ["server-0"]
    assert asked == [2, 1]          # the pair's two, refused; then this scenario's one
    with pytest.raises(NoRoom, match="la paire d'instances du run"):
        shared.pair()               # the pair stays refused for the run: no second quota read, no boot
    assert asked == [2, 1] and cloud.created == ["server-0"]
    server, _ = shared.listed(ledger)   # the next listing scenario: its own again (the first one's is deleted)
    assert server == "server-1" and asked == [2, 1, 1]


def test_no_room_for_one_either_is_ignored_with_both_reasons(monkeypatch):
    cloud = _Cloud(accepted=5, ends="ACTIVE")
    shared = _patched(monkeypatch, cloud)
    _quota(monkeypatch, room_for=0)
    with pytest.raises(NoRoom) as caught:
        shared.listed(_Ledger())
    assert "la paire d'instances du run" in str(caught.value) and "l'instance de ce scénario" in str(caught.value)
    assert cloud.created == []


def test_without_a_ledger_the_refusal_is_the_callers(monkeypatch):
    shared = _patched(monkeypatch, _Cloud(accepted=5, ends="ACTIVE"))
    _quota(monkeypatch, room_for=1)
    with pytest.raises(NoRoom):
        shared.listed()


# --- hR F5: the listing scenario's own server on a tight project (a fresh classroom project) -----------------
from types import SimpleNamespace as NS     # noqa: E402

from openstack import exceptions as sdk_exc    # noqa: E402

from popek.checks.cloud import compute     # noqa: E402

RUN = "popek-0a1b2c3d"
OVER = "Quota exceeded for resources: ['network']."


def _net(name, external=False):
    return NS(id=f"id-{name}", name=name, is_router_external=external, subnet_ids=["s"], status="ACTIVE")


class _Neutron:
    """Neutron with `names` networks and a network quota at its limit: a network made is refused (409)."""

    def __init__(self, names, details=True):
        self.nets, self.details, self.made = [_net(n) for n in names] + [_net("public", True)], details, []

    def networks(self, **query):
        return iter(self.nets)

    def get_quota(self, project, details=False):
        if not self.details:
            raise sdk_exc.ForbiddenException("policy")
        full = {"limit": len(self.nets) - 1, "used": len(self.nets) - 1, "reserved": 0}
        return NS(networks=full, subnets={"limit": 10, "used": 1, "reserved": 0},
                  ports={"limit": 50, "used": 3, "reserved": 0})

    def create_network(self, **kwargs):
        self.made.append(kwargs["name"])
        raise sdk_exc.ConflictException(OVER, http_status=409)


class _BookLedger:
    def __init__(self, prefix):
        self.prefix, self.entries = prefix, []

    def name(self, what):
        return f"{self.prefix}-{what}-1"

    def record(self, kind, name="", id=None, **extra):
        self.entries.append(NS(kind=kind, name=name, id=id))
        return self.entries[-1]

    def create(self, kind, what, make, id_attr="id"):
        entry = self.record(kind, self.name(what))
        made = make(entry.name)
        entry.id = getattr(made, id_attr, None)
        return made


def _tight(monkeypatch, neutron):
    """Only one instance fits (the pair is refused); the boot records the network it was given."""
    _quota(monkeypatch, room_for=1)
    booted = []
    monkeypatch.setattr(shared_mod.compute, "pick_image", lambda conn, avoid=(): NS(id="img"))
    monkeypatch.setattr(shared_mod.compute, "pick_flavor", lambda conn, image: NS(id="flv", vcpus=1, ram=512))
    monkeypatch.setattr(shared_mod.compute, "boot", lambda conn, ledger, what, image, flavor, net, **kw:
                        booted.append(net.name) or f"server-on-{net.name}")
    conn = NS(network=neutron, current_project_id="p1")
    return shared_mod.Shared(conn=conn, ledger=_BookLedger(f"{RUN}-run")), booted


@pytest.mark.parametrize("run_net", [f"{RUN}-run-net-7", f"{RUN}-gw0-net-7"])
def test_the_listing_server_goes_on_the_runs_own_network_when_it_is_the_projects_only_one(monkeypatch, run_net):
    """The run's routed network (RunShared's popek-<run>-run-…, or this worker's) is the only non-external
    one: the scenario's own server goes there, no network made (before: a new network, refused here)."""
    neutron = _Neutron([run_net, "popek-99999999-run-net-1", f"{RUN}-gw1-net-3"])
    shared, booted = _tight(monkeypatch, neutron)
    server, why = shared.listed(_BookLedger(f"{RUN}-gw0"))
    assert (server, why, booted, neutron.made) == (f"server-on-{run_net}", None, [run_net], [])


def test_no_network_and_no_room_for_one_is_ignored_with_both_reasons(monkeypatch):
    """Only another run's and another worker's scenario's networks (deleted under the boot by their cleanup),
    and Neutron's network quota full: NoRoom (IGNORÉ) with the pair's reason and Neutron's, nothing made."""
    neutron = _Neutron(["popek-99999999-run-net-1", f"{RUN}-gw1-net-3"])
    shared, booted = _tight(monkeypatch, neutron)
    with pytest.raises(compute.NoRoom) as caught:
        shared.listed(_BookLedger(f"{RUN}-gw0"))
    said = str(caught.value)
    assert "la paire d'instances du run" in said and "quota network : limite 2, en usage 2" in said
    assert booted == [] and neutron.made == []


def test_neutrons_409_for_lack_of_quota_is_no_room_not_broken(monkeypatch):
    """Neutron's quota details readable only at its refusal (the pre-check passes: here the first read is
    refused by policy, then allowed): its 409 « Quota exceeded » is NoRoom with both reasons, not a
    ConflictException escaping the step (broken)."""
    neutron = _Neutron([])
    reads = []

    def get_quota(project, details=False):      # first read (the pre-check) refused, the second (at the 409) not
        reads.append(1)
        if len(reads) == 1:
            raise sdk_exc.ForbiddenException("policy")
        return _Neutron.get_quota(neutron, project, details)
    neutron.get_quota = get_quota
    shared, booted = _tight(monkeypatch, neutron)
    with pytest.raises(compute.NoRoom) as caught:
        shared.listed(_BookLedger(f"{RUN}-gw0"))
    said = str(caught.value)
    assert "la paire d'instances du run" in said and "refusé par Neutron faute de quota (HTTP 409)" in said
    assert OVER in said and len(neutron.made) == 1 and booted == []


def test_existing_network_takes_this_runs_never_another_runs_or_another_workers_scenarios():
    def conn(*names):
        return NS(network=NS(networks=lambda: iter([_net(n) for n in names])))
    assert compute.existing_network(conn(f"{RUN}-w0-net-1"), own=f"{RUN}-w0").name == f"{RUN}-w0-net-1"
    assert compute.existing_network(conn(f"{RUN}-run-net-1"), own=f"{RUN}-gw3").name == f"{RUN}-run-net-1"
    assert compute.existing_network(conn(f"{RUN}-gw1-net-1"), own=f"{RUN}-gw0") is None   # its scenario's
    assert compute.existing_network(conn("popek-99999999-run-net-1"), own=f"{RUN}-gw0") is None
    assert compute.existing_network(conn(f"{RUN}-w0-net-1")) is None                      # no own: none
    assert compute.existing_network(conn(f"{RUN}-run-net-1", "private"), own=f"{RUN}-w0").name == "private"


def test_the_pairs_ports_are_read_before_its_boots(monkeypatch):
    """hX2 live 2026-12-07 11:21 (port quota 3, -n 2 --claim C24): the routed network took 2 ports, Nova's API
    accepted both of the pair's creates (it counts ports at each create), nova-compute found no port for the
    second (PortLimitExceeded): ERROR « Exceeded maximum number of retries », C24 ÉCHEC. Now IGNORÉ before any boot."""
    from types import SimpleNamespace as NS

    from tests.unit.fakes_neutron import QuotaDetails

    cloud = _Cloud(accepted=5, ends="ACTIVE")
    shared = _patched(monkeypatch, cloud)
    net = QuotaDetails()
    net.quota = NS(ports={"limit": 3, "used": 2, "reserved": 0})
    shared.conn = NS(current_project_id="p1", network=net)
    with pytest.raises(NoRoom, match=r"la paire d'instances du run .*quota port : limite 3, en usage 2, il en faut 2"):
        shared.pair()
    assert cloud.created == []
    net.quota = NS(ports={"limit": 4, "used": 2, "reserved": 0})
    shared2 = _patched(monkeypatch, cloud)
    shared2.conn = NS(current_project_id="p1", network=net)
    assert shared2.pair() == ["server-0", "server-1"]
