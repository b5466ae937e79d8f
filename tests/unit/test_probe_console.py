"""The dataplane probe's console, decided (hV, 2026-12-07): a guest that is ACTIVE and writes nothing, or
writes a boot failure, is a broken cloud (BrokenDataplane: every dataplane scenario ÉCHEC with the evidence,
found once per session), no longer « l'instance sonde n'a rien écrit sur sa console : impossible d'établir un
plan de données » (IGNORÉ); a console Nova does not give (501, 403, 404 ConsoleNotAvailable) stays a missing
capability (IGNORÉ with Nova's answer). Forged observations: a fake connection answers as Nova would."""
import types

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import compute, ledger, needs, network, probe

SERVER = types.SimpleNamespace(id="srv-1", name="popek-abcd1234-probe", status="ACTIVE", host_id="h4sh",
                               compute_host=None)
IMAGE = types.SimpleNamespace(id="img-1", name="noboot", properties={})


class _Compute:
    """Nova as the probe sees it: each console read gives the next of `answers` (a text or an exception)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.reads = 0

    def get_server_console_output(self, server, length=None):
        self.reads += 1
        answer = self.answers[min(self.reads, len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return {"output": answer}

    def get_server(self, server_id):
        return SERVER

    def server_actions(self, server):
        return [types.SimpleNamespace(action="create", request_id="req-1", message=None)]

    def get_server_action(self, request_id, server):
        return types.SimpleNamespace(events=[types.SimpleNamespace(event="compute__do_build_and_run_instance",
                                                                   result="Success")])


@pytest.fixture
def probe_cloud(monkeypatch):
    """A member's cloud whose probe boots at once; its console answers `answers` (set by the test)."""
    monkeypatch.setattr(compute, "pick_image", lambda conn: IMAGE)
    monkeypatch.setattr(compute, "pick_flavor", lambda conn, image: types.SimpleNamespace(name="m1.tiny"))
    monkeypatch.setattr(compute, "project_network", lambda conn, led: object())
    monkeypatch.setattr(compute, "boot", lambda *a, **k: SERVER)
    monkeypatch.setattr(network, "quota_room", lambda conn: __import__("contextlib").nullcontext())
    monkeypatch.setattr(ledger.Ledger, "cleanup", lambda self: None)
    monkeypatch.setattr(ledger.Ledger, "delete", lambda self, server_id: None)
    monkeypatch.setattr(probe, "CONSOLE_POLL", 0.05, raising=False)

    def make(*answers):
        conn = types.SimpleNamespace(compute=_Compute(answers))
        return types.SimpleNamespace(conn=conn, facts={"prefix": "popek-abcd1234"}, admin=None, roles=["member"])
    return make


def test_an_active_guest_with_an_empty_console_is_a_broken_dataplane(probe_cloud):
    cloud = probe_cloud("")
    with pytest.raises(probe.BrokenDataplane) as found:
        probe._probe_console(cloud, timeout=0.3)
    said = str(found.value)
    for needle in ("plan de données en panne", "srv-1", "« noboot » img-1", "m1.tiny", "hostId h4sh",
                   "n'a rien écrit sur sa console", "l'API de console répond",
                   "actions Nova : create (Success : compute__do_build_and_run_instance)"):
        assert needle in said, said


def test_a_kernel_panic_twice_is_a_broken_dataplane_quoting_it(probe_cloud, monkeypatch):
    booted = []
    monkeypatch.setattr(compute, "boot", lambda *a, **k: booted.append(1) or SERVER)
    log = "[    0.0] Linux version 6.12\n[    1.2] Kernel panic - not syncing: VFS: Unable to mount root fs\n"
    with pytest.raises(probe.BrokenDataplane, match="sa console dit que l'invité n'a pas démarré : « Kernel panic - "
                                                    "not syncing: VFS.*la première instance sonde avait déjà paniqué"):
        probe._probe_console(probe_cloud(log), timeout=5)
    assert len(booted) == 2


def test_a_single_kernel_panic_is_replaced_once_like_the_scenarios_guests(probe_cloud, monkeypatch):
    """A Debian guest under QEMU TCG panics 2 boots in 64 (guest.py): one panic is not conclusive."""
    booted = []
    monkeypatch.setattr(compute, "boot", lambda *a, **k: booted.append(1) or SERVER)
    cloud = probe_cloud("Linux version\nKernel panic - not syncing: Fatal exception\n", "Linux version 6.12\n")
    assert probe._probe_console(cloud, timeout=5) is None
    assert len(booted) == 2


def test_a_firmware_with_nothing_to_boot_is_a_broken_dataplane_at_once(probe_cloud, monkeypatch):
    booted = []
    monkeypatch.setattr(compute, "boot", lambda *a, **k: booted.append(1) or SERVER)
    with pytest.raises(probe.BrokenDataplane, match="« No bootable device."):
        probe._probe_console(probe_cloud("SeaBIOS\nBooting from Hard Disk...\nNo bootable device.\n"), timeout=5)
    assert len(booted) == 1


def test_a_guest_that_writes_its_boot_is_a_dataplane(probe_cloud):
    cloud = probe_cloud("", "[    0.0] Linux version 6.12 (debian)\n")
    assert probe._probe_console(cloud, timeout=10) is None


