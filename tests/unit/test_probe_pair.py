"""The run's own pair judges its image (hI, 2026-12-07): on a cloud reached with admin credentials (the embedded
cloud, any admin cloud) no probe instance boots, so a smallest image that boots nothing (1 MiB of zeros) was
booted as the pair, and every dataplane scenario failed on it (« l'instance ne démarre pas (calcul) : sa console
est vide 90 s après ACTIVE ») while C20 passed. probe.judge_pair decides from the pair's consoles: silent after
PAIR_SILENCE s, a different image is booted beside it; only that image writing its boot while the pair, ACTIVE
before it, still shows none names the pair's image (never a slow boot). Forged console observations; no cloud."""
import types

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import compute, ledger, network, probe

from tests.unit.test_probe_console import _img

NOBOOT, TINY = _img("img-1", "noboot", 1 << 20), _img("img-2", "popek-tiny", 30 << 20,
                                                      {compute.TINY_MARKER: "POPEK-READY"})
KERNEL = "[    0.000000] Linux version 6.12.0 (debian)\n"
READY = "Linux version 6.1\nPOPEK-READY\n"


@pytest.mark.parametrize("before, other, after, outcome", [
    (["", ""], "booted", ["", ""], "unbootable"),                               # conclusive
    (["No bootable device.", ""], "booted", ["No bootable device.", ""], "unbootable"),
    ([KERNEL, ""], "none", [KERNEL, ""], "booted"),                             # one of the pair booted
    (["", ""], "booted", ["", KERNEL], "booted"),                               # slow: wrote meanwhile
    (["", ""], "silent", ["", ""], "undecided"),                                # both images silent: dataplane's
    (["", ""], "none", ["", ""], "undecided"),                                  # no other image
    (["", ""], "reason", ["", ""], "undecided"),                                # other console not readable
    (["", ""], "booted", [], "undecided"),                                      # the pair not read again
])
def test_the_pair_outcome_from_console_observations(before, other, after, outcome):
    assert probe.pair_outcome(before, other, after) == outcome


class _Nova:
    """Nova as judge_pair sees it: the pair's two servers print `pair[id]` until the other image's server is
    created, then `after[id]`; the other's server prints `other`. `status`: the pair's status when re-read."""

    def __init__(self, pair, other, after=None, status="ACTIVE", refuse=None):
        self.pair, self.other, self.after = pair, other, after or pair
        self.status, self.refuse, self.booted = status, refuse, []

    def get_server_console_output(self, server, length=None):
        if self.refuse is not None:
            raise self.refuse
        if server.id == "srv-other":
            return {"output": self.other}
        return {"output": (self.after if self.booted else self.pair)[server.id]}

    def get_server(self, server_id):
        return types.SimpleNamespace(id=server_id, status="ACTIVE" if server_id == "srv-other" else self.status,
                                     host_id="h4sh", compute_host=None, flavor={"original_name": "tiny"})

    def server_actions(self, server):
        return [types.SimpleNamespace(action="create", request_id="req-1", message=None)]

    def get_server_action(self, request_id, server):
        return types.SimpleNamespace(events=[])


PAIR = [types.SimpleNamespace(id=f"srv-{n}", image={"id": "img-1"}) for n in (0, 1)]


@pytest.fixture
def judge(monkeypatch):
    """judge_pair over a fake cloud of two images (noboot, the pair's, and popek-tiny), in 0.3 s windows."""
    monkeypatch.setattr(probe, "CONSOLE_POLL", 0.05)
    monkeypatch.setattr(compute, "images", lambda conn: [NOBOOT, TINY])
    monkeypatch.setattr(compute, "pick_flavor", lambda conn, image: types.SimpleNamespace(name="tiny"))
    monkeypatch.setattr(network, "server_port", lambda conn, server: types.SimpleNamespace(network_id="net-1"))
    monkeypatch.setattr(ledger.Ledger, "cleanup", lambda self: [])
    monkeypatch.setattr(ledger.Ledger, "delete", lambda self, server_id: None)

    def run(nova, images=(NOBOOT, TINY)):
        monkeypatch.setattr(compute, "images", lambda conn: list(images))

        def boot(conn, led, what, image, flavor, net, **kw):
            nova.booted.append(image.id)
            return types.SimpleNamespace(id="srv-other", image={"id": image.id})
        monkeypatch.setattr(compute, "boot", boot)
        conn = types.SimpleNamespace(compute=nova, image=types.SimpleNamespace(get_image=lambda i: NOBOOT),
                                     network=types.SimpleNamespace(get_network=lambda i: types.SimpleNamespace(id=i)))
        return probe.judge_pair(conn, PAIR, "popek-abcd1234-run", silence=0.3, timeout=0.3)
    return run


def test_a_silent_pair_beside_another_image_that_boots_names_its_image(judge):
    nova = _Nova({"srv-0": "", "srv-1": ""}, READY)
    verdict = judge(nova)
    assert verdict.outcome == "unbootable" and verdict.image_id == "img-1"
    assert nova.booted == ["img-2"]
    said = verdict.finding
    for needle in ("l'image « noboot » img-1 ne démarre pas sur ce cloud, l'image « popek-tiny » img-2 y démarre",
                   "ce run ne la démarre plus", "l'instance de la paire du run srv-0", "gabarit tiny",
                   "n'a rien écrit sur sa console", "l'API de console répond",
                   "les 2 instances de la paire du run n'ont écrit aucun démarrage, l'instance de l'image "
                   "« popek-tiny » démarrée après elles sur ce cloud a écrit le sien"):
        assert needle in said, said
    assert verdict.evidence["img-1"].startswith("« noboot » : n'a pas démarré (console muette")
    assert verdict.evidence["img-2"] == "« popek-tiny » : a démarré (sa console a écrit)"


