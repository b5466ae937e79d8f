"""Loading and validating quiz banks: errors name the file, the line and the problem."""
import textwrap

import pytest

from popek import paths
from popek.checks.quiz.bank import BankError, load_bank, load_banks, normalise, question_claims, substitute
from quiz_helpers import DATA

HEAD = "module: x\ntitle: \"X\"\nquestions:\n"
GOOD = """\
  - id: x-one
    type: truefalse
    claims: [C01]
    section: "Définition"
    prompt: "Vrai ?"
    answer: true
    feedback: "Oui."
"""


def write(tmp_path, body, name="x.yaml"):
    p = tmp_path / name
    p.write_text(HEAD + textwrap.dedent(body), encoding="utf-8")
    return p


def test_the_test_bank_loads_every_type():
    bank = load_bank(DATA / "demo.yaml")
    assert {q.type for q in bank.questions} == {"single", "multiple", "truefalse", "numeric", "short",
                                                 "matching", "ordering", "pgtable"}
    assert [len(qs) for qs in bank.pools().values()] == [2, 1, 1, 1, 1, 1, 1, 1]
    assert question_claims(DATA)["demo-pgtable"] == ["C06", "C08", "C09"]


def test_the_shipped_banks_load_and_cite_known_claims():
    banks = load_banks(paths.QUIZZES_DIR)   # raises BankError with file:line if H6b's content is malformed
    for bank in banks.values():
        assert bank.module in ("virtualisation", "cloud", "openstack")
        assert bank.questions


@pytest.mark.parametrize("body, line, words", [
    (GOOD.replace("truefalse", "essay"), 4, "type inconnu 'essay'"),
    (GOOD.replace("    answer: true\n", ""), 4, "réponse manquante"),
    (GOOD + GOOD, 11, "id 'x-one' en double (déjà ligne 4)"),
    (GOOD.replace("[C01]", "[C01, C77]"), 4, "C77"),
    (GOOD.replace('    feedback: "Oui."\n', ""), 4, "feedback (obligatoire)"),
    (GOOD.replace("truefalse", "single").replace("    answer: true\n", "    choices:\n      - {text: a}\n      - {text: b}\n"),
     4, "exactement un choix correct attendu, trouvé 0"),
    (GOOD.replace("truefalse", "pgtable").replace("    answer: true\n", "    table:\n      emulation: {equivalence: OUI}\n"),
     4, "valeurs OK ou KO attendues"),
    (GOOD.replace("    answer: true\n", "    answer: true\n    colour: red\n"), 4, "champ(s) inconnu(s)"),
    # `correct:` and `shuffle:` are YAML booleans, never any string read as true
    (GOOD.replace("truefalse", "single").replace("    answer: true\n", "    choices:\n      - {text: a, correct: true}\n"
                                                 "      - {text: b, correct: non}\n"),
     11, "question x-one : correct : booléen YAML attendu (true ou false), trouvé 'non'"),
    (GOOD.replace("truefalse", "multiple").replace("    answer: true\n", "    choices:\n      - {text: a, correct: \"false\"}\n"
                                                   "      - {text: b, correct: true}\n"),
     10, "correct : booléen YAML attendu (true ou false), trouvé 'false'"),
    (GOOD.replace("truefalse", "single").replace("    answer: true\n", "    choices:\n      - {text: a, correct: 1}\n"
                                                 "      - {text: b}\n"),
     10, "trouvé 1"),
    (GOOD.replace("truefalse", "single").replace("    answer: true\n", "    shuffle: non\n    choices:\n"
                                                 "      - {text: a, correct: true}\n      - {text: b}\n"),
     4, "shuffle : booléen YAML attendu"),
    (GOOD.replace('"Vrai ?"', '"Vrai en {annee} ?"').replace("    answer", "    params: [{an: 1}]\n    answer"),
     4, "paramètre(s) annee"),
])
def test_a_malformed_question_is_reported_with_file_line_and_problem(tmp_path, body, line, words):
    path = write(tmp_path, body)
    with pytest.raises(BankError) as exc:
        load_bank(path)
    assert exc.value.path == str(path) and exc.value.line == line
    assert words in str(exc.value) and str(exc.value).startswith(f"{path}:{line}: ")


def test_yaml_syntax_errors_and_wrong_module_names_are_located(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text(HEAD + GOOD + "  - id: [unclosed\n", encoding="utf-8")
    with pytest.raises(BankError, match=r"x.yaml:1[12]: YAML invalide"):
        load_bank(p)
    q = write(tmp_path, GOOD, name="y.yaml")
    with pytest.raises(BankError, match="doit être le nom du fichier"):
        load_bank(q)


def test_ids_are_unique_across_banks(tmp_path):
    write(tmp_path, GOOD)
    (tmp_path / "z.yaml").write_text(HEAD.replace("x", "z") + GOOD, encoding="utf-8")
    with pytest.raises(BankError, match="déjà utilisé dans .*x.yaml:4"):
        load_banks(tmp_path)


def test_normalisation_and_substitution():
    assert normalise("  Kernel-based  Virtual Machine ! ") == "kernel based virtual machine"
    assert normalise("Contrôle") == normalise("controle") == "controle"
    assert substitute("En {annee}, {x} et network { name }", {"annee": 1974}) == "En 1974, {x} et network { name }"
