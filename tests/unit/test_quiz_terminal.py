"""The terminal quiz driven through stdin, as a student would type: exam, resume, practice, no key shown."""
import json
import os
import subprocess
import sys

import pytest

from popek.checks.quiz.bank import load_bank
from popek.checks.quiz.grading import key
from popek.checks.quiz.terminal import LETTERS
from popek.checks.quiz.variant import draw, present
from quiz_helpers import DATA

BANK = load_bank(DATA / "demo.yaml")


def typed(item, answer) -> list[str]:
    """The lines a student types for `answer` (display positions) to `item`."""
    t = item.question.type
    if t == "single":
        return [LETTERS[answer]]
    if t in ("multiple", "matching", "ordering"):
        return [" ".join(LETTERS[p] for p in answer)]
    if t == "truefalse":
        return ["vrai" if answer else "faux"]
    if t in ("numeric", "short"):
        return [f"{answer:g}".replace(".", ",") if isinstance(answer, float) else str(answer)]
    if t == "pgtable":
        return [" ".join(answer[tech][c] for c, _ in present(item)["conditions"]) for tech, _ in present(item)["techniques"]]
    raise AssertionError(t)


def popek(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "popek", "quiz", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def key_lines(student, secret="s"):
    return [line for item in draw(BANK, student, secret).items for line in typed(item, key(item))]


def test_exam_in_two_sittings_then_graded_full_marks(tmp_path):
    answers = tmp_path / "alice.json"
    lines = key_lines("alice")
    common = ["take", "demo", "--student", "alice", "--banks", str(DATA), "--secret", "s", "--mode", "exam",
              "--answers", str(answers)]
    first = popek(*common, stdin="\n".join(lines[:3]) + "\n")
    assert first.returncode == 3, first.stderr
    assert "Quiz interrompu : 3/8 réponses enregistrées" in first.stdout
    assert len(json.loads(answers.read_text())["answers"]) == 3
    # an unparseable line is asked again, not recorded
    second = popek(*common, stdin="\n".join(["zzz"] + lines[3:]) + "\n")
    assert second.returncode == 0, second.stderr
    assert "Reprise : 3/8 questions déjà répondues." in second.stdout and "Réponse non comprise" in second.stdout
    out = first.stdout + second.stdout
    # exam mode shows no key, no verdict, no feedback
    for leaked in ("Correct", "Incorrect", "Réponse attendue", "Kernel-based Virtual Machine",
                   "Équivalence, efficacité, contrôle.", "1946, 1958, 1972, 2004.", "Score"):
        assert leaked not in out
    sheet = json.loads(answers.read_text())
    assert set(sheet) == {"format", "student", "part", "mode", "variant", "answers"}
    assert set(sheet["variant"]) == {"key", "count", "digest", "questions"} and "s" not in sheet["variant"].values()
    graded = popek("grade", str(answers), "--banks", str(DATA), "--secret", "s", "--out", str(tmp_path / "out"))
    assert graded.returncode == 0, graded.stderr
    assert "alice" in graded.stdout and "10/10" in graded.stdout and " 100 %" in graded.stdout


def test_practice_mode_gives_feedback_at_once(tmp_path):
    v = draw(BANK, "bob", "s")
    first = v.items[0]
    wrong = (key(first) + 1) % len(present(first)["options"])
    run = popek("take", "demo", "--student", "bob", "--banks", str(DATA), "--secret", "s",
                "--answers", str(tmp_path / "bob.json"), stdin=LETTERS[wrong] + "\n-\n")
    assert run.returncode == 3
    assert "Incorrect : 0/1 pt." in run.stdout and "Réponse attendue :" in run.stdout
    assert "Voir le cours, section « Principes de Popek et Goldberg »." in run.stdout
    assert "Sans réponse : 0/1 pt." in run.stdout       # "-" passes the second question


def test_resuming_someone_elses_file_or_with_another_secret_is_refused(tmp_path):
    answers = tmp_path / "a.json"
    popek("take", "demo", "--student", "alice", "--banks", str(DATA), "--secret", "s", "--answers", str(answers), stdin="")
    other = popek("take", "demo", "--student", "alice", "--banks", str(DATA), "--secret", "t", "--answers", str(answers))
    assert other.returncode == 2 and "impossible de reprendre" in other.stderr and "secret" in other.stderr
    bad_id = popek("take", "demo", "--student", "al ice", "--banks", str(DATA))
    assert bad_id.returncode == 2 and "identifiant d'étudiant invalide" in bad_id.stderr


def test_a_resumed_quiz_keeps_the_question_count_it_started_with(tmp_path):
    answers = tmp_path / "c.json"
    base = ["take", "demo", "--student", "carole", "--banks", str(DATA), "--secret", "s", "--answers", str(answers)]
    popek(*base, "--count", "3", stdin="-\n")
    again = popek(*base, stdin="-\n-\n")
    assert again.returncode == 0 and "3 questions" in again.stdout and "Reprise : 1/3" in again.stdout


def test_an_exam_file_stays_an_exam_when_resumed_in_practice_mode(tmp_path):
    answers = tmp_path / "d.json"
    base = ["take", "demo", "--student", "dora", "--banks", str(DATA), "--secret", "s", "--answers", str(answers)]
    v = draw(BANK, "dora", "s")
    wrong = (key(v.items[0]) + 1) % len(present(v.items[0])["options"])
    assert popek(*base, "--mode", "exam", stdin=LETTERS[wrong] + "\n").returncode == 3
    again = popek(*base, "--mode", "practice", stdin="\n".join(key_lines("dora")[1:]) + "\n")
    assert again.returncode == 0, again.stderr
    assert "reprise en mode examen, celui du fichier" in again.stderr and "--mode practice ignoré" in again.stderr
    assert "mode examen" in again.stdout and "La note sera donnée à la correction." in again.stdout
    for leaked in ("Correct", "Incorrect", "Réponse attendue", "Voir le cours", "Score"):
        assert leaked not in again.stdout
    assert json.loads(answers.read_text())["mode"] == "exam"
    quiet = popek(*base, stdin="")                       # no --mode given: the file's mode, no message
    assert "reprise en mode" not in quiet.stderr and "mode examen" in quiet.stdout


def test_an_unwritable_answer_file_or_a_non_positive_count_is_one_message(tmp_path):
    for where in ("/proc/nope/x.json", str(tmp_path / "d.json" / "x.json")):
        (tmp_path / "d.json").write_text("not a folder")
        run = popek("take", "demo", "--student", "eve", "--banks", str(DATA), "--answers", where)
        assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr
        assert run.stderr.startswith(f"popek: fichier de réponses {where} : écriture impossible (")
    for count in ("-3", "0", "deux"):
        run = popek("take", "demo", "--student", "eve", "--banks", str(DATA), "--count", count,
                    "--answers", str(tmp_path / "e.json"))
        assert run.returncode == 2 and "argument --count" in run.stderr and "attendu" in run.stderr, run.stderr
        assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize("command", [["claims"], ["claims", "--json"], ["quiz", "list"]])
def test_a_closed_stdout_ends_quietly(command):
    read, write = os.pipe()
    os.close(read)                                       # like `| head` that has already exited
    try:
        run = subprocess.run([sys.executable, "-m", "popek", *command], stdout=write, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    finally:
        os.close(write)
    assert run.stderr == "" and run.returncode == 141
