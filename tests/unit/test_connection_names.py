"""The course's names and a cloud's (checks/cloud/names.py, popek.yaml, --flavor/--image/--net), and the
`openstack` client's --os-* options on popek's command line (pure logic and the real CLI, no cloud)."""
import os
import types

import pytest

from helpers import run_popek
from popek.checks.cloud import names
from popek.cli import split_os_options


class Conn:
    """A cloud whose flavors, images and networks are the given names (images active unless `status` says
    otherwise, by name or id; a name given twice is borne by two resources: openstacksdk's find_* then raises DuplicateResource,
    as it does on a cloud (Resource._get_one_match))."""

    def __init__(self, flavors=(), images=(), networks=(), status=None):
        from openstack import exceptions

        def pool(names, kind):
            made = [types.SimpleNamespace(name=n, id=f"{kind}-{i}",
                                          status=(status or {}).get(f"{kind}-{i}", (status or {}).get(n, "active")))
                    for i, n in enumerate(names)]

            def find(name_or_id, ignore_missing=True):
                found = [r for r in made if name_or_id in (r.id, r.name)]
                if len(found) > 1:
                    raise exceptions.DuplicateResource(f"More than one {kind} exists with the name '{name_or_id}'.")
                return found[0] if found else None
            return find, lambda name=None: [r for r in made if name in (None, r.name)]
        find_flavor, all_flavors = pool(flavors, "flavor")
        find_image, list_images = pool(images, "image")
        find_network, list_networks = pool(networks, "network")
        self.compute = types.SimpleNamespace(find_flavor=find_flavor, flavors=all_flavors)
        self.network = types.SimpleNamespace(find_network=find_network, networks=list_networks)
        self.image = types.SimpleNamespace(find_image=find_image, images=list_images)


REAL = Conn(flavors=["m1.small"], images=["debian-13-genericcloud-amd64"], networks=["ext-net"])


def test_the_course_names_on_the_course_cloud_need_no_mapping():
    chosen, missing = names.resolve(Conn(["small"], ["Debian 13"], ["public"]), {})
    assert missing == [] and names.server_create_args(chosen) == (
        "server", "create", "--flavor", "small", "--image", "Debian 13", "--net", "public")


def test_a_real_clouds_names_without_mapping_skip_with_the_option_to_give():
    _, missing = names.resolve(REAL, {})
    assert missing == ["le cloud n'a pas de gabarit « small » (donnez --flavor …)",
                       "le cloud n'a pas d'image « Debian 13 » (donnez --image …)",
                       "le cloud n'a pas de réseau « public » (donnez --net …)"]


def test_a_mapping_given_once_makes_the_course_command_run_with_the_clouds_names():
    mapping = names.parse({"course-names": {"small": "m1.small", "Debian 13": "debian-13-genericcloud-amd64",
                                            "public": "ext-net"}}, "popek.yaml")
    chosen, missing = names.resolve(REAL, mapping)
    assert missing == [] and chosen == {"flavor": "m1.small", "image": "debian-13-genericcloud-amd64", "network": "ext-net"}
    assert names.from_options(image="debian-13-genericcloud-amd64") == {"Debian 13": "debian-13-genericcloud-amd64"}


def test_a_mapped_name_the_cloud_lacks_says_both_names():
    _, missing = names.resolve(REAL, {"Debian 13": "debian-12"})
    assert "le cloud n'a pas d'image « debian-12 », nom donné pour « Debian 13 » (donnez --image …)" in missing


def test_a_name_two_resources_bear_is_a_reason_with_their_ids_not_a_silent_pick():
    """Two images « Debian 13 — cours » (one active, one queued) and two networks « réseau privé »: the
    `openstack` client refuses both names (DuplicateResource); the scenario is skipped naming the ids to give,
    where it was one image picked silently (then the client's refusal: ÉCHEC) or DuplicateResource raised
    from the step (broken), measured by hA6 on the embedded cloud 2026-12-07 19:26."""
    cloud = Conn(["m1.petit (1 vCPU)"], ["Debian 13 — cours", "Debian 13 — cours"], ["réseau privé", "réseau privé"],
                 status={"image-1": "queued"})
    chosen, missing = names.resolve(cloud, names.from_options("m1.petit (1 vCPU)", "Debian 13 — cours", "réseau privé"))
    assert chosen == {"flavor": "m1.petit (1 vCPU)", "image": "Debian 13 — cours", "network": "réseau privé"}
    assert missing == [
        "le cloud a plusieurs images « Debian 13 — cours », nom donné pour « Debian 13 » (image-0, image-1) : "
        "le client openstack refuse un nom ambigu (donnez --image <id>)",
        "le cloud a plusieurs réseaux « réseau privé », nom donné pour « public » (network-0, network-1) : "
        "le client openstack refuse un nom ambigu (donnez --net <id>)"]
    _, missing = names.resolve(cloud, {"small": "m1.petit (1 vCPU)", "Debian 13": "image-0", "public": "network-1"})
    assert missing == [], "an id given instead of the ambiguous name is what the client takes"


