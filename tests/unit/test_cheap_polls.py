"""The waits on a server ask Nova's list without details (`GET /servers?status=S&name=^NAME$`, which nova-api
answers from its database alone) while nothing changes, and read the server itself (`GET /servers/<id>`, which
also costs two Neutron requests) only when its answer matters: wait_active, the SSH watch's ERROR check, the
liveness proof. Fake connections count both kinds of calls."""
from types import SimpleNamespace as NS

import pytest
from openstack import exceptions

from popek.checks.cloud import compute, guest, stuck, traffic, waits


class Compute:
    """A server whose status follows `states` (one per round: each get_server or servers() call of a round
    reads the current one); `listing`: False when the list refuses the filter (an old cloud)."""

    def __init__(self, states, listing=True, others=()):
        self.states, self.listing, self.others = list(states), listing, list(others)
        self.round, self.gets, self.lists = 0, 0, []

    def now(self):
        return self.states[min(self.round, len(self.states) - 1)]

    def servers(self, details=True, status=None, name=None):
        assert details is False
        if not self.listing:
            raise exceptions.BadRequestException("filtre refusé")
        self.lists.append((status, name))
        mine = [NS(id="i", name="popek-r-gw0-shared-1")] if self.now()[0] == status else []
        return iter(mine + [NS(id=o, name="popek-r-gw0-shared-1") for o in self.others])

    def get_server(self, _id):
        self.gets += 1
        status, task = self.now()
        return NS(id="i", name="popek-r-gw0-shared-1", status=status, task_state=task, compute_host="c1",
                  fault={"message": "boom"} if status == "ERROR" else None)


def rounds(compute_):
    """waits.iterate_timeout without the sleeps: each round moves the fake server one state on."""
    def fake(timeout, message, wait):
        for n in range(max(1, int(timeout / wait))):
            compute_.round = n
            yield n
        raise exceptions.ResourceTimeout(message)
    return fake


def server():
    return NS(id="i", name="popek-r-gw0-shared-1", status=None)


@pytest.fixture
def fast(monkeypatch):
    def use(compute_):
        monkeypatch.setattr(waits, "iterate_timeout", rounds(compute_))
        return NS(compute=compute_)
    return use


def test_a_boot_is_followed_on_the_list_and_the_server_read_once_active(fast):
    nova = Compute([("BUILD", "scheduling")] * 3 + [("ACTIVE", None)])
    got = compute.wait_active(fast(nova), server(), timeout=30)
    assert got.status == "ACTIVE"
    assert nova.gets == 1 and [s for s, _ in nova.lists] == ["BUILD"] * 4
    assert nova.lists[0][1] == "^popek\\-r\\-gw0\\-shared\\-1$"


def test_another_server_the_name_filter_lets_through_is_not_taken_for_this_one(fast):
    nova = Compute([("BUILD", None)] + [("ERROR", None)], others=["j"])
    with pytest.raises(AssertionError, match="ERROR : boom"):
        compute.wait_active(fast(nova), server(), timeout=30)
    assert nova.gets == 1 and len(nova.lists) == 2  # round 2: only "j" is listed in BUILD: the server is read


def test_a_cloud_whose_list_refuses_the_filter_is_read_as_before(fast):
    nova = Compute([("BUILD", None)] * 2 + [("ACTIVE", None)], listing=False)
    assert compute.wait_active(fast(nova), server(), timeout=30).status == "ACTIVE"
    assert nova.gets == 3


def test_the_health_records_are_read_on_time_while_the_list_says_build(fast, monkeypatch):
    monkeypatch.setattr(stuck, "GRACE", 0.0)
    dead = NS(compute=NS(services=lambda: [NS(binary="nova-conductor", host="c1", state="down", status="enabled",
                                               updated_at="2026-12-06T09:52:01")]),
              network=NS(agents=lambda: []))
    nova = Compute([("BUILD", "scheduling")])
    with pytest.raises(AssertionError, match="nova-conductor ne donne plus signe de vie"):
        compute.wait_active(fast(nova), server(), timeout=60, admin=dead)
    assert nova.gets == 1 and nova.lists == []


def test_the_timeout_message_reads_the_server_as_it_is_at_the_end(fast):
    nova = Compute([("BUILD", "spawning")])
    with pytest.raises(AssertionError, match=r"statut BUILD, étape spawning"):
        compute.wait_active(fast(nova), server(), timeout=3, admin_reason="pas d'identifiants admin")
    assert nova.gets == 1 and len(nova.lists) == 3


def test_the_watch_reads_the_server_only_when_the_list_shows_it_in_error():
    nova = Compute([("ACTIVE", None)])
    obs_status = guest_status(nova)
    assert obs_status() == ("pas ERROR", "") and nova.gets == 0
    nova.states = [("ERROR", None)]
    assert obs_status() == ("ERROR", "boom") and nova.gets == 1
    nova.listing = False
    assert obs_status() == ("ERROR", "boom") and nova.gets == 2


def guest_status(nova):
    conn = NS(compute=nova, network=NS(ports=lambda device_id: iter([NS(fixed_ips=[], network_id="n")])))
    image = NS(properties={})
    return guest.observer(conn, server(), image, "203.0.113.9", "debian", "k", lambda: "").status


def test_liveness_with_a_heartbeat_asks_active_on_the_list_and_falls_back_to_the_server(monkeypatch):
    beats = iter(range(1, 100))
    monkeypatch.setattr(compute, "console_log", lambda conn, server, length: f"popek-tiny: alive {next(beats)}\n")
    nova = Compute([("ACTIVE", None)])
    alive = traffic.Liveness(NS(compute=nova), server(), "popek-tiny: alive")
    assert alive() is True and nova.gets == 0
    nova.states = [("SHUTOFF", None)]
    assert alive() is False and nova.gets == 0
    nova.listing = False
    assert alive() is False and nova.gets == 1


def test_liveness_without_a_heartbeat_reads_the_exact_status():
    nova = Compute([("ACTIVE", None)])
    assert traffic.Liveness(NS(compute=nova), server(), None)() is True
    assert nova.gets == 1 and nova.lists == []
