"""The built wheel works outside the repository: features and quiz banks shipped as package data."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import source_tree

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from the repo's files, unpacked into a folder that shadows the editable install."""
    out = tmp_path_factory.mktemp("wheel")
    src = source_tree(tmp_path_factory.mktemp("src"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src),
                    "-w", str(out)], check=True, capture_output=True)
    wheel = next(out.glob("popek-*.whl"))
    site = out / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return wheel, site


def test_wheel_ships_features_quizzes_and_steps(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("popek/features/hote/") and n.endswith(".feature") for n in names)
    assert any(n.startswith("popek/steps/") and n.endswith(".py") for n in names)
    assert any(n.startswith("popek/checks/") and n.endswith(".py") for n in names)
    assert not any(n.startswith(("tests/", "checks/", "steps/")) for n in names)
    # every module shipped is one of the repository's (none of an old build)
    shipped = {n.removeprefix("popek/checks/") for n in names if n.startswith("popek/checks/") and n.endswith(".py")}
    assert shipped == {p.relative_to(REPO / "checks").as_posix() for p in (REPO / "checks").rglob("*.py")}


def test_installed_popek_runs_outside_the_repo(installed, tmp_path):
    _, site = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-c", "import popek.paths as p; print(p.FEATURES_DIR)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(site))
    claims = subprocess.run([sys.executable, "-m", "popek", "claims", "--json"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert claims.returncode == 0, claims.stderr
    rows = {r["claim"]: r for r in json.loads(claims.stdout)}
    assert rows["C05"]["scenarios"], "C05 has no scenario in the installed package"
    # without the source tree, fault tests are unknown (null and why), never claimed absent ([])
    assert rows["C05"]["fault_tests"] is None and "sans ses sources" in rows["C05"]["fault_tests_unknown"]
    run = subprocess.run([sys.executable, "-m", "popek", "run", "host", "--claim", "C05", "--no-report",
                          "--results", str(tmp_path / "r")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert str(site) in run.stdout  # the scenarios ran from the installed copy


def test_installed_image_recipes_are_the_repos(installed, tmp_path):
    """The tiny image's initramfs scripts are package data: an installed wheel holds them, and its image
    recipes hash as the repository's (same image file names: a cache built by one serves the other)."""
    from popek.checks.localcloud import images

    wheel, site = installed
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("init", "rc", "udhcpc.script", "inittab", "heartbeat"):
        assert f"popek/checks/localcloud/images/initramfs/{name}" in names
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-c", "import json; from popek.checks.localcloud import images; "
                            "print(json.dumps({r.name: r.digest() for r in images.RECIPES}))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout) == {r.name: r.digest() for r in images.RECIPES}
