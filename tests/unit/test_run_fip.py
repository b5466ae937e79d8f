"""The run's own floating IP on the shared pair's first server (shared.pair_fip): made once, recorded
before the pair's boots (deleted after them), moved and given back by a scenario through its ledger,
and never trusted before use (guest.run_fip_guest). A fake Neutron that refuses, as Neutron does, a
second floating IP on a port's fixed address; no cloud."""
import itertools
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import guest as guests, ledger as ledger_mod, network
from popek.checks.cloud.shared import RunShared, Shared

PREFIX = "popek-0123abcd-gw0"


class FakeNetwork:
    """Floating IPs and ports, with Neutron's rule: one floating IP per fixed address (409 otherwise)."""

    def __init__(self):
        self.fips, self.ids, self.calls = {}, itertools.count(1), []
        self.portmap = {"srv-1": NS(id="port-1", fixed_ips=[{"ip_address": "10.78.0.11"}]),
                      "srv-2": NS(id="port-2", fixed_ips=[{"ip_address": "10.78.0.12"}])}

    def create_ip(self, floating_network_id, description="", port_id=None):
        fip = NS(id=f"fip-{next(self.ids)}", description=description, port_id=None,
                 floating_ip_address=f"203.0.113.{len(self.fips) + 10}")
        self.fips[fip.id] = fip
        self.calls.append(("create", fip.id))
        return NS(**vars(fip))

    def _id(self, fip):
        return getattr(fip, "id", fip)

    def get_ip(self, fip):
        if self._id(fip) not in self.fips:
            raise sdk_exc.NotFoundException(message="floating ip not found")
        return NS(**vars(self.fips[self._id(fip)]))

    def update_ip(self, fip, port_id=None):
        fid = self._id(fip)
        if port_id is not None and any(f.port_id == port_id and f.id != fid for f in self.fips.values()):
            raise sdk_exc.ConflictException(message=f"port {port_id} has a floating ip already")
        self.calls.append(("update", fid, port_id))
        self.fips[fid].port_id = port_id
        return self.get_ip(fid)

    def delete_ip(self, fip, ignore_missing=True):
        self.calls.append(("delete", self._id(fip)))
        self.fips.pop(self._id(fip), None)

    def ips(self, port_id=None, project_id=None, description=None):
        return [NS(**vars(f)) for f in self.fips.values()
                if (port_id is None or f.port_id == port_id) and (description is None or f.description == description)]

    def ports(self, device_id=None, **kwargs):
        return [self.portmap[device_id]]


def _conn():
    return NS(network=FakeNetwork(), current_project_id="p")


def _on(conn, fid):
    return conn.network.fips[fid].port_id


def test_a_scenario_s_own_floating_ip_takes_the_port_from_the_run_s_one_which_gets_it_back():
    conn = _conn()
    port1, port2 = conn.network.portmap["srv-1"], conn.network.portmap["srv-2"]
    run_fip = conn.network.create_ip("ext", description="popek-0123abcd-run-fip-1")
    network.associate(conn, run_fip, port1)
    book = ledger_mod.Ledger(conn, PREFIX)
    own = network.create_floating_ip(conn, book, NS(id="ext"))
    network.move(conn, book, own, port1, put_back=False)        # C24 (API): the scenario's own IP on the 1st
    assert (_on(conn, own.id), _on(conn, run_fip.id)) == ("port-1", None)
    network.move(conn, book, own, port2, put_back=False)        # then on the 2nd
    assert (_on(conn, own.id), _on(conn, run_fip.id)) == ("port-2", None)
    assert book.cleanup() == []
    assert own.id not in conn.network.fips and _on(conn, run_fip.id) == "port-1"


