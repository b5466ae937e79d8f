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
IMAGE = types.SimpleNamespace(id="img-1", name="noboot", properties={}, size=1 << 20, disk_format="raw",
                              container_format="bare", os_hash_value="h4sh-img-1", checksum=None)


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
    monkeypatch.setattr(compute, "pick_image", lambda conn, avoid=(): IMAGE)
    monkeypatch.setattr(compute, "images", lambda conn: [IMAGE])      # no other image to try
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
                        lambda conn, avoid=(): types.SimpleNamespace(id="i", name="tiny",
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


def _img(image_id, name, size, properties=None, disk_format="raw", container_format="bare", os_hash_value=None):
    return types.SimpleNamespace(id=image_id, name=name, size=size, properties=properties or {},
                                 disk_format=disk_format, container_format=container_format,
                                 os_hash_value=os_hash_value or f"hash-{image_id}", checksum=None, min_ram=0,
                                 min_disk=0, status="active")


class _PerImage(_Compute):
    """Nova whose probe instance of image I writes `consoles[I]` on its console (one text per image)."""

    def __init__(self, consoles):
        super().__init__([""])
        self.consoles = consoles

    def get_server_console_output(self, server, length=None):
        self.reads += 1
        return {"output": self.consoles[server.image_id]}

    def get_server(self, server_id):
        return types.SimpleNamespace(**{**vars(SERVER), "id": server_id})


@pytest.fixture
def two_images(probe_cloud, monkeypatch):
    """The smallest image (« noboot », 1 MiB) and popek's tiny one (its ready marker), each its own probe."""
    good = _img("img-2", "popek-tiny", 30 << 20, {compute.TINY_MARKER: "POPEK-READY"})
    booted = []

    def boot(conn, led, what, image, flavor, net, **kw):
        booted.append(image.id)
        return types.SimpleNamespace(**{**vars(SERVER), "id": f"srv-{image.id}", "image_id": image.id})

    monkeypatch.setattr(compute, "images", lambda conn: [_img("img-1", "noboot", 1 << 20), good])
    monkeypatch.setattr(compute, "boot", boot)

    def make(consoles):
        cloud = probe_cloud()
        cloud.conn.compute = _PerImage(consoles)
        return cloud
    return make, booted


def test_one_image_that_does_not_boot_is_named_not_the_dataplane(two_images):
    """hR F2: the smallest image (anyone's upload) silent, a different one boots: the image is the finding."""
    make, booted = two_images
    with pytest.raises(probe.UnbootableImage) as found:
        probe._probe_console(make({"img-1": "", "img-2": "Linux version\nPOPEK-READY\n"}), timeout=0.3)
    said = str(found.value)
    assert not said.startswith("plan de données en panne"), said
    assert said.startswith("l'image « noboot » img-1 ne démarre pas sur ce cloud, l'image « popek-tiny » img-2 "
                           "y démarre"), said
    assert "n'a rien écrit sur sa console" in said and "srv-img-1" in said, said
    assert booted == ["img-1", "img-2"]
    assert isinstance(found.value, AssertionError)    # dataplane_reason keeps it for the run (C20's ÉCHEC), see test_pick_image_unbootable


def test_two_different_images_that_do_not_boot_are_a_broken_dataplane(two_images):
    make, booted = two_images
    with pytest.raises(probe.BrokenDataplane) as found:
        probe._probe_console(make({"img-1": "", "img-2": "Linux version\nKernel panic - not syncing: VFS\n"}),
                             timeout=0.3)
    said = str(found.value)
    assert not isinstance(found.value, probe.UnbootableImage)
    assert said.startswith("plan de données en panne : l'instance sonde srv-img-1 (image « noboot » img-1"), said
    assert "une deuxième image ne démarre pas non plus : l'instance sonde srv-img-2 (image « popek-tiny » img-2" \
        in said, said
    assert booted == ["img-1", "img-2", "img-2"]   # the second image's single panic replaced once, as the first's


def test_a_second_image_that_cannot_be_booted_keeps_the_first_finding(two_images, monkeypatch):
    make, booted = two_images
    first_boot = compute.boot

    def boot(conn, led, what, image, flavor, net, **kw):
        if image.id == "img-2":
            raise compute.NoRoom("server create : quota d'instances 1, 1 utilisée")
        return first_boot(conn, led, what, image, flavor, net, **kw)

    monkeypatch.setattr(compute, "boot", boot)
    with pytest.raises(probe.BrokenDataplane, match="plan de données en panne : l'instance sonde srv-img-1 .* une "
                                                    "deuxième image, « popek-tiny » img-2, n'a pas pu être démarrée : "
                                                    "NoRoom : server create : quota"):
        probe._probe_console(make({"img-1": "", "img-2": "POPEK-READY"}), timeout=0.3)


def test_the_second_image_is_a_different_one_popek_knows_boots_first(monkeypatch):
    first = _img("a", "junk", 1 << 20, os_hash_value="h1")
    listed = [first, _img("b", "junk-again", 2 << 20, os_hash_value="h1"),       # the same data: proves nothing
              _img("c", "popek-0123abcd-img-1", 3 << 20),                        # another run's upload
              _img("d", "vmlinuz", 4 << 20, disk_format="aki", container_format="aki"),
              _img("e", "small-iso", 5 << 20, disk_format="iso"),
              _img("f", "debian-13", 400 << 20),
              _img("g", "cirros-0.6.3", 21 << 20)]
    monkeypatch.setattr(compute, "images", lambda conn: listed)
    assert probe.second_image(None, first).id == "g"
    listed.remove(listed[-1])
    assert probe.second_image(None, first).id == "f"       # a disk image before an ISO
    monkeypatch.setattr(compute, "images", lambda conn: listed[:4])
    assert probe.second_image(None, first) is None