def test_an_ambiguous_name_whose_resources_cannot_be_listed_is_still_a_reason():
    cloud = Conn(["small"], ["Debian 13", "Debian 13"], ["public"])

    def refused(name=None):
        raise RuntimeError("HTTP 403")
    cloud.image.images = refused
    assert names.resolve(cloud, {})[1] == [
        "le cloud a plusieurs images « Debian 13 » : le client openstack refuse un nom ambigu (donnez --image <id>)"]


def test_an_image_not_active_is_named_with_its_status():
    """A deactivated image (an operator's retired one) is found by the client, and refused by Nova: the
    reason says so, not « le cloud n'a pas d'image »."""
    cloud = Conn(["small"], ["Debian 13"], ["public"], status={"Debian 13": "deactivated"})
    assert names.resolve(cloud, {})[1] == [
        "l'image « Debian 13 » est deactivated, pas active : Nova ne démarre pas d'instance dessus (donnez --image …)"]


@pytest.mark.parametrize("data, expected", [
    ([1, 2], "il faut des clés"),
    ({"course-names": ["small"]}, "doit associer"),
    ({"course-names": {"tiny": "m1.tiny"}}, "« tiny » n'est pas un nom du cours"),
    ({"course-names": {"small": ""}}, "vide ou invalide"),
])
def test_a_malformed_mapping_is_refused_with_the_file_named(data, expected):
    with pytest.raises(ValueError) as exc:
        names.parse(data, "popek.yaml")
    assert expected in str(exc.value) and "popek.yaml" in str(exc.value)


def test_os_options_are_split_from_popeks_own():
    rest, given = split_os_options(["run", "cloud", "--os-cloud", "x", "--os-password", "pw", "--os-region-name=R", "-k", "y"])
    assert rest == ["run", "cloud", "--os-cloud", "x", "-k", "y"]
    assert given == ["--os-password", "pw", "--os-region-name=R"]


@pytest.fixture
def isolated(tmp_path):
    env = {k: "" for k in os.environ if k.startswith("OS_")}
    env.update(HOME=str(tmp_path), POPEK_HOME=str(tmp_path / "popek"))
    return tmp_path, env


def test_an_unknown_os_option_is_one_line(isolated):
    tmp, env = isolated
    proc = run_popek("run", "cloud", "--os-cloud", "x", "--os-bogus", "1", "--results", str(tmp / "r"), cwd=tmp, env=env)
    assert proc.returncode != 0 and "--os-bogus" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_os_options_reach_the_loader_like_their_variables(isolated):
    """--os-auth-url & co. without a clouds.yaml: an openrc given on the command line, as for `openstack`."""
    tmp, env = isolated
    proc = run_popek("cloud", "sweep", "--dry-run", "--os-auth-url", "http://127.0.0.1:9/v3", "--os-username", "u",
                     "--os-password", "pw-cli-5150", "--os-project-name", "p", cwd=tmp, env=env)
    assert proc.returncode != 0 and "127.0.0.1:9" in proc.stderr and "injoignable" in proc.stderr, proc.stderr
    assert "pw-cli-5150" not in proc.stdout + proc.stderr


def test_a_malformed_popek_yaml_is_one_line(isolated):
    tmp, env = isolated
    (tmp / "popek.yaml").write_text("course-names:\n  tiny: m1.tiny\n")
    proc = run_popek("run", "cloud", "--results", str(tmp / "r"), "--no-cloud-up", cwd=tmp, env=env)
    assert proc.returncode != 0 and "« tiny » n'est pas un nom du cours" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_service_disabled_or_absent_is_a_true_skip_reason():
    from popek.checks.cloud import needs
    from popek.checks.cloud.connection import Choice

    def cloud(enabled, url):
        conn = types.SimpleNamespace(config=types.SimpleNamespace(has_service=lambda t: enabled),
                                     endpoint_for=lambda t: url)
        return types.SimpleNamespace(conn=conn, choice=Choice("os-cloud", "x", (), True))
    assert "désactivé" in needs.need_volume(cloud(False, "http://v"))
    assert "n'a pas de service de stockage objet" in needs.need_object_store(cloud(True, None))
    assert needs.need_volume(cloud(True, "http://cinder/v3")) is None


def test_a_catalog_without_cinder_or_swift_skips_their_rows_and_fails_without_nova():
    """The catalog scenarios (C27, C30): an optional service absent is IGNORÉ with the reason, not ÉCHEC;
    a core one absent is still ÉCHEC (issue #19)."""
    from popek.steps import cloud_catalog

    entries = [{"type": t, "name": n, "endpoints": []} for t, n in (("identity", "keystone"), ("image", "glance"))]
    with pytest.raises(pytest.skip.Exception, match=r"n'a pas de service de stockage objet \(Swift\) \(object-store\)"):
        cloud_catalog.has_service(entries, "object-store")
    with pytest.raises(pytest.skip.Exception, match=r"de volumes \(Cinder\) \(volumev3 / block-storage / volume\)"):
        cloud_catalog.service_named(entries, "volumev3", "Cinder", None)
    with pytest.raises(AssertionError, match="pas de service compute au catalogue"):
        cloud_catalog.has_service(entries, "compute")
    assert cloud_catalog.has_service(entries, "image")["name"] == "glance"