def test_a_pair_that_writes_its_boot_is_judged_at_once(judge):
    nova = _Nova({"srv-0": "", "srv-1": KERNEL}, READY)
    verdict = judge(nova)
    assert verdict.outcome == "booted" and not verdict.image_id and nova.booted == []
    assert verdict.evidence["img-1"].startswith("« noboot » : a démarré (la console de la paire du run a écrit en")


def test_a_slow_boot_is_never_a_finding(judge):
    """The pair writes while the other image boots (a loaded host): its image boots, slowly."""
    nova = _Nova({"srv-0": "", "srv-1": ""}, READY, after={"srv-0": KERNEL, "srv-1": ""})
    verdict = judge(nova)
    assert verdict.outcome == "booted" and not verdict.image_id and nova.booted == ["img-2"]
    assert "a démarré lentement" in verdict.evidence["img-1"]


def test_two_silent_images_are_the_dataplanes_not_an_images(judge):
    verdict = judge(_Nova({"srv-0": "", "srv-1": ""}, ""))
    assert verdict.outcome == "undecided" and not verdict.image_id
    assert verdict.evidence["img-2"].startswith("« popek-tiny » : n'a pas démarré (console muette)")


def test_without_another_image_nothing_is_concluded(judge):
    nova = _Nova({"srv-0": "", "srv-1": ""}, READY)
    verdict = judge(nova, images=(NOBOOT, _img("img-9", "copy", 1 << 20, os_hash_value="hash-img-1")))
    assert verdict.outcome == "undecided" and nova.booted == []     # the same data twice proves nothing
    assert "aucune autre image sur ce cloud pour départager" in verdict.evidence["img-1"]


def test_a_pair_that_left_active_is_not_this_finding(judge):
    verdict = judge(_Nova({"srv-0": "", "srv-1": ""}, READY, status="SHUTOFF"))
    assert verdict.outcome == "undecided" and not verdict.image_id


def test_a_console_nova_does_not_give_decides_nothing(judge):
    refused = sdk_exc.ForbiddenException("403", http_status=403, details="Policy doesn't allow "
                                                                        "os_compute_api:os-console-output")
    nova = _Nova({"srv-0": "", "srv-1": ""}, READY, refuse=refused)
    verdict = judge(nova)
    assert verdict.outcome == "reason" and nova.booted == []
    assert "Nova refuse à ce compte la console des instances (HTTP 403" in verdict.evidence["img-1"]


def test_a_fake_hypervisor_decides_nothing(judge):
    nova = _Nova({"srv-0": probe.FAKE_CONSOLE, "srv-1": probe.FAKE_CONSOLE}, READY)
    verdict = judge(nova)
    assert verdict.outcome == "reason" and nova.booted == []


def test_the_probes_finding_keeps_its_words():
    """unbootable_finding is the probe's UnbootableImage text (test_embedded_refusals asserts it live)."""
    said = probe.unbootable_finding(NOBOOT, TINY, "vu")
    assert said == ("l'image « noboot » img-1 ne démarre pas sur ce cloud, l'image « popek-tiny » img-2 y démarre : "
                    "le plan de données fonctionne, cette image non ; ce run ne la démarre plus (ses scénarios "
                    "prennent une autre image) : retirez-la du projet ou remplacez-la par une image qui démarre "
                    "(constat : vu)")


class _Later(_Nova):
    """F4 (hR's probe): the pair writes its kernel line only on its 2nd read after the other image was booted."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.reads_after = 0

    def get_server_console_output(self, server, length=None):
        if server.id != "srv-other" and self.booted:
            self.reads_after += 1
            return {"output": KERNEL if self.reads_after > 2 else ""}
        return super().get_server_console_output(server, length)


def test_a_pair_writing_just_after_the_other_image_is_slow_not_unbootable(judge):
    """The re-read of the pair after the other image wrote is a watch, not one read: a pair whose first line
    comes a moment after the other's is 'booted' (slowly), never named « ne démarre pas »."""
    nova = _Later({"srv-0": "", "srv-1": ""}, READY)
    verdict = judge(nova)
    assert verdict.outcome == "booted", verdict
    assert "a démarré lentement" in verdict.evidence["img-1"]


@pytest.mark.parametrize("log, silent", [
    ("", True),
    ("SeaBIOS\nBooting from Hard Disk...\nBoot failed: not a bootable disk\n\nNo bootable device.\n", True),
    ("Kernel panic - not syncing: VFS: Unable to mount root fs\n---[ end Kernel panic - not syncing ]---\n", True),
    ("Booting from Hard Disk...\nBoot failed: not a bootable disk\nBooting from Floppy...\n" + KERNEL, False),
    (KERNEL, False),
])
def test_a_console_shows_no_boot_only_when_it_ends_on_a_failure(log, silent):
    assert probe.did_not_boot(log) is silent
