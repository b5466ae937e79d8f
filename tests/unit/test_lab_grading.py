"""The checks and the grader on snapshots (pure logic): full marks, zero, partial credit, French
feedback, best-matching resource, unchecked services; and properties of the score."""
import dataclasses
import json

import pytest
from hypothesis import given as h_given, settings, strategies as st

from popek import paths
from popek.checks.lab import grader
from popek.checks.lab.definition import load_lab
from popek.checks.lab.registry import CHECKS
from popek.checks.lab.snapshot import Snapshot, counts
from popek.checks.quiz import gradebook as gb
from lab_helpers import EGRESS, SSH_RULE, full_snapshot, server

LAB = load_lab(paths.QUIZZES_DIR / "labs" / "tp-openstack.yaml")


def scores(snap):
    return {r.task.id: r.score for r in grader.grade_snapshot(LAB, snap)}


def test_everything_done_gets_full_marks_and_says_what_was_found():
    results = grader.grade_snapshot(LAB, full_snapshot())
    assert sum(r.score for r in results) == LAB.max_score == 15
    vm = next(r for r in results if r.task.id == "instance")
    assert vm.feedback.startswith("Réussi (4/4)")
    assert "gabarit « small »" in vm.feedback and "image « Debian 13 »" in vm.feedback


def test_an_empty_project_gets_zero_with_the_hint_of_each_task():
    results = grader.grade_snapshot(LAB, Snapshot(project_id="p"))
    assert sum(r.score for r in results) == 0
    for r in results:
        assert r.feedback.startswith("Non réussi (0/")
        assert r.task.feedback in r.feedback        # the lab's French hint
    assert "aucune instance dans le projet" in next(r for r in results if r.task.id == "instance").feedback


def test_wrong_flavor_gets_part_of_the_points_and_names_the_difference():
    snap = full_snapshot()
    snap.servers = [server(flavor="tiny")]
    r = next(r for r in grader.grade_snapshot(LAB, snap) if r.task.id == "instance")
    assert r.score == pytest.approx(4 * (1 - 0.15))
    assert r.feedback.startswith("Partiellement réussi (3.4/4)")
    assert "gabarit « tiny » au lieu de « small »" in r.feedback


def test_the_best_matching_server_is_judged():
    snap = full_snapshot()
    snap.servers = [server(name="essai", flavor="tiny", image="cirros", networks=("prive",), sid="s0"), server()]
    assert scores(snap)["instance"] == 4


def test_ssh_only_in_the_default_group_is_half_the_points():
    snap = full_snapshot()
    snap.security_groups = [{"id": "g0", "name": "default", "rules": [EGRESS, SSH_RULE]}]
    assert scores(snap)["groupe-ssh"] == 1
    snap.security_groups.append({"id": "g1", "name": "web", "rules": [dict(SSH_RULE, port_min=80, port_max=80)]})
    assert scores(snap)["groupe-ssh"] == 1
    snap.security_groups.append({"id": "g2", "name": "tout", "rules": [dict(SSH_RULE, port_min=None, port_max=None)]})
    assert scores(snap)["groupe-ssh"] == 2          # all TCP ports include 22


def test_udp_or_egress_do_not_count_as_ssh():
    check = CHECKS["security_group_allows"]
    for rule in (dict(SSH_RULE, protocol="udp"), dict(SSH_RULE, direction="egress")):
        snap = Snapshot(security_groups=[{"id": "g", "name": "ssh", "rules": [rule]}])
        assert check.run(snap, {}).met() == {"group"}
    snap = Snapshot(security_groups=[{"id": "g", "name": "ssh", "rules": [dict(SSH_RULE, protocol="6")]}])
    assert check.run(snap, {}).met() == {"group", "rule"}   # protocol given by number


def test_volume_and_floating_ip_not_attached():
    snap = full_snapshot()
    snap.volumes[0].update(attached_to=[], status="available")
    snap.floating_ips[0].update(port_id=None, server_id=None)
    s = scores(snap)
    assert s["volume"] == pytest.approx(1.5) and s["ip-flottante"] == pytest.approx(1.5)
    fb = {r.task.id: r.feedback for r in grader.grade_snapshot(LAB, snap)}
    assert "n'est attaché à aucune instance (état available)" in fb["volume"]
    assert "203.0.113.7 n'est associée à aucune instance" in fb["ip-flottante"]


def test_empty_container_and_named_object():
    snap = full_snapshot()
    snap.containers[0]["objects"] = []
    assert scores(snap)["objet"] == 1
    out = CHECKS["object_stored"].run(full_snapshot(), {"object": "*.pdf"})
    assert out.met() == {"container"}
    assert "ne contient pas d'objet « *.pdf »" in [c.detail for c in out.criteria if not c.ok][0]


