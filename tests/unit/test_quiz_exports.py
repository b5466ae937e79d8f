"""Exports parsed back: Moodle XML with xml.etree, GIFT with a small parser following Moodle's rules,
and the exam HTML checked to hold no key."""
import base64
import json
import re
import xml.etree.ElementTree as ET

import pytest

from popek.checks.quiz import export
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import load_banks
from popek.checks.quiz.grading import key
from popek.checks.quiz.variant import draw
from quiz_helpers import DATA

BANKS = load_banks(DATA)
BANK = BANKS["demo"]


def parse_moodle(text):
    root = ET.fromstring(text)
    assert root.tag == "quiz"
    cats, questions, current = [], {}, None
    for q in root.findall("question"):
        if q.get("type") == "category":
            current = q.findtext("category/text")
            cats.append(current)
            continue
        questions[q.findtext("name/text")] = (q.get("type"), current, q)
    return cats, questions


def test_moodle_xml_round_trip():
    cats, qs = parse_moodle(export.moodle_xml(BANKS))
    # 9 questions, the numeric one with 2 parameter sets -> 10 Moodle questions
    assert len(qs) == 10
    assert cats[0].endswith("/Démo du moteur de quiz/pg-count")
    types = {name: t for name, (t, _, _) in qs.items()}
    assert types == {"demo-pg-count": "multichoice", "demo-pg-count-bis": "multichoice", "demo-benefits": "multichoice",
                     "demo-containers": "truefalse", "demo-vtx-year-p1": "numerical", "demo-vtx-year-p2": "numerical",
                     "demo-kvm": "shortanswer", "demo-services": "matching", "demo-history": "ordering",
                     "demo-pgtable": "matching"}
    _, cat, single = qs["demo-pg-count"]
    assert cat.endswith("/pg-count") and single.findtext("single") == "true"
    fr = [(a.findtext("text"), a.get("fraction")) for a in single.findall("answer")]
    assert ("<p>Trois conditions</p>", "100") in fr and sum(float(f) for _, f in fr) == 100
    multi = qs["demo-benefits"][2]
    fracs = sorted(float(a.get("fraction")) for a in multi.findall("answer"))
    assert multi.findtext("single") == "false" and fracs == pytest.approx([-100 / 3] * 2 + [100 / 3] * 3)
    num = qs["demo-vtx-year-p2"][2]
    assert num.findtext("answer/text") == "2004" and num.findtext("answer/tolerance") == "0"
    assert "AMD" in num.findtext("questiontext/text")
    match = qs["demo-services"][2]
    subs = [(s.findtext("text"), s.findtext("answer/text")) for s in match.findall("subquestion")]
    assert ("<p>Nova</p>", "Compute") in subs and ("", "DNS") in subs
    order = qs["demo-history"][2]
    assert order.findtext("gradingtype") == "RELATIVE_NEXT_EXCLUDE_LAST"
    assert [(a.get("fraction"), a.findtext("text")) for a in order.findall("answer")][0] == ("1.0000000", "<p>ENIAC</p>")
    pg = qs["demo-pgtable"][2]
    assert len(pg.findall("subquestion")) == 9 and pg.findtext("defaultgrade") == "3"
    assert [t.text for t in pg.findall("tags/tag/text")] == ["C06", "C08", "C09"]
    assert "Voir le cours, section" in qs["demo-kvm"][2].findtext("generalfeedback/text")


GIFT_Q = re.compile(r"^::(?P<name>(?:\\.|[^:])+)::\[plain\](?P<text>(?:\\.|[^{])*)\{(?P<answers>(?:\\.|[^}])*)\}$", re.S)


def unescape(s):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def parse_gift(text):
    """A small GIFT reader for what popek writes, classifying questions as Moodle's qformat_gift does."""
    out, category = {}, None
    for block in text.strip().split("\n\n"):
        lines = [ln for ln in block.splitlines() if not ln.startswith("//")]
        if not lines:
            continue
        if lines[0].startswith("$CATEGORY:"):
            category = lines[0].split(":", 1)[1].strip()
            continue
        m = GIFT_Q.match("\n".join(lines))
        assert m, block
        answers = m["answers"].strip()
        general = ""
        if "####" in answers:
            answers, general = answers.rsplit("####", 1)
        answers = answers.strip()
        plain = re.sub(r"\\.", "", answers)
        if answers.startswith(">"):
            qtype = "ordering"
        elif answers.startswith("#"):
            qtype = "numerical"
        elif "~" in plain:
            qtype = "multichoice"
        elif "=" in plain and "->" in plain:
            qtype = "match"
        elif plain in ("TRUE", "FALSE", "T", "F"):
            qtype = "truefalse"
        else:
            qtype = "shortanswer"
        out[unescape(m["name"])] = dict(type=qtype, category=category, text=unescape(m["text"]),
                                        answers=answers, general=unescape(general))
    return out


