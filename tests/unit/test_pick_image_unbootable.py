"""An image the dataplane probe found not booting (probe.UnbootableImage: ACTIVE, silent console, while a second
image boots) is passed over by the run's image choices (compute.pick_image's avoid), so the scenarios boot the
image that boots; the finding stays C20's ÉCHEC (« des modèles prêts à démarrer »). Before, the probe's finding
was every dataplane scenario's ÉCHEC and every scenario still booted the broken image (the smallest). Forged
images (openstacksdk's fields), a fake cloud for the probe; no cloud."""
import types

import pytest

from popek.checks.cloud import compute, needs, probe
from popek.steps import cloud_common, cloud_compute

from tests.unit import test_probe_console as console
from tests.unit.test_probe_console import _img
from tests.unit.test_shared import _Cloud, _patched

probe_cloud, two_images = console.probe_cloud, console.two_images     # the probe's fixtures, used here

NOBOOT, TINY, DEBIAN = _img("img-1", "noboot", 1 << 20), _img("img-2", "popek-tiny", 30 << 20,
                                                              {compute.TINY_MARKER: "POPEK-READY"}), \
    _img("img-3", "Debian 13", 400 << 20)
GLANCE = types.SimpleNamespace(image=types.SimpleNamespace(images=lambda: [NOBOOT, TINY, DEBIAN]))


def test_pick_image_passes_over_an_image_the_run_found_not_booting():
    assert compute.pick_image(GLANCE).id == "img-1"                    # the smallest, as before
    assert compute.pick_image(GLANCE, avoid={"img-1": "…"}).id == "img-2"
    assert compute.pick_image(GLANCE, cloud_init=True, avoid={"img-1"}).id == "img-3"


def test_pick_image_still_boots_an_avoided_image_when_nothing_else_fits():
    """Never IGNORÉ « rien à démarrer » for an image that exists: its scenario fails on it, as before."""
    only = types.SimpleNamespace(image=types.SimpleNamespace(images=lambda: [NOBOOT]))
    assert compute.pick_image(only, avoid={"img-1"}).id == "img-1"


def _cloud(folder=None):
    facts = {"prefix": "popek-abcd1234-gw0"}
    if folder:
        facts["run_folder"] = str(folder)
    return types.SimpleNamespace(facts=facts, admin=None, roles=["member"])


def test_the_probes_finding_is_the_runs_not_the_dataplanes(two_images, monkeypatch, tmp_path):
    """dataplane_reason: the second image booted, so the dataplane is there (None, no BrokenDataplane for the
    dataplane scenarios); the image is remembered for every worker of the run (the run's folder)."""
    make, booted = two_images
    cloud = make({"img-1": "", "img-2": "Linux version\nPOPEK-READY\n"})
    cloud.facts["run_folder"] = str(tmp_path)
    monkeypatch.setattr("popek.checks.cloud.network.external_network", lambda conn: object())
    monkeypatch.setattr("popek.checks.cloud.network.floating_ip_quota_reason", lambda conn: None)
    quick = probe._probe_console
    monkeypatch.setattr(probe, "_probe_console", lambda c: quick(c, timeout=0.3))
    assert needs.need_dataplane(cloud) is None                      # no ÉCHEC for the dataplane scenarios
    assert list(probe.unbootable(cloud)) == ["img-1"]
    other_worker = _cloud(tmp_path)
    found = probe.unbootable(other_worker)
    assert list(found) == ["img-1"] and "l'image « noboot » img-1 ne démarre pas sur ce cloud" in found["img-1"]
    assert "ce run ne la démarre plus" in found["img-1"]


def test_another_workers_finding_makes_this_workers_probe_boot_the_other_image(two_images, monkeypatch, tmp_path):
    make, booted = two_images
    monkeypatch.setattr(compute, "pick_image", PICK_IMAGE)          # the real choice, over the fixture's images
    probe.remember_unbootable(_cloud(tmp_path), "img-1", "l'image « noboot » img-1 ne démarre pas sur ce cloud")
    cloud = make({"img-1": "", "img-2": "Linux version\nPOPEK-READY\n"})
    cloud.facts["run_folder"] = str(tmp_path)
    assert probe._probe_console(cloud, timeout=0.3) is None
    assert booted == ["img-2"]                                      # not the image already found not booting


PICK_IMAGE = compute.pick_image


def test_the_runs_pair_boots_the_image_that_boots(monkeypatch):
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    picked = []
    monkeypatch.setattr(compute, "pick_image", lambda conn, avoid=(): picked.append(dict(avoid)) or "img")
    monkeypatch.setattr("popek.checks.cloud.shared.compute.quota_reason", lambda *a, **k: None)
    shared.avoid = lambda: {"img-1": "ne démarre pas"}
    assert shared.pair() == ["server-0", "server-1"]
    assert picked == [{"img-1": "ne démarre pas"}]


