"""Verdict paths that only unit tests had seen, made to happen for real on the embedded cloud (hL, 2026-12-07):
each puts the real cloud in the state the path is about, runs the claim's real scenario with `popek run cloud
--claim …` as a user would, asserts the verdict and its words — then undoes the state and checks it undone.

| path | claim | how it is made real | live verdict |
|---|---|---|---|
| F1: Glance refuses image data to a member by its policy | C20 | `download_image: role:admin` in glance-api's policy.d (oslo.policy re-reads it at the next request, verified: 403 at once, data again once the file is gone) | member (demo): ÉCHEC « … HTTP 403 … You are not authorized to complete download_image action ; Glance refuse à un membre du projet (rôles : member, reader) … (politique download_image …) » ; reader-only account of a fresh project: IGNORÉ « les données de 2/2 image(s) ne peuvent pas être relues avec ce compte (rôle reader) » ; 18 s (09:48) |

Found on the way: deleting the rule within the same mtime tick as its write leaves it in force (oslo.policy
reloads a policy directory only when its newest mtime grows; the directory removed right after is no longer
looked at): the rule stayed until glance-api was restarted. The undo waits a tick, checks, and restarts if need be.

Run serially (CI) or under `flock -x /tmp/popek-cloud.lock` (these states change the cloud for everyone).
"""
from __future__ import annotations

import contextlib
import os
import time

import pytest

from popek import paths
from popek.checks.cloud import glance

from helpers import run_popek, running_cloud
from test_faults_api import failed, label, message, run_claims
from test_foreign_project import _project, _run

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    if os.geteuid() != 0:
        pytest.skip("il faut être root pour changer les services du cloud embarqué")
    return running_cloud(dataplane=True)


@pytest.fixture(scope="module")
def admin(state):
    from popek.checks.cloud import connection

    return connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn


def _member():
    """The embedded cloud's demo member (clouds.yaml entry `popek`)."""
    from popek.checks.cloud import connection

    return connection.connect("popek", {}, paths.embedded_clouds_yaml()).conn


def _readable(conn, image) -> bool:
    return glance.data_problem(conn, image) is None


def _restart_glance(state) -> None:
    """glance-api killed and started again by popek's own repair (`popek cloud up` restarts what is down)."""
    from popek.checks.localcloud import services

    services.kill_now(state, ["glance-api"])
    proc = run_popek("cloud", "up")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@contextlib.contextmanager
def download_refused_to_members(state):
    """Glance's `download_image` rule set to `role:admin` in a file of glance-api's policy.d (a directory next
    to its glance-api.conf, which oslo.policy looks for at every enforcement: no restart). Checked with a
    request before it is relied on: the member gets HTTP 403. Undone by deleting the file (oslo.policy sees
    the directory's newer mtime and rebuilds its rules from the defaults), checked with a request (the
    member reads the image's data again), then the directory is removed. Should the rules not come back
    (the deletion within the same mtime tick as the write), glance-api is restarted through `popek cloud up`."""
    conn = _member()
    image = next(iter(conn.image.images(status="active")), None)
    assert image is not None, "aucune image active dans Glance"
    assert _readable(conn, image), f"le membre ne lit déjà pas l'image : {glance.data_problem(conn, image)}"
    policy_d = paths.embedded_cloud_dir() / "etc" / "glance" / "policy.d"
    made_dir = not policy_d.exists()
    rule = policy_d / "popek-live-paths-f1.yaml"
    policy_d.mkdir(exist_ok=True)
    try:
        rule.write_text('"download_image": "role:admin"\n')
        refused = glance.data_problem(conn, image)
        assert isinstance(refused, glance.Refused) and "download_image" in refused, \
            f"Glance n'a pas relu sa politique : {refused!r}"
        yield refused
    finally:
        time.sleep(0.1)     # the deletion must land on a later mtime tick than the write (oslo.policy compares)
        rule.unlink(missing_ok=True)
        deadline = time.monotonic() + 5
        while not _readable(conn, image) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not _readable(conn, image):
            _restart_glance(state)
        if made_dir:
            policy_d.rmdir()
        assert _readable(conn, image), f"Glance refuse toujours l'image : {glance.data_problem(conn, image)}"


@pytest.mark.falsifies("C20", fault="politique de Glance : download_image réservé à l'admin (un membre ne relit "
                                    "plus les données des images)")
def test_a_member_refused_image_data_by_policy_fails_c20_and_a_reader_is_ignored(state, tmp_path, record_property):
    """F1. The member (the embedded cloud's demo account): ÉCHEC naming the policy download_image; a reader-only
    account of a fresh project, under the same policy: IGNORÉ (its data not checked), never ÉCHEC."""
    t0 = time.monotonic()
    for sub in ("member", "reader"):
        (tmp_path / sub).mkdir()
    with download_refused_to_members(state):
        found = run_claims(tmp_path / "member", "C20")
        with _project(roles=("reader",)) as (_admin, _p, _name, password, entry):
            proc, as_reader, written = _run(tmp_path / "reader", entry, "--claim", "C20")
    said = failed(found, "C20", "politique download_image", "membre du projet", "HTTP 403")
    reader = [r for r in as_reader if "C20" in {x["value"] for x in r["labels"] if x["name"] == "claim"}]
    assert reader and all(r["status"] == "skipped" for r in reader), \
        [(label(r), r["status"], message(r)[:300]) for r in reader] or proc.stdout[-2000:]
    why = message(reader[0])
    assert "ne peuvent pas être relues avec ce compte" in why and "reader" in why, why
    assert password not in written
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{time.monotonic() - t0:.0f} s ; membre : {said[:300]} // lecteur IGNORÉ : {why[:200]}")