def test_gift_round_trip():
    qs = parse_gift(export.gift(BANKS))
    assert len(qs) == 10
    assert {n: q["type"] for n, q in qs.items()} == {
        "demo-pg-count": "multichoice", "demo-pg-count-bis": "multichoice", "demo-benefits": "multichoice",
        "demo-containers": "truefalse", "demo-vtx-year-p1": "numerical", "demo-vtx-year-p2": "numerical",
        "demo-kvm": "shortanswer", "demo-services": "match", "demo-history": "ordering", "demo-pgtable": "match"}
    assert qs["demo-containers"]["answers"] == "FALSE"
    assert qs["demo-vtx-year-p1"]["answers"] == "#2004:0"
    weights = re.findall(r"~%(-?[\d.]+)%", qs["demo-benefits"]["answers"])
    assert sorted(float(w) for w in weights) == pytest.approx([-100 / 3] * 2 + [100 / 3] * 3)
    assert "=Trois conditions#Équivalence, efficacité, contrôle." in qs["demo-pg-count"]["answers"]
    assert "Criticité \\: sauvegarde" in qs["demo-benefits"]["answers"]       # ':' escaped as Moodle does
    assert qs["demo-history"]["answers"].splitlines()[1:] == ["ENIAC", "Bull Gamma 60", "IBM VM/370", "Intel VT-x"]
    assert "Voir le cours, section « Ring -1 »." in qs["demo-vtx-year-p1"]["general"]
    assert qs["demo-pg-count"]["category"].endswith("/pg-count")


def test_exam_html_holds_no_key_and_practice_html_holds_the_key():
    exam = export.html(BANK, "s", mode="exam", variant_key="alice", student="alice")
    practice = export.html(BANK, "s", mode="practice", variant_key="alice")
    # Texts that appear only in keys or feedback, never in a prompt or an option.
    secrets = ["Équivalence, efficacité, contrôle.", "Kernel-based Virtual Machine", "KVM ou Kernel",
               "Popek et Goldberg posent trois conditions", "QEMU/KVM."]
    for s in secrets:
        assert s not in exam
    data = json.loads(re.search(r'id="quiz-data">(.*?)</script>', exam, re.S).group(1))
    assert data["mode"] == "exam" and data["student"] == "alice" and "keys" not in data
    assert re.search(r'const KEYS_B64 = "";', exam)
    keys = json.loads(base64.b64decode(re.search(r'const KEYS_B64 = "([^"]+)";', practice).group(1)))
    v = draw(BANK, "alice", "s")
    assert [k["key"] for k in keys] == [key(i) if not isinstance(key(i), float) else key(i) for i in v.items]
    assert 'http-equiv="Content-Security-Policy"' in exam and "https://" not in exam and "http://" not in exam


def test_the_shipped_banks_export_and_parse_back():
    from popek import paths
    banks = load_banks(paths.QUIZZES_DIR)
    n = export.question_count(banks)
    _, moodle = parse_moodle(export.moodle_xml(banks))
    assert len(moodle) == n
    assert len(parse_gift(export.gift(banks))) == n
    for bank in banks.values():
        page = export.html(bank, "s", mode="exam", variant_key="x")
        assert 'const KEYS_B64 = "";' in page
        for item in draw(bank, "x", "s").items:     # no explanation (which gives the answer away) in the page
            assert json.dumps(item.text(item.question.feedback), ensure_ascii=False)[1:-1] not in page, item.id


def test_html_data_cannot_close_its_script_element():
    import dataclasses
    q = dataclasses.replace(BANK.questions[0], prompt="Que fait </script><!-- <b>ceci</b> ?")
    page = export.html(dataclasses.replace(BANK, questions=[q]), "s")
    assert page.count("</script>") == 2
    data = json.loads(re.search(r'id="quiz-data">(.*?)</script>', page, re.S).group(1))
    assert data["questions"][0]["prompt"] == "Que fait </script><!-- <b>ceci</b> ?"


def test_an_exam_html_file_binds_its_student_unless_shared_by_the_class():
    def sheet_of(page, student):
        data = json.loads(re.search(r'id="quiz-data">(.*?)</script>', page, re.S).group(1))
        return sheets.Sheet(student, data["module"], data["mode"], data["variant"], {})

    own = export.html(BANK, "s", mode="exam", variant_key="alice", student="alice")
    shared = export.html(BANK, "s", mode="exam")
    banks = {BANK.module: BANK}
    assert sheets.variant_of(sheet_of(own, "alice"), banks, "s").key == "alice"
    with pytest.raises(sheets.AnswerFileError, match="rendu sous l'identifiant « bob »"):
        sheets.variant_of(sheet_of(own, "bob"), banks, "s")       # the read-only id edited in the page
    assert sheets.variant_of(sheet_of(shared, "bob"), banks, "s").key == export.SHARED_KEY