class _Request:
    """pytest's request as C20's step uses it: the run's `shared` (a fake pair whose judgement is `judged`)."""

    def __init__(self, judged=None, error=None, outcome="booted"):
        self.asked = []
        self.shared = types.SimpleNamespace(judged=judged or {}, judged_outcome=outcome if judged else "",
                                            pair=self._pair)
        self.error = error

    def _pair(self):
        self.asked.append("pair")
        if self.error:
            raise self.error
        return ["server-0", "server-1"]

    def getfixturevalue(self, name):
        assert name == "shared"
        return self.shared


def test_c20_fails_naming_the_image_the_probe_found_not_booting(monkeypatch, tmp_path):
    asked = []
    cloud = _cloud(tmp_path)
    cloud.facts["probed_images"] = {"img-1": "« noboot » : n'a pas démarré (console muette)"}
    monkeypatch.setattr(needs, "need_dataplane", lambda c: asked.append(c) or None)
    evidence = types.SimpleNamespace(json=lambda *a: None)
    request = _Request()
    cloud_compute.images_boot(cloud, request, evidence)             # nothing found: nothing to say
    probe.remember_unbootable(cloud, "img-1", "l'image « noboot » img-1 ne démarre pas sur ce cloud")
    with pytest.raises(AssertionError, match="image active qui ne démarre pas sur ce cloud : l'image « noboot » img-1"):
        cloud_compute.images_boot(cloud, request, evidence)
    assert asked == [cloud, cloud]                                  # the probe asked first (once per session)
    assert request.asked == []                                      # the probe booted: the pair not asked for


def test_a_broken_dataplane_is_not_c20s(monkeypatch):
    def broken(cloud):
        raise AssertionError("plan de données en panne : …")
    monkeypatch.setattr(needs, "need_dataplane", broken)
    assert cloud_common.unbootable_images(_cloud()) == {}