def test_a_service_the_cloud_lacks_is_not_checked_rather_than_failed():
    snap = full_snapshot()
    snap.containers = []
    snap.unavailable = {"object-store": "le cloud n'offre pas le service « object-store » (absent du catalogue)"}
    graded = [r for r in grader.grade_snapshot(LAB, snap) if r.task.id == "objet"][0]
    assert graded.score == 0 and graded.outcome.unchecked
    assert graded.feedback.startswith("Non vérifiable (le cloud n'offre pas")


def test_the_submission_uses_the_quiz_gradebook_formats(tmp_path):
    snap = full_snapshot()
    snap.servers = [server(flavor="tiny")]
    result = grader.ClassGrading(graded=[
        grader.Graded(grader.submission(LAB, "etu1", grader.grade_snapshot(LAB, snap)), snap, [], 0.1),
        grader.Graded(grader.submission(LAB, "etu2", grader.grade_snapshot(LAB, Snapshot())), Snapshot(), [], 0.1)],
        errors={"etu3": "Keystone refuse l'authentification (401)"})
    written = grader.write_outputs(tmp_path, result)
    rows = written["gradebook"].read_text(encoding="utf-8").splitlines()
    assert rows[0] == "student,assignment,score,max_score,percent,paire-de-cles,groupe-ssh,instance,volume,ip-flottante,objet"
    assert rows[1].startswith("etu1,tp-openstack,14.4,15,96.0,1,2,3.4,3,3,2")
    assert rows[2].startswith("etu2,tp-openstack,0,15,0.0,")
    results = json.loads((tmp_path / "gradescope" / "etu1" / "results.json").read_text())
    assert results["score"] == 14.4 and results["max_score"] == 15
    assert results["tests"][2]["name"].startswith("Démarrer une instance") and "tiny" in results["tests"][2]["output"]
    assert (tmp_path / "errors.txt").read_text().startswith("etu3: Keystone refuse")
    assert not (tmp_path / "gradebook.csv").read_text().count("etu3")     # unknown grade, not 0
    assert json.loads((tmp_path / "inspections" / "etu1.json").read_text())["servers"][0]["flavor"] == "tiny"
    assert "Partiellement réussi" in (tmp_path / "copies" / "etu1.txt").read_text()


def test_snapshot_round_trips_through_json_and_counts():
    snap = full_snapshot()
    assert Snapshot.from_json(json.loads(json.dumps(snap.to_json()))) == snap
    assert counts(snap) == {"keypairs": 1, "security_groups": 2, "rules": 3, "servers": 1, "volumes": 1,
                            "floating_ips": 1, "containers": 1, "objects": 1}


# --- properties: removing work never raises the score; the score stays within [0, points] ---------

PARTS = ("keypairs", "security_groups", "servers", "volumes", "floating_ips", "containers")


@settings(database=None, max_examples=60, deadline=None)
@h_given(st.sets(st.sampled_from(PARTS)), st.sets(st.sampled_from(PARTS)))
def test_removing_resources_never_raises_the_score(drop_a, drop_b):
    full = full_snapshot()
    smaller = dataclasses.replace(full, **{p: [] for p in drop_a})
    smallest = dataclasses.replace(smaller, **{p: [] for p in drop_b})
    a, b, c = (gb.Submission.from_tuples("s", LAB.id, [(r.task.id, r.score, r.task.points, "")
                                                        for r in grader.grade_snapshot(LAB, s)])
               for s in (full, smaller, smallest))
    assert a.score == LAB.max_score >= b.score >= c.score >= 0
    for t in c.tasks:
        assert 0 <= t.score <= t.max_score


@settings(database=None, max_examples=60, deadline=None)
@h_given(st.sampled_from(["small", "tiny", "medium"]), st.sampled_from(["Debian 13", "cirros"]),
         st.sampled_from([("public",), ("prive",), ("prive", "public")]), st.sampled_from(["ACTIVE", "ERROR"]),
         st.sampled_from(["ma-cle", None, "inconnue"]))
def test_server_score_is_the_sum_of_the_met_criteria(flavor, image, networks, status, key):
    snap = full_snapshot()
    snap.servers = [server(flavor=flavor, image=image, networks=networks, status=status, key_name=key)]
    task = next(t for t in LAB.tasks if t.id == "instance")
    outcome = task.check.run(snap, task.params)
    expected = sum(task.partial[c] for c in outcome.met()) * task.points
    assert grader.score(task, outcome) == pytest.approx(expected, abs=0.01)
    assert ("flavor" in outcome.met()) == (flavor == "small")
    assert ("network" in outcome.met()) == ("public" in networks)
    assert ("keypair" in outcome.met()) == (key == "ma-cle")