@pytest.mark.parametrize("moves", [1, 2])
def test_a_scenario_stopped_between_its_moves_gives_the_run_s_floating_ip_back(monkeypatch, moves):
    """hR F1: C24 (API) failing (or interrupted) after its first move: its own floating IP still held port 1
    when the ledger put the run's one back there (409, 20 s of retries, 'nettoyage incomplet', the pair
    replaced). Also when the second move had to take port 2 from another floating IP."""
    monkeypatch.setattr(ledger_mod.time, "sleep", lambda s: None)
    conn = _conn()
    port1, port2 = conn.network.portmap["srv-1"], conn.network.portmap["srv-2"]
    run_fip = network.associate(conn, conn.network.create_ip("ext", description="popek-0123abcd-run-fip-1"), port1)
    other = network.associate(conn, conn.network.create_ip("ext", description="someone-else"), port2)
    book = ledger_mod.Ledger(conn, PREFIX)
    own = network.create_floating_ip(conn, book, NS(id="ext"))
    network.move(conn, book, own, port1, put_back=False)
    if moves == 2:
        network.move(conn, book, own, port2, put_back=False)
        assert (_on(conn, own.id), _on(conn, other.id)) == ("port-2", None)
    assert book.cleanup() == []
    assert own.id not in conn.network.fips
    assert (_on(conn, run_fip.id), _on(conn, other.id)) == ("port-1", "port-2")


def test_the_run_s_floating_ip_moved_by_a_scenario_goes_back_to_its_server():
    conn = _conn()
    port1, port2 = conn.network.portmap["srv-1"], conn.network.portmap["srv-2"]
    run_fip = network.associate(conn, conn.network.create_ip("ext", description="popek-0123abcd-run-fip-1"), port1)
    other = network.associate(conn, conn.network.create_ip("ext", description="someone-else"), port2)
    book = ledger_mod.Ledger(conn, PREFIX)
    network.move(conn, book, run_fip, port2)                      # C24 (traffic): the run's IP to the 2nd
    assert (_on(conn, run_fip.id), _on(conn, other.id)) == ("port-2", None)
    assert book.cleanup() == []     # newest first: the run's IP leaves port 2 before the other one comes back
    assert (_on(conn, run_fip.id), _on(conn, other.id)) == ("port-1", "port-2")


class _Guest:
    def __init__(self, answers):
        self.answers, self.address = list(answers), "203.0.113.10"

    def run(self, command, timeout=10.0):
        return 0, self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _reach(monkeypatch, answers):
    got = []

    def fake_reach_through(conn, fip, access, server, image, group, attach, **kwargs):
        got.append(fip)
        return _Guest(answers)
    monkeypatch.setattr(guests, "reach_through", fake_reach_through)
    monkeypatch.setattr(guests, "MOVE_GRACE", 0.3)
    return got


def test_a_run_floating_ip_that_leads_elsewhere_is_put_back_and_said(monkeypatch):
    conn = _conn()
    run_fip = network.associate(conn, conn.network.create_ip("ext"), conn.network.portmap["srv-2"])
    reached = _reach(monkeypatch, ["2: eth0    inet 10.78.0.11/24 brd 10.78.0.255"])
    said = {}
    guests.run_fip_guest(conn, run_fip, NS(private="k"), NS(id="srv-1", name="s1"), None, None,
                         said.__setitem__, since="x")
    assert _on(conn, run_fip.id) == "port-1" and reached[0].port_id == "port-1"
    assert said["IP flottante du run remise sur l'instance"]["menait au port"] == "port-2"


def test_a_run_floating_ip_that_cannot_come_back_names_the_one_on_the_port(monkeypatch):
    """hR F8: another floating IP took the first server's port: a French verdict naming it, not the SDK's
    English 409."""
    conn = _conn()
    run_fip = network.associate(conn, conn.network.create_ip("ext"), conn.network.portmap["srv-2"])
    thief = network.associate(conn, conn.network.create_ip("ext"), conn.network.portmap["srv-1"])
    _reach(monkeypatch, ["inet 10.78.0.11/24"])
    with pytest.raises(AssertionError, match=rf"ne peut pas revenir sur l'instance s1 : son port porte déjà "
                                             rf"l'IP flottante {thief.floating_ip_address}"):
        guests.run_fip_guest(conn, run_fip, NS(private="k"), NS(id="srv-1", name="s1"), None, None,
                             lambda *a: None, since="x")


