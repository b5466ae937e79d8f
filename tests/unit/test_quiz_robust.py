"""No file can stop a class from being graded, and no id, bank or output folder can be bent.

- A class of 30 with 5 crafted files (a 400-digit integer, 100,000 nested lists, binary bytes, a
  50 MB string, a FIFO) among 25 good ones: 25 graded, 5 refused with their French reasons, exit 4,
  no traceback (the real CLI in a subprocess, with a timeout: a FIFO must not hang it).
- Hypothesis: arbitrary JSON, arbitrary bytes, and a good file with one answer replaced by arbitrary
  JSON, each among valid files: grade_files never raises, every valid file is graded.
- Banks: a key written twice, a non-numeric parameter of a numeric answer, options made identical
  by a parameter set, a bad exclusion: refused with file:line.
- Ids (fullmatch), the output folder, the exam secret, Gradescope visibility, French numbers.
"""
import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from popek.checks.quiz import report, synthetic
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import BankError, load_bank, load_banks
from popek.checks.quiz.grading import fr
from popek.checks.quiz.variant import draw
from popek.cli import main
from quiz_helpers import DATA

BANKS = load_banks(DATA)
SECRET = "exam-2026"


def good_class(directory, n=25):
    return synthetic.write_class(BANKS["demo"], SECRET, directory, ["perfect", "random"] * (n // 2) + ["perfect"] * (n % 2))


def crafted(directory, student_of_good):
    """The five crafted files of the issue, each otherwise a well-formed answer file."""
    directory.mkdir(parents=True, exist_ok=True)
    base = json.loads(student_of_good.read_text(encoding="utf-8"))
    files = {}
    huge_int = dict(base, student="pirate1")
    text = json.dumps(huge_int)
    first_ref = base["variant"]["questions"][0]
    huge_int["answers"] = {first_ref: 0}
    files["entier"] = directory / "pirate1.json"
    files["entier"].write_text(json.dumps(huge_int).replace(f'"{first_ref}": 0', f'"{first_ref}": 1{"0" * 400}'))
    files["imbrication"] = directory / "pirate2.json"
    files["imbrication"].write_text(text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    files["binaire"] = directory / "pirate3.json"
    files["binaire"].write_bytes(os.urandom(4096) + b"\xff\xfe\x00")
    files["chaine"] = directory / "pirate4.json"
    with files["chaine"].open("w") as f:
        f.write(text[:-1] + ', "x": "')
        f.write("A" * 50_000_000)
        f.write('"}')
    files["fifo"] = directory / "pirate5.json"
    os.mkfifo(files["fifo"])
    return files


def test_a_class_of_30_with_5_crafted_files(tmp_path):
    good = good_class(tmp_path / "copies")
    bad = crafted(tmp_path / "copies", good[0])
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "popek", "quiz", "grade", *map(str, good), *map(str, bad.values()),
                          "--banks", str(DATA), "--secret", SECRET, "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    print(run.stdout.splitlines()[-1])
    print(run.stderr)
    assert run.returncode == 4
    assert "Traceback" not in run.stderr + run.stdout
    assert "25 copie(s) corrigée(s), 5 fichier(s) rejeté(s)" in run.stdout
    rejected = [ln for ln in run.stderr.splitlines() if ln.startswith("popek: fichier de réponses rejeté")]
    assert len(rejected) == 5
    reasons = "\n".join(rejected)
    for path, why in ((bad["entier"], "entier de 401 chiffres"), (bad["imbrication"], "imbrication de plus de"),
                      (bad["binaire"], "UTF-8"), (bad["chaine"], "fichier trop gros"),
                      (bad["fifo"], "pas un fichier ordinaire")):
        assert f"{path}: " in reasons and why in reasons, (path, why)
    assert max(len(ln) for ln in rejected) < 300                 # summarised, never copied
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    assert len(rows) == 25 and not any(r["student"].startswith("pirate") for r in rows)
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < 1_000_000


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
                    max_leaves=30)
FUZZ = settings(database=None, max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def three_good(tmp_path_factory):
    return good_class(tmp_path_factory.mktemp("good"), n=3)


def _grade_with(tmp_path, good, bad_bytes):
    bad = tmp_path / "fuzz.json"
    bad.write_bytes(bad_bytes)
    result = report.grade_files([good[0], bad, *good[1:]], BANKS, SECRET, None)
    graded = {s.student for s in result.submissions}
    assert {"etu000", "etu001", "etu002"} <= graded
    assert len(result.submissions) + len(result.errors) == 4
    for e in result.errors:
        assert isinstance(e, sheets.AnswerFileError) and len(str(e)) < 400
    return result


@FUZZ
@given(doc=JSON)
def test_fuzz_any_json_in_place_of_an_answer_file(tmp_path, three_good, doc):
    _grade_with(tmp_path, three_good, json.dumps(doc).encode())


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_fuzz_any_bytes_in_place_of_an_answer_file(tmp_path, three_good, raw):
    _grade_with(tmp_path, three_good, raw)


@FUZZ
@given(data=st.data())
def test_fuzz_a_good_file_with_any_answers_and_fields(tmp_path, three_good, data):
    doc = json.loads(three_good[0].read_text())
    doc["student"] = "fuzz"
    field = data.draw(st.sampled_from(["answer", "variant", "nonce", "mode", "count"]))
    value = data.draw(JSON)
    if field == "answer":
        doc["answers"][data.draw(st.sampled_from(doc["variant"]["questions"]))] = value
    elif field == "variant":
        doc["variant"][data.draw(st.sampled_from(["key", "count", "digest", "questions"]))] = value
    else:
        doc[field] = value
    _grade_with(tmp_path, three_good, json.dumps(doc).encode())


# --- banks -------------------------------------------------------------------------------------------

HEAD = "module: x\ntitle: \"X\"\nquestions:\n"


def bank_file(tmp_path, body):
    p = tmp_path / "x.yaml"
    p.write_text(HEAD + textwrap.dedent(body), encoding="utf-8")
    return p


def test_a_key_written_twice_is_refused_with_its_line(tmp_path):
    p = bank_file(tmp_path, """\
      - id: x-one
        type: truefalse
        claims: [C01]
        section: "Définition"
        prompt: "Vrai ?"
        answer: false
        feedback: "Non."
        answer: true
    """)
    with pytest.raises(BankError) as exc:
        load_bank(p)
    assert exc.value.line == 11 and "'answer' écrite deux fois" in str(exc.value) and "ligne 9" in str(exc.value)


def test_a_non_numeric_parameter_of_a_numeric_answer_is_refused(tmp_path):
    p = bank_file(tmp_path, """\
      - id: x-num
        type: numeric
        claims: [C03]
        section: "Historique"
        params: [{annee: 1974}, {annee: "vers 1970"}]
        prompt: "Année ?"
        answer: "{annee}"
        feedback: "Voilà."
    """)
    with pytest.raises(BankError, match=r"x.yaml:4: .*nombre attendu une fois substitué, trouvé 'vers 1970'"):
        load_bank(p)


def test_options_made_identical_by_a_parameter_set_are_refused(tmp_path):
    p = bank_file(tmp_path, """\
      - id: x-single
        type: single
        claims: [C03]
        section: "Historique"
        params: [{a: 1974, b: 1972}, {a: 1974, b: 1974}]
        prompt: "Année ?"
        choices:
          - {text: "En {a}", correct: true}
          - {text: "En {b}"}
        feedback: "Voilà."
    """)
    with pytest.raises(BankError, match=r"options identiques une fois les paramètres substitués \(En 1974\)"):
        load_bank(p)


def _tf(qid, pool="", excludes=""):
    lines = [f"  - id: {qid}", "    type: truefalse", "    claims: [C01]", '    section: "Définition"',
             '    prompt: "Vrai ?"', "    answer: true", '    feedback: "Oui."']
    lines += [f"    pool: {pool}"] if pool else []
    lines += [f"    excludes: [{excludes}]"] if excludes else []
    return "\n".join(lines) + "\n"


def test_exclusions_must_name_known_questions_and_leave_later_pools_a_draw(tmp_path):
    with pytest.raises(BankError, match="excludes nomme 'x-nowhere'"):
        load_bank(bank_file(tmp_path, _tf("x-a", excludes="x-nowhere")))
    with pytest.raises(BankError, match="exclut toutes les questions du pool 'x-b'"):
        load_bank(bank_file(tmp_path, _tf("x-a", excludes="x-b") + _tf("x-b")))
    bank = load_bank(bank_file(tmp_path, _tf("x-a", excludes="x-b") + _tf("x-b", pool="p") + _tf("x-c", pool="p")))
    assert bank.exclusions() == {"x-a": {"x-b"}, "x-b": {"x-a"}}
    for n in range(50):
        assert [i.id for i in draw(bank, f"s{n}", "k").items] == ["x-a", "x-c"]


def test_ordering_items_moodle_cannot_read_are_refused(tmp_path):
    p = bank_file(tmp_path, """\
      - id: x-ord
        type: ordering
        claims: [C03]
        section: "Historique"
        prompt: "Ordre ?"
        items: ["a {b}", "c"]
        feedback: "Voilà."
    """)
    with pytest.raises(BankError, match="import GIFT de Moodle"):
        load_bank(p)


# --- ids, output folder, secret, numbers ---------------------------------------------------------------

def test_ids_are_matched_whole(tmp_path, capsys):
    assert not sheets.valid_student("alice\n") and not sheets.valid_student("../alice") and sheets.valid_student("alice")
    assert main(["quiz", "take", "demo", "--student", "alice\n", "--banks", str(DATA)]) != 0
    assert main(["quiz", "export", "--format", "html", "--part", "demo", "--student", "bob\n", "--banks", str(DATA),
                 "--secret", SECRET, "--mode", "exam", "-o", str(tmp_path / "e.html")]) != 0
    assert not (tmp_path / "e.html").exists()
    err = capsys.readouterr().err
    assert err.count("identifiant d'étudiant invalide") == 2 and "Traceback" not in err
    good = good_class(tmp_path / "c", n=1)[0]
    doc = json.loads(good.read_text())
    doc["student"] = "etu000\n"
    good.write_text(json.dumps(doc))
    with pytest.raises(sheets.AnswerFileError, match="identifiant d'étudiant invalide"):
        sheets.load(good)


def test_a_regrade_empties_popeks_previous_results_and_refuses_foreign_folders(tmp_path, capsys):
    files = good_class(tmp_path / "c", n=4)
    out = tmp_path / "out"
    assert main(["quiz", "grade", *map(str, files), "--banks", str(DATA), "--secret", SECRET, "--out", str(out)]) == 0
    assert len(list((out / "copies").iterdir())) == 4
    assert main(["quiz", "grade", str(files[0]), "--banks", str(DATA), "--secret", SECRET, "--out", str(out)]) == 0
    assert [p.name for p in (out / "copies").iterdir()] == ["etu000.txt"]
    assert [p.name for p in (out / "gradescope").iterdir()] == ["etu000"]
    assert json.loads((out / "gradescope" / "etu000" / "results.json").read_text())["visibility"] == "after_published"
    assert main(["quiz", "grade", str(files[0]), "--banks", str(DATA), "--secret", SECRET, "--out", str(out),
                 "--gradescope-visibility", "visible"]) == 0
    assert json.loads((out / "gradescope" / "etu000" / "results.json").read_text())["visibility"] == "visible"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("à garder")
    assert main(["quiz", "grade", str(files[0]), "--banks", str(DATA), "--secret", SECRET, "--out", str(foreign)]) == 2
    assert "d'autres fichiers que des résultats de popek" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_an_exam_page_needs_an_exam_secret(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("POPEK_QUIZ_SECRET", raising=False)
    out = tmp_path / "e.html"
    assert main(["quiz", "export", "--format", "html", "--part", "demo", "--mode", "exam", "--banks", str(DATA),
                 "-o", str(out)]) == 2
    assert "demande un secret d'examen" in capsys.readouterr().err and not out.exists()
    assert main(["quiz", "export", "--format", "html", "--part", "demo", "--mode", "exam", "--banks", str(DATA),
                 "--secret", SECRET, "-o", str(out)]) == 0


def test_one_copy_of_a_class_wide_page_handed_in_under_two_ids_is_refused(tmp_path):
    v = draw(BANKS["demo"], "commun", SECRET, student="")
    paths = []
    for student in ("alice", "bob"):
        s = sheets.new_sheet(student, v, "exam")
        s.nonce = "0123456789abcdef0123456789abcdef"
        paths.append(tmp_path / f"{student}.json")
        sheets.save(s, paths[-1])
    result = report.grade_files(paths, BANKS, SECRET, None)
    assert not result.submissions and len(result.errors) == 2
    assert "même copie (nonce)" in str(result.errors[0])


def test_french_numbers_everywhere():
    assert [fr(x) for x in (1 / 3, 1, 12.5, 2004, 0.0)] == ["0,33", "1", "12,5", "2004", "0"]
    v = draw(BANKS["demo"], "alice", SECRET)
    item = next(i for i in v.items if i.question.type == "multiple")
    from popek.checks.quiz.grading import grade, key
    partial = key(item)[:1]
    assert "/1 pt." in grade(item, partial).feedback and "." not in grade(item, partial).feedback.split(" pt.")[0].split(":")[-1]


def test_a_matching_question_in_bank_order_still_hides_its_key(tmp_path):
    bank = load_bank(bank_file(tmp_path, """\
      - id: x-match
        type: matching
        claims: [C03]
        section: "Historique"
        prompt: "Associez chaque année à son événement."
        shuffle: false
        pairs:
          - {left: "1946", right: "ENIAC"}
          - {left: "1972", right: "VM/370"}
          - {left: "1999", right: "VMware Workstation"}
        distractors: ["Docker"]
        feedback: "Voilà."
    """))
    from popek.checks.quiz.grading import key
    seen = set()
    for n in range(200):
        item = draw(bank, f"s{n}", "k").items[0]
        assert item.order == (0, 1, 2)                        # the left column stays in the bank's order
        assert key(item) != [0, 1, 2]                          # the right column never in the key's order
        seen.add(item.right_order)
    assert len(seen) > 6                                      # and is shuffled
