"""The GIFT and Moodle XML exports imported back, and compared with the banks question by question.

GIFT goes through a line-by-line Python port of Moodle's own reader (qformat_gift::readquestion,
qformat_default::readquestions) and of the ordering type's GIFT import (qtype_ordering::import_from_gift),
in quiz_helpers.py: what Moodle would store (type, texts, per-answer fractions, feedback, general
feedback, category) must equal the bank's key for every LMS question (one per parameter set).
Moodle XML is read with xml.etree and compared the same way.
"""
import html
import re
import xml.etree.ElementTree as ET

import pytest

from popek import paths
from popek.checks.quiz import export
from popek.checks.quiz.bank import load_banks
from popek.checks.quiz.grading import numeric_value
from popek.checks.quiz.variant import label
from quiz_helpers import DATA, moodle_gift_import

MOODLE_TYPE = {"single": "multichoice", "multiple": "multichoice", "truefalse": "truefalse", "numeric": "numerical",
               "short": "shortanswer", "matching": "match", "ordering": "ordering", "pgtable": "match"}


def expected(bank, name, item):
    """What Moodle must hold for one exported question: the bank's key, fractions and feedback."""
    q, t = item.question, item.text
    exp = {"name": name, "qtype": MOODLE_TYPE[q.type], "category": export._category_path(bank, q),
           "questiontext": t(q.prompt) + (f" (en {t(q.unit)})" if q.type == "numeric" and q.unit else ""),
           "generalfeedback": f"{t(q.feedback)} Voir le cours, section « {t(q.section)} »."}
    if q.type in ("single", "multiple"):
        n_ok = sum(c.correct for c in q.choices)
        exp["answer"] = [t(c.text) for c in q.choices]
        exp["feedback"] = [t(c.feedback) for c in q.choices]
        exp["fraction"] = [(1.0 if c.correct else 0.0) if q.type == "single" else (1 if c.correct else -1) / n_ok
                           for c in q.choices]
        exp["single"] = int(q.type == "single")
    elif q.type == "truefalse":
        exp["correctanswer"] = int(bool(q.answer))
    elif q.type == "numeric":
        exp.update(answer=[numeric_value(item)], tolerance=[q.tolerance], fraction=[1.0])
    elif q.type == "short":
        exp.update(answer=[t(a) for a in q.accept], fraction=[1.0] * len(q.accept))
    elif q.type == "matching":
        exp["subquestions"] = [t(left) for left, _ in q.pairs] + [""] * len(q.distractors)
        exp["subanswers"] = [t(right) for _, right in q.pairs] + [t(d) for d in q.distractors]
    elif q.type == "pgtable":
        cells = [(f"{label(tech)} — {label(cond).lower()}", v) for tech, row in q.table.items() for cond, v in row.items()]
        exp["subquestions"], exp["subanswers"] = [c for c, _ in cells], [v for _, v in cells]
    elif q.type == "ordering":
        exp.update(answer=[t(i) for i in q.items], fraction=list(range(1, len(q.items) + 1)),
                   gradingtype="RELATIVE_NEXT_EXCLUDE_LAST", selecttype="ALL", selectcount=len(q.items))
    return exp


def expectations(banks):
    return [expected(bank, name, item) for bank in banks.values() for q in bank.questions
            for name, item in export._instances(q)]


def gift_imported(banks):
    """The questions Moodle's GIFT import stores, each with the category it lands in."""
    out, category = [], None
    for q in moodle_gift_import(export.gift(banks)):
        assert q is not None, "Moodle's GIFT reader would reject a question"
        if q["qtype"] == "category":
            category = q["category"]
            continue
        out.append(dict(q, category=category))
    return out


def compare(got, exp):
    for field, value in exp.items():
        if field in ("fraction", "tolerance") and value and isinstance(value[0], float):
            assert got[field] == pytest.approx(value, abs=1e-6), (exp["name"], field)
        else:
            assert got.get(field) == value, (exp["name"], field, got.get(field), value)