def test_a_run_floating_ip_in_place_is_used_without_a_write(monkeypatch):
    conn = _conn()
    run_fip = network.associate(conn, conn.network.create_ip("ext"), conn.network.portmap["srv-1"])
    before = list(conn.network.calls)
    _reach(monkeypatch, ["2: eth0    inet 10.78.0.11/24 brd 10.78.0.255"])
    said = {}
    guests.run_fip_guest(conn, run_fip, NS(private="k"), NS(id="srv-1", name="s1"), None, None,
                         said.__setitem__, since="x")
    assert conn.network.calls == before and said == {}


def test_ssh_through_the_run_floating_ip_landing_on_another_server_fails(monkeypatch):
    conn = _conn()
    run_fip = network.associate(conn, conn.network.create_ip("ext"), conn.network.portmap["srv-1"])
    _reach(monkeypatch, ["2: eth0    inet 10.78.0.12/24 brd 10.78.0.255"])     # the NAT still leads to the 2nd
    with pytest.raises(AssertionError, match=r"n'arrive pas sur l'instance s1 \(10\.78\.0\.11\).*10\.78\.0\.12"):
        guests.run_fip_guest(conn, run_fip, NS(private="k"), NS(id="srv-1", name="s1"), None, None,
                             lambda *a: None, since="x")


def test_a_landing_after_a_while_is_accepted(monkeypatch):
    conn = _conn()
    run_fip = network.associate(conn, conn.network.create_ip("ext"), conn.network.portmap["srv-1"])
    _reach(monkeypatch, ["inet 10.78.0.12/24", "inet 10.78.0.11/24"])
    monkeypatch.setattr(guests, "MOVE_GRACE", 5)
    found = guests.run_fip_guest(conn, run_fip, NS(private="k"), NS(id="srv-1", name="s1"), None, None,
                                 lambda *a: None, since="x")
    assert found.answers == ["inet 10.78.0.11/24"]


def test_a_vanished_run_floating_ip_is_an_error_not_a_new_one(monkeypatch):
    conn = _conn()
    gone = NS(id="fip-404", floating_ip_address="203.0.113.99")
    _reach(monkeypatch, ["inet 10.78.0.11/24"])
    with pytest.raises(AssertionError, match="IP flottante du run 203.0.113.99 est introuvable"):
        guests.run_fip_guest(conn, gone, NS(private="k"), NS(id="srv-1", name="s1"), None, None,
                             lambda *a: None, since="x")


def _pair_shared(monkeypatch, conn, book):
    from popek.checks.cloud import shared as mod
    servers = []

    def boot(conn, ledger, what, image, flavor, net, **kwargs):
        ledger.record("server", ledger.name(what))
        servers.append(NS(id=f"srv-{len(servers) + 1}", name=f"s{len(servers) + 1}"))
        return servers[-1]
    for name, value in {"pick_image": lambda conn, avoid=(): "img", "pick_flavor": lambda conn, image: "flv",
                        "boot": boot, "wait_active": lambda conn, s, **kw: s}.items():
        monkeypatch.setattr(mod.compute, name, value)
    shared = Shared(conn, book, key=("priv", "pub"))
    shared._made["routed"] = (mod.Routed(external=NS(id="ext"), network=NS(id="net"), router=NS(id="r")), None)
    shared._made["access"] = (NS(keypair=NS(name="k"), group=NS(name="g")), None)
    return shared


def test_the_run_floating_ip_is_made_once_on_first_use_and_deleted_after_the_servers(monkeypatch):
    conn = _conn()
    book = ledger_mod.Ledger(conn, PREFIX)
    shared = _pair_shared(monkeypatch, conn, book)
    shared.pair()
    assert [e.kind for e in book.entries] == ["floating_ip", "server", "server"]   # its name before the boots
    assert conn.network.fips == {}          # nothing made until a scenario needs it
    first = shared.pair_fip()
    assert shared.pair_fip() is first and len(conn.network.fips) == 1
    assert (first.port_id, first.description) == ("port-1", book.entries[0].name)
    assert book.entries[0].id == first.id   # deleted by id, after the servers (newest first)