def test_a_guest_with_a_ready_marker_is_waited_for_until_it_or_a_failure(probe_cloud, monkeypatch):
    monkeypatch.setattr(compute, "pick_image",
                        lambda conn: types.SimpleNamespace(id="i", name="tiny",
                                                           properties={compute.TINY_MARKER: "POPEK-READY"}))
    cloud = probe_cloud("Linux version\n", "Linux version\nRunning /init\nKernel panic - not syncing: Attempted "
                                           "to kill init!\n")
    with pytest.raises(probe.BrokenDataplane, match="Attempted to kill init"):
        probe._probe_console(cloud, timeout=10)


def test_the_fake_driver_stays_a_reason(probe_cloud):
    assert "hyperviseur fake" in probe._probe_console(probe_cloud(probe.FAKE_CONSOLE), timeout=5)


@pytest.mark.parametrize("exc, words", [
    (sdk_exc.HttpException("501", http_status=501, details="Action not supported"),
     "la console des instances n'est pas implémentée par ce cloud (HTTP 501 : Action not supported)"),
    (sdk_exc.ForbiddenException("403", http_status=403,
                                details="Policy doesn't allow os_compute_api:os-console-output to be performed."),
     "Nova refuse à ce compte la console des instances (HTTP 403 : Policy doesn't allow "
     "os_compute_api:os-console-output"),
    (sdk_exc.NotFoundException("404", http_status=404, details="Guest does not have a console available."),
     "Nova n'a pas de console pour l'instance sonde (HTTP 404 : Guest does not have a console available.)"),
])
def test_a_console_nova_does_not_give_is_a_missing_capability(probe_cloud, exc, words):
    said = probe._probe_console(probe_cloud(exc), timeout=5)
    assert said == f"plan de données impossible à établir : {words}" or said.startswith(
        f"plan de données impossible à établir : {words}"), said


def test_a_console_not_ready_then_written_is_a_dataplane(probe_cloud):
    not_ready = sdk_exc.ConflictException("409", http_status=409, details="Instance srv-1 is not ready.")
    assert probe._probe_console(probe_cloud(not_ready, "Linux version\n"), timeout=10) is None


def test_a_console_never_ready_is_a_broken_dataplane_with_novas_409(probe_cloud):
    not_ready = sdk_exc.ConflictException("409", http_status=409, details="Instance srv-1 is not ready.")
    with pytest.raises(probe.BrokenDataplane, match="HTTP 409 : Instance srv-1 is not ready"):
        probe._probe_console(probe_cloud(not_ready), timeout=0.3)


def test_a_vanished_instance_or_a_5xx_is_no_capability_question(probe_cloud):
    gone = sdk_exc.NotFoundException("404", http_status=404, details="Instance srv-1 could not be found.")
    with pytest.raises(sdk_exc.NotFoundException):
        probe._probe_console(probe_cloud(gone), timeout=5)
    with pytest.raises(sdk_exc.HttpException):
        probe._probe_console(probe_cloud(sdk_exc.HttpException("500", http_status=500)), timeout=5)


def test_the_need_fails_every_dataplane_scenario_with_one_probe(monkeypatch):
    """Found once per session (one probe), raised for each scenario: an AssertionError, the scenario's ÉCHEC."""
    calls = []

    def broken(cloud):
        calls.append(1)
        raise probe.BrokenDataplane("plan de données en panne : l'instance sonde srv-1 … console vide")

    monkeypatch.setattr(probe, "dataplane_reason", broken)
    cloud = types.SimpleNamespace(facts={}, roles=["member"])
    for _ in range(3):
        with pytest.raises(AssertionError, match="plan de données en panne : l'instance sonde srv-1"):
            needs.need_dataplane(cloud)
    assert calls == [1]


def test_a_broken_need_fails_the_scenario_unless_another_need_is_missing(monkeypatch):
    """plugin.skip_unmet_needs: a need that raises (found broken) fails the scenario; a need of it that is
    truly unmet (a cloud without Cinder) skips it first, whatever their order."""
    from popek import plugin
    from popek.checks import needs as registry

    monkeypatch.setitem(registry.REQUIREMENTS, "dataplane",
                        lambda cloud: (_ for _ in ()).throw(probe.BrokenDataplane("en panne")))
    monkeypatch.setitem(registry.REQUIREMENTS, "volume", lambda cloud: None)

    class Request:
        def __init__(self, *names):
            self.node = types.SimpleNamespace(iter_markers=lambda name: [types.SimpleNamespace(args=(n,))
                                                                         for n in names])

        def getfixturevalue(self, name):
            return object()

    with pytest.raises(probe.BrokenDataplane, match="en panne"):
        plugin.skip_unmet_needs(Request("dataplane", "volume"))
    monkeypatch.setitem(registry.REQUIREMENTS, "volume", lambda cloud: "pas de Cinder")
    with pytest.raises(pytest.skip.Exception, match="volume : pas de Cinder"):
        plugin.skip_unmet_needs(Request("dataplane", "volume"))


@pytest.mark.parametrize("details", [
    "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr>"
    "<center>nginx</center></body></html>",
    "",
    "The resource could not be found.",
])
def test_a_console_404_in_anyone_elses_words_is_no_capability(details):
    """hR F4: a 404 is « no console » only in Nova's ConsoleNotAvailable words; a proxy's page, an empty body (a
    mis-routed prefix, a broken nova-api route) must not make every dataplane scenario IGNORÉ."""
    assert probe.console_refusal(sdk_exc.NotFoundException("404", http_status=404, details=details)) is None


def test_a_console_404_in_novas_words_is_no_console():
    said = probe.console_refusal(sdk_exc.NotFoundException(
        "404", http_status=404, details="Guest does not have a console available."))
    assert said == "Nova n'a pas de console pour l'instance sonde (HTTP 404 : Guest does not have a console available.)"