@pytest.mark.parametrize("where", ["test bank", "shipped banks"])
def test_gift_imported_by_moodles_reader_equals_the_bank(where, capsys):
    banks = load_banks(DATA if where == "test bank" else paths.QUIZZES_DIR)
    exps, got = expectations(banks), gift_imported(banks)
    assert [g["name"] for g in got] == [e["name"] for e in exps]
    for g, e in zip(got, exps):
        compare(g, e)
    kinds = sorted({e["qtype"] for e in exps})
    with capsys.disabled():
        print(f"\nGIFT → port du lecteur GIFT de Moodle ({where}) : {len(got)} questions importées, "
              f"{len(exps)} attendues ; type, clés, fractions, feedback des réponses, feedback général et catégorie "
              f"identiques à la banque pour {sum(1 for _ in got)} ({', '.join(kinds)}).")


def test_the_ordering_items_arrive_without_placeholders_and_keep_their_feedback():
    banks = load_banks(paths.QUIZZES_DIR)
    ordering = [g for g in gift_imported(banks) if g["qtype"] == "ordering"]
    assert ordering
    for g in ordering:
        assert not any("&&" in a for a in g["answer"]), g["answer"]     # Moodle's "&&058;" placeholder
        assert "Voir le cours, section" in g["generalfeedback"]
    assert any(":" in a for g in ordering for a in g["answer"])        # the case that used to break


def _html_text(s):
    return html.unescape(re.sub(r"<br>", "\n", re.sub(r"^<p>|</p>$", "", s or "")))


def test_moodle_xml_equals_the_bank():
    banks = load_banks(paths.QUIZZES_DIR)
    root = ET.fromstring(export.moodle_xml(banks))
    got, category = [], None
    for q in root.findall("question"):
        if q.get("type") == "category":
            category = q.findtext("category/text")
            continue
        g = {"name": q.findtext("name/text"), "qtype": {"matching": "match"}.get(q.get("type"), q.get("type")),
             "category": category, "questiontext": _html_text(q.findtext("questiontext/text")),
             "generalfeedback": _html_text(q.findtext("generalfeedback/text")).replace("\n", " ")}
        answers = q.findall("answer")
        if g["qtype"] == "multichoice":
            g["single"] = int(q.findtext("single") == "true")
            g["answer"] = [_html_text(a.findtext("text")) for a in answers]
            g["feedback"] = [_html_text(a.findtext("feedback/text")) for a in answers]
            g["fraction"] = [float(a.get("fraction")) / 100 for a in answers]
        elif g["qtype"] == "truefalse":
            g["correctanswer"] = int(next(a.findtext("text") for a in answers if float(a.get("fraction")) == 100) == "true")
        elif g["qtype"] == "numerical":
            g.update(answer=[float(a.findtext("text")) for a in answers], fraction=[float(a.get("fraction")) / 100 for a in answers],
                     tolerance=[float(a.findtext("tolerance")) for a in answers])
        elif g["qtype"] == "shortanswer":
            g.update(answer=[a.findtext("text") for a in answers], fraction=[float(a.get("fraction")) / 100 for a in answers])
        elif g["qtype"] == "match":
            subs = q.findall("subquestion")
            g["subquestions"] = [_html_text(s.findtext("text")) for s in subs]
            g["subanswers"] = [s.findtext("answer/text") for s in subs]
        elif g["qtype"] == "ordering":
            g.update(answer=[_html_text(a.findtext("text")) for a in answers],
                     fraction=[int(float(a.get("fraction"))) for a in answers], gradingtype=q.findtext("gradingtype"),
                     selecttype=q.findtext("selecttype"), selectcount=int(q.findtext("selectcount")))
        got.append(g)
    exps = expectations(banks)
    assert [g["name"] for g in got] == [e["name"] for e in exps]
    for g, e in zip(got, exps):
        e = dict(e, generalfeedback=e["generalfeedback"].replace("\n", " "))
        compare(g, e)