def test_the_run_floating_ip_is_kept_by_id_across_workers():
    conn = _conn()
    made = conn.network.create_ip("ext", description="popek-0123abcd-run-fip-7")
    shared = RunShared(conn, "/nonexistent", "popek-0123abcd-run", ("private", "public"))
    shared._fip_name = "popek-0123abcd-run-fip-7"
    rebuilt, error = shared._load("pair-fip", shared._dump("pair-fip", made, None))
    assert error is None and rebuilt.id == made.id
    servers = [NS(id="srv-1"), NS(id="srv-2")]
    conn.compute = NS(get_server=lambda i: NS(id=i))
    other = RunShared(conn, "/nonexistent", "popek-0123abcd-run", ("private", "public"))
    other._load("pair-boot", shared._dump("pair-boot", servers, None))
    assert other._fip_name == "popek-0123abcd-run-fip-7"


def test_a_transient_error_on_the_run_floating_ip_is_not_kept_for_the_run(monkeypatch):
    """hR F3: one 503 on the association made every later dataplane scenario fail ('ressource partagée du
    run « pair-fip » indisponible'). Retried; still failing: that scenario's error, not kept; the next ask
    associates the floating IP already made (no second one)."""
    from popek.checks.cloud import shared as mod
    monkeypatch.setattr(mod, "FIP_PAUSE", 0)
    conn = _conn()
    book = ledger_mod.Ledger(conn, PREFIX)
    shared = _pair_shared(monkeypatch, conn, book)
    update, failures = conn.network.update_ip, [503] * mod.FIP_TRIES

    def flaky(fip, port_id=None):
        if failures:
            raise sdk_exc.HttpException(message="Service Unavailable", http_status=failures.pop())
        return update(fip, port_id=port_id)
    conn.network.update_ip = flaky
    with pytest.raises(mod.RereadFailed, match="IP flottante du run pas encore prête"):
        shared.pair_fip()
    got = shared.pair_fip()
    assert got.port_id == "port-1" and list(conn.network.fips) == [got.id]
    assert book.entries[0].id == got.id
    failures.append(503)                    # one of a moment, within one ask: retried
    shared._made.pop("pair-fip")
    assert shared.pair_fip().port_id == "port-1"


def _quota(limit, used, reserved=0):
    quota = NS(floating_ips={"limit": limit, "used": used, "reserved": reserved})
    return NS(current_project_id="p", network=NS(get_quota=lambda project_id, details=False: quota))


def test_a_quota_that_cannot_cover_the_run_s_floating_ip_and_one_more_is_a_reason(monkeypatch):
    """hR F4: quota 1, the run's floating IP held on the pair: C24 (API), the volume and cloud-init scenarios
    got ÉCHEC '409 Quota exceeded … floatingip' on a healthy cloud; now IGNORÉ with the limit and use."""
    reason = network.floating_ip_quota_reason(_quota(1, 1), needed=1)
    assert "limite 1, utilisées 1" in reason and "1 IP flottante(s) de plus" in reason
    assert network.floating_ip_quota_reason(_quota(3, 2, reserved=1), needed=1) is not None
    assert network.floating_ip_quota_reason(_quota(2, 1), needed=1) is None
    assert network.floating_ip_quota_reason(_quota(-1, 9), needed=1) is None      # unlimited
    assert network.floating_ip_quota_reason(_quota(1, 1)) is None     # the routed step: only a quota of 0
    from popek.steps import cloud_dataplane
    with pytest.raises(pytest.skip.Exception, match="limite 1, utilisées 1"):
        cloud_dataplane.one_more_fip(_quota(1, 1))
    cloud_dataplane.one_more_fip(_quota(5, 1))
