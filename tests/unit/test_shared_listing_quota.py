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