def test_the_cloud_init_scenario_boots_another_image_than_the_one_found_not_booting(monkeypatch, tmp_path):
    """The 1 MiB image that does not boot is neither popek-tiny nor a CirrOS: pick_image(cloud_init=True) took it
    as the smallest image with cloud-init (C19's scenario then waited 600 s for cloud-init on a silent guest)."""
    import contextlib

    from popek.steps import cloud_dataplane

    cloud = _cloud(tmp_path)
    probe.remember_unbootable(cloud, "img-1", "l'image « noboot » img-1 ne démarre pas sur ce cloud")
    monkeypatch.setattr(needs, "need_dataplane", lambda c: None)
    monkeypatch.setattr(compute, "images", lambda conn: [NOBOOT, TINY, DEBIAN])
    monkeypatch.setattr(compute, "pick_flavor", lambda conn, image, *a: "flv")
    monkeypatch.setattr(cloud_dataplane, "room", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(compute, "server_needs", lambda flavor: {})
    booted = []

    def boot_reachable(conn, ledger, routed, key, group, attach, image, flavor, **kw):
        booted.append(image.id)
        raise StopIteration
    monkeypatch.setattr(cloud_dataplane.guests, "boot_reachable", boot_reachable)
    with pytest.raises(StopIteration):
        cloud_dataplane.cloud_init_guest(cloud, None, None, None, types.SimpleNamespace(group=None),
                                             types.SimpleNamespace(figure=lambda *a: None))
    assert booted == ["img-3"]


def _evidence():
    said = {}
    return said, types.SimpleNamespace(json=lambda key, value: said.update({key: value}))


def test_c20_says_not_checked_when_no_instance_was_booted_for_it(monkeypatch):
    """hR F2: with admin credentials (the embedded cloud, any admin cloud) the hypervisors' state answers the
    dataplane question and no probe instance boots: C20's evidence said « aucune » image not booting, as if
    images had been booted and found fine. Without a dataplane nothing is booted for it: it says so, and why."""
    monkeypatch.setattr(needs, "need_dataplane", lambda c: c.facts.get("dataplane"))
    cloud = _cloud()
    cloud.facts["dataplane"] = "aucun réseau externe"
    said, evidence = _evidence()
    request = _Request()
    cloud_compute.images_boot(cloud, request, evidence)
    assert "aucune" not in said.values(), said
    assert said["images démarrées par la sonde du plan de données"] == \
        "non vérifié : aucune instance sonde (aucun réseau externe)", said
    assert said["images démarrées par la paire d'instances du run"] == "non vérifié : aucun réseau externe", said
    assert said["images qui ne démarrent pas"].startswith("non vérifié"), said
    assert request.asked == []                                      # no pair booted for nothing


def test_c20_on_an_admin_cloud_asks_the_runs_pair(monkeypatch, tmp_path):
    """The embedded cloud and every admin cloud: no probe instance; the run's pair is C20's evidence (hI)."""
    monkeypatch.setattr(needs, "need_dataplane", lambda c: None)
    cloud = _cloud(tmp_path)
    cloud.admin = object()
    said, evidence = _evidence()
    request = _Request(judged={"img-2": "« popek-tiny » : a démarré (la console de la paire du run a écrit en 3 s)"})
    cloud_compute.images_boot(cloud, request, evidence)             # RÉUSSI: the pair's image booted
    assert request.asked == ["pair"]
    assert said["images démarrées par la sonde du plan de données"] == \
        "non vérifié : aucune instance sonde (identifiants admin : l'état des hyperviseurs a répondu)", said
    assert said["images démarrées par la paire d'instances du run"] == request.shared.judged, said
    assert said["images qui ne démarrent pas"] == "aucune", said
    # the pair's judge (another worker's, maybe) remembered the image for the run: C20 names it
    probe.remember_unbootable(_cloud(tmp_path), "img-1", "l'image « noboot » img-1 ne démarre pas sur ce cloud, "
                                                        "l'image « popek-tiny » img-2 y démarre")
    with pytest.raises(AssertionError, match="image active qui ne démarre pas sur ce cloud : l'image « noboot » img-1 "
                                             "ne démarre pas sur ce cloud, l'image « popek-tiny » img-2 y démarre"):
        cloud_compute.images_boot(cloud, request, evidence)


def test_c20_is_not_failed_by_a_pair_that_could_not_be_made(monkeypatch):
    """The pair's own failure (a dead agent, the project's quota) is its scenarios' verdict, not the images'."""
    from popek.checks.cloud import shared as shared_mod

    monkeypatch.setattr(needs, "need_dataplane", lambda c: None)
    for error in (shared_mod.Unavailable("pair", "l'agent neutron-openvswitch-agent ne donne plus signe de vie"),
                  compute.NoRoom("quota d'instances : 10 sur 10")):
        said, evidence = _evidence()
        cloud_compute.images_boot(_cloud(), _Request(error=error), evidence)
        assert said["images démarrées par la paire d'instances du run"].startswith(
            "non vérifié : la paire d'instances du run n'a pas démarré"), said
        assert said["images qui ne démarrent pas"].startswith("non vérifié"), said


def test_c20_names_the_images_the_probe_booted(two_images, monkeypatch, tmp_path):
    """The probe's boots are C20's evidence: the image that stayed silent and the one that booted."""
    make, booted = two_images
    cloud = make({"img-1": "", "img-2": "Linux version\nPOPEK-READY\n"})
    cloud.facts["run_folder"] = str(tmp_path)
    monkeypatch.setattr(needs, "need_dataplane", lambda c: probe.dataplane_reason(c))
    monkeypatch.setattr(probe, "_probe_console", lambda c, **kw: PROBE_CONSOLE(c, timeout=0.3))
    monkeypatch.setattr("popek.checks.cloud.network.external_network", lambda conn: object())
    monkeypatch.setattr("popek.checks.cloud.network.floating_ip_quota_reason", lambda conn: None)
    said, evidence = _evidence()
    with pytest.raises(AssertionError, match="l'image « noboot » img-1 ne démarre pas sur ce cloud"):
        cloud_compute.images_boot(cloud, _Request(), evidence)
    assert said["images démarrées par la sonde du plan de données"] == {
        "img-1": "« noboot » : n'a pas démarré (console muette)",
        "img-2": "« popek-tiny » : a démarré (sa console a écrit)"}, said


def test_a_probe_that_boots_records_its_image(probe_cloud):
    cloud = probe_cloud("", "[    0.0] Linux version 6.12 (debian)\n")
    assert probe._probe_console(cloud, timeout=10) is None
    assert cloud.facts["probed_images"] == {"img-1": "« noboot » : a démarré (sa console a écrit)"}


PROBE_CONSOLE = probe._probe_console


def test_the_second_image_is_not_one_a_plain_x86_host_cannot_boot(monkeypatch):
    """F1: the tie-breaker of the probe and of judge_pair passes over an aarch64 CirrOS (its « No valid host »
    would decide nothing, or blame the dataplane) for an x86 CirrOS; a special image only when nothing else."""
    plain = _img("p", "debian-plain", 300 << 20)
    arm = _img("a", "cirros-aarch64", 15 << 20, {"architecture": "aarch64"})
    x86 = _img("x", "cirros-x86_64", 20 << 20)
    listed = [plain, arm, x86]
    monkeypatch.setattr(compute, "images", lambda conn: listed)
    assert probe.second_image(None, plain).id == "x"
    listed.remove(x86)
    assert probe.second_image(None, plain).id == "a"


@pytest.mark.parametrize("outcome", ["undecided", "reason", "error", ""])
def test_c20_says_not_checked_when_the_pair_decided_nothing(monkeypatch, tmp_path, outcome):
    """F3: the pair's judgement is a dict of evidence for every outcome; only 'booted'/'unbootable' checked the
    images. An undecided pair (no other image, it could not boot), a console not read, a judgement that raised:
    « non vérifié », never « aucune »."""
    monkeypatch.setattr(needs, "need_dataplane", lambda c: None)
    cloud = _cloud(tmp_path)
    cloud.admin = object()
    said, evidence = _evidence()
    request = _Request(judged={"img-1": "« noboot » : la paire du run n'a rien démarré en 60 s (console muette) ; "
                                        "aucune autre image sur ce cloud pour départager"}, outcome=outcome)
    cloud_compute.images_boot(cloud, request, evidence)
    assert said["images démarrées par la paire d'instances du run"] == request.shared.judged, said
    assert said["images qui ne démarrent pas"].startswith("non vérifié : la paire d'instances du run n'a pas "
                                                           "départagé"), said
