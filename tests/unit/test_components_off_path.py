"""F2 (hR, 2026-12-07): what the embedded cloud's pid files say is evidence only for the requests it lies on.
fence-watch (popek's nftables watcher) lies on no API or guest path: dead or frozen, it is named by
`popek cloud status`, never behind an unrelated ÉCHEC. A network's dead DHCP server (dnsmasq) or metadata
proxy (haproxy) explains a guest without lease or metadata (guest.health_word), never a slow BUILD: Nova's boot
waits on neither. Fake state dirs with real (gone) pids; no cloud needed."""
import json
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import components, compute, connection, guest, stuck
from popek.checks.localcloud import fence_watch

NET = "72c004ae-8b44-47b2-900f-f47df56e38b9"
DNSMASQ_DEAD = (f"le serveur DHCP de Neutron (dnsmasq) du réseau {NET} ne tourne plus (son fichier pid reste, sans "
                "processus) : aucun bail sur ce réseau tant que l'agent DHCP ne le relance pas")


def test_a_dead_fence_watch_is_no_stalled_service_but_a_dead_api_service_still_is(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / f"{fence_watch.SERVICE}.pid").write_text(json.dumps({"pid": 999999999, "start": 1}))
    assert components.stalled_services(tmp_path) == []
    (tmp_path / "run" / "nova-api.pid").write_text(json.dumps({"pid": 999999999, "start": 1}))
    assert components.stalled_services(tmp_path) == ["nova-api ne tourne plus (son fichier pid reste, sans processus)"]


@pytest.fixture
def dead_dnsmasq(tmp_path, monkeypatch):
    """An embedded cloud whose only trouble is another network's dead dnsmasq (its pid file left)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "data" / "neutron" / "dhcp" / NET).mkdir(parents=True)
    (tmp_path / "data" / "neutron" / "dhcp" / NET / "pid").write_text("999999999\n")
    monkeypatch.setattr(connection, "EMBEDDED_CONFIGS", {tmp_path / "etc"})
    return tmp_path


class Building:
    """A member connection whose server stays in BUILD (spawning)."""

    def __init__(self):
        self.compute = self

    def servers(self, **_):
        return [NS(id="i")]

    def get_server(self, _id):
        return NS(id="i", name="popek-x-server", status="BUILD", task_state="spawning", compute_host=None)


def test_a_dead_dnsmasq_does_not_end_a_slow_build_but_names_a_guest_without_lease(dead_dnsmasq, monkeypatch):
    monkeypatch.setattr(stuck, "EMBEDDED_GRACE", 0.0)
    assert connection.embedded_trouble() == []
    with pytest.raises(AssertionError) as raised:
        compute.wait_active(Building(), NS(id="i", name="popek-x-server"), timeout=1.5,
                            admin_reason="pas d'identifiants admin")
    said = str(raised.value)
    assert said.startswith("l'instance popek-x-server n'est pas ACTIVE après"), said   # the timeout, not a finding
    assert "dnsmasq" not in said
    assert guest.health_word(None) == f"sur le cloud embarqué : {DNSMASQ_DEAD}"
