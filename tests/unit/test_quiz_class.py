"""Grading a synthetic class of 30: perfect copies score 100 %, empty ones 0, the malformed file is
reported and the others are still graded; gradebook CSV, Gradescope results.json and statistics written."""
import csv
import json

import pytest

from popek.checks.quiz import export
from popek.checks.quiz import gradebook as gb
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz import synthetic
from popek.checks.quiz.bank import load_banks
from popek.checks.quiz.variant import draw
from popek.cli import main
from quiz_helpers import DATA

BANKS = load_banks(DATA)


def write_class(tmp_path, secret="exam-2026"):
    # 10 perfect copies, 10 random, 9 empty (half with every question passed), 1 malformed
    kinds = ["perfect"] * 10 + ["random"] * 10 + ["empty", "passed"] * 4 + ["empty", "malformed"]
    files = synthetic.write_class(BANKS["demo"], secret, tmp_path, kinds)
    return files, {f"etu{n:03d}": k for n, k in enumerate(kinds) if k != "malformed"}


def test_a_class_of_30(tmp_path, capsys):
    files, kinds = write_class(tmp_path)
    out = tmp_path / "out"
    code = main(["quiz", "grade", *map(str, files), "--banks", str(DATA), "--secret", "exam-2026", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 4                                           # some files were bad
    assert "etu029.json: JSON illisible" in printed.err
    assert "29 copie(s) corrigée(s), 1 fichier(s) rejeté(s)" in printed.out
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open(encoding="utf-8"))}
    assert len(rows) == 29 and "etu029" not in rows
    for student, kind in kinds.items():
        percent = float(rows[student]["percent"])
        if kind == "perfect":
            assert percent == 100.0
        elif kind == "empty":
            assert percent == 0.0
        else:
            assert 0 <= percent <= 100
    assert any(0 < float(rows[s]["percent"]) < 100 for s, k in kinds.items() if k == "random")
    assert kinds["etu021"] == "passed"
    res = json.loads((out / "gradescope" / "etu000" / "results.json").read_text())
    assert res["score"] == res["max_score"] == 10 and len(res["tests"]) == 8
    assert {"name", "score", "max_score", "output"} <= set(res["tests"][0])
    assert all(t["score"] == 0 for t in json.loads((out / "gradescope" / "etu021" / "results.json").read_text())["tests"])
    stats = list(csv.DictReader((out / "statistics.csv").open(encoding="utf-8")))
    assert {s["task"] for s in stats} >= {"demo-benefits", "demo-pgtable"}
    pg = next(s for s in stats if s["task"] == "demo-pgtable")
    assert int(pg["n"]) == 29 and float(pg["discrimination_27"]) > 0.5   # perfect copies in the upper group
    assert (out / "copies" / "etu010.txt").read_text(encoding="utf-8").startswith("Quiz « Démo du moteur de quiz »")


def test_details_print_each_copy_with_its_feedback(tmp_path, capsys):
    files, _ = write_class(tmp_path)
    assert main(["quiz", "grade", str(files[10]), "--details", "--banks", str(DATA), "--secret", "exam-2026",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "===== etu010 — demo" in out and "Voir le cours, section" in out and "Question 1 (" in out


def test_another_secret_rejects_every_copy(tmp_path, capsys):
    files, _ = write_class(tmp_path)
    assert main(["quiz", "grade", str(files[0]), "--banks", str(DATA), "--secret", "other", "--out", str(tmp_path / "o")]) == 4
    assert "ne correspond pas au secret" in capsys.readouterr().err


def test_gradebook_writers_serve_the_lab_grader_too(tmp_path):
    sub = gb.Submission.from_tuples("alice", "tp-openstack", [("t1", 2, 2, "ok"), ("t2", 0.5, 1, "à moitié")])
    gb.write_csv(tmp_path / "g.csv", [sub])
    gb.write_gradescope(tmp_path / "gs", [sub])
    assert (tmp_path / "g.csv").read_text().splitlines()[1] == "alice,tp-openstack,2.5,3,83.3,2,0.5"
    res = json.loads((tmp_path / "gs" / "alice" / "results.json").read_text())
    assert res["score"] == 2.5 and res["tests"][1] == {"name": "t2", "score": 0.5, "max_score": 1.0, "output": "à moitié"}
    assert res["visibility"] == "after_published"          # hidden until the teacher publishes
    gb.write_gradescope(tmp_path / "gs", [sub], visibility="visible")
    assert json.loads((tmp_path / "gs" / "alice" / "results.json").read_text())["visibility"] == "visible"
    assert "2,5/3 pt" in gb.gradescope_results(sub)["output"]


def test_a_copied_file_handed_in_under_another_id_is_rejected(tmp_path, capsys):
    files, _ = write_class(tmp_path)
    perfect = json.loads(files[0].read_text(encoding="utf-8"))          # etu000's perfect copy
    renamed = dict(perfect, student="etu031")                           # only the student id edited
    both = dict(perfect, student="etu031", variant=dict(perfect["variant"], key="etu031"))
    (tmp_path / "renamed.json").write_text(json.dumps(renamed), encoding="utf-8")
    (tmp_path / "both.json").write_text(json.dumps(both), encoding="utf-8")
    code = main(["quiz", "grade", str(tmp_path / "renamed.json"), str(tmp_path / "both.json"), "--banks", str(DATA),
                 "--secret", "exam-2026", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 4
    assert "renamed.json: fichier de réponses de « etu000 » rendu sous l'identifiant « etu031 »" in err
    assert "both.json: la variante ne correspond pas au secret d'examen ni à l'étudiant « etu031 »" in err
    assert not (tmp_path / "o" / "gradebook.csv").exists()


def test_the_fingerprint_binds_student_part_and_count():
    bank = BANKS["demo"]
    base = draw(bank, "alice", "s")
    assert base.digest != draw(bank, "alice", "s", student="bob").digest != draw(bank, "alice", "s", count=3).digest
    for student, count in (("bob", 0), ("alice", 3)):                   # edited id, or edited count
        s = sheets.new_sheet("alice", base, "exam")
        s.student, s.variant["count"] = student, count
        with pytest.raises(sheets.AnswerFileError):
            sheets.variant_of(s, BANKS, "s")
    s = sheets.new_sheet("alice", base, "exam")
    s.part = "cloud"
    with pytest.raises(sheets.AnswerFileError, match="partie inconnue"):
        sheets.variant_of(s, BANKS, "s")


def test_a_variant_shared_by_a_class_is_valid_under_any_student_id():
    shared = draw(BANKS["demo"], export.SHARED_KEY, "s", student="")  # the exam HTML file given to everyone
    for student in ("carole", "david"):
        s = sheets.new_sheet(student, shared, "exam")
        assert sheets.variant_of(s, BANKS, "s").items == shared.items
