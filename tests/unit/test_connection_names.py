"""The course's names and a cloud's (checks/cloud/names.py, popek.yaml, --flavor/--image/--net), and the
`openstack` client's --os-* options on popek's command line (pure logic and the real CLI, no cloud)."""
import os
import types

import pytest

from helpers import run_popek
from popek.checks.cloud import names
from popek.cli import split_os_options


class Conn:
    """A cloud whose flavors, images and networks are the given names (images all active)."""

    def __init__(self, flavors=(), images=(), networks=()):
        pick = lambda pool: lambda name, ignore_missing=True: types.SimpleNamespace(name=name) if name in pool else None  # noqa: E731
        self.compute = types.SimpleNamespace(find_flavor=pick(flavors))
        self.network = types.SimpleNamespace(find_network=pick(networks))
        self.image = types.SimpleNamespace(
            images=lambda name: [types.SimpleNamespace(name=name, status="active")] if name in images else [],
            find_image=lambda name, ignore_missing=True: None)


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
