"""A user who already uses OpenStack: ~/.config/openstack/clouds.yaml names other clouds. popek still finds
the embedded cloud (by default and as `--os-cloud popek`), an entry without password takes OS_PASSWORD as
the `openstack` client does, and an unreachable or malformed cloud is one line with a non-zero exit.
Runs the real `popek` command in a temporary HOME against the embedded cloud (a few catalogue scenarios)."""
import os

import pytest
import yaml

from popek import paths
from popek.checks.cloud import connection

from helpers import allure_results

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

FEW = "catalogue"      # -k: the catalogue scenarios (a few seconds)


@pytest.fixture(scope="module")
def member():
    """The embedded cloud's member entry (skip when the embedded cloud is not up)."""
    try:
        connection.connect(None, os.environ, paths.embedded_clouds_yaml())
    except connection.CloudUnavailable as exc:
        pytest.skip(f"pas de cloud embarqué : {exc}")
    return yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]


@pytest.fixture
def home(tmp_path, member):
    """(HOME, env): a user clouds.yaml with "mine" (unreachable), "nopw" (the embedded member without
    its password) and "region2" (the member in a region the catalog lacks); no OS_* variable; the embedded
    cloud's state where it is."""
    user_dir = tmp_path / ".config" / "openstack"
    user_dir.mkdir(parents=True)
    nopw = {**member, "auth": {k: v for k, v in member["auth"].items() if k != "password"}}
    (user_dir / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {
        "mine": {"auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "me", "password": "x", "project_name": "p"}},
        "nopw": nopw, "region2": {**member, "region_name": "RegionTwo"}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(HOME=str(tmp_path), POPEK_HOME=str(paths.state_home()))
    return tmp_path, env


def popek(home, *args, env=None):
    import subprocess
    import sys
    from pathlib import Path

    tmp, base = home
    argv = [str(Path(sys.executable).parent / "popek"), *args]
    return subprocess.run(argv, cwd=tmp, env={**base, **(env or {})}, capture_output=True, text=True, timeout=600)


def passed(results):
    found = allure_results(results)
    assert found and all(r["status"] in ("passed", "skipped") for r in found), [(r["name"], r["status"]) for r in found]
    return sum(r["status"] == "passed" for r in found)


@pytest.mark.parametrize("named", [[], ["--os-cloud", "popek"]], ids=["default", "os-cloud-popek"])
def test_the_embedded_cloud_is_found_beside_a_users_clouds_yaml(home, named):
    results = home[0] / "r"
    proc = popek(home, "run", "cloud", *named, "-k", FEW, "--no-report", "--no-cloud-up", "--results", str(results))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert passed(results) >= 2


@pytest.mark.parametrize("how", ["OS_PASSWORD", "--os-password"])
def test_an_entry_without_password_takes_os_password(home, member, how):
    results = home[0] / "r"
    secret = member["auth"]["password"]
    given = {"env": {"OS_PASSWORD": secret}} if how == "OS_PASSWORD" else {}
    options = ["--os-password", secret] if how == "--os-password" else []
    proc = popek(home, "run", "cloud", "--os-cloud", "nopw", *options, "-k", FEW, "--no-report", "--results",
                 str(results), **given)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert passed(results) >= 2
    written = "".join(p.read_text(errors="replace") for p in results.rglob("*") if p.is_file())
    assert secret not in proc.stdout + proc.stderr + written


@pytest.mark.parametrize("cloud, text, expected", [
    ("mine", None, "injoignable"),
    ("region2", None, "la région « RegionTwo » (region_name / OS_REGION_NAME) n'est pas dans le catalogue"),
    ("x", "clouds: {x: 5}\n", "entrée « x »"),
    ("x", "clouds:\n  x:\n    auth_type: nosuchplugin\n    auth: {auth_url: 'http://127.0.0.1:9/v3'}\n", "auth_type"),
])
def test_an_unreachable_or_malformed_cloud_is_one_line(home, cloud, text, expected):
    if text:
        (home[0] / ".config" / "openstack" / "clouds.yaml").write_text(text)
    proc = popek(home, "run", "cloud", "--os-cloud", cloud, "--no-report", "--results", str(home[0] / "r"))
    assert proc.returncode != 0
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
