"""Exams leak nothing: no question id, no answer word outside the questions' own visible text, in the
exam page or in an answer file; no short or numeric answer written in another question of the same
variant; the right column of a matching question never in the key's order.

"Answer words" of a question: the normalised words (4+ letters, or numbers) of its correct answer that
its prompt and wrong options do not contain, i.e. what tells the right option from the others.
"""
import json
import re

import pytest

from popek import paths
from popek.checks.quiz import export
from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import load_banks, normalise
from popek.checks.quiz.grading import expected_text, key
from popek.checks.quiz.variant import draw, present

BANKS = load_banks(paths.QUIZZES_DIR)
SECRET = "examen-2026-fuite"


def words(text):
    return {w for w in normalise(text).split() if len(w) >= 4}


def visible(view) -> list[str]:
    out = [view["prompt"], view.get("unit", "")]
    for k in ("options", "lefts", "rights", "items"):
        out += view.get(k, [])
    for k in ("techniques", "conditions"):
        out += [label for _, label in view.get(k, [])] + [name for name, _ in view.get(k, [])]
    return out


def answer_words(item) -> set[str]:
    q, view = item.question, present(item)
    if q.type in ("single", "multiple"):
        right = [item.text(c.text) for c in q.choices if c.correct]
        wrong = [item.text(c.text) for c in q.choices if not c.correct]
        return set().union(*map(words, right)) - set().union(words(view["prompt"]), *map(words, wrong))
    if q.type in ("truefalse", "pgtable"):
        return set()              # vrai/faux, OK/KO: the page shows both for every question
    if q.type == "matching":
        return set()              # every right option is shown; the key is the pairing, checked below
    return words(expected_text(item)) - set().union(*map(words, visible(view)))


def values(data) -> list[str]:
    """Every string and number of decoded JSON (keys are popek's own field names, the same for every page)."""
    out, stack = [], [data]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack += list(v.values())
        elif isinstance(v, list):
            stack += v
        elif v is not None:
            out.append(str(v))
    return out


def metadata(page: str) -> list[str]:
    """What the exam page carries besides what the student is meant to read: its data minus the texts
    shown (the template around it is the same for every page and every question, so it cannot leak one)."""
    data_json = re.search(r'<script type="application/json" id="quiz-data">(.*?)</script>', page, re.S).group(1)
    data = json.loads(data_json)
    for view in data["questions"]:
        for k in ("prompt", "unit", "options", "lefts", "rights", "items", "techniques", "conditions"):
            view.pop(k, None)
    data.pop("title")
    return values(data) + re.findall(r'data-[a-z]+="([^"]*)"', page.replace(data_json, ""))


@pytest.mark.parametrize("part", sorted(BANKS))
def test_exam_page_and_answer_file_hold_no_answer_word(part, tmp_path, capsys):
    bank = BANKS[part]
    checked, hits, words_searched = 0, [], 0
    for n in range(12):
        student = f"etu{n:03d}"
        page = export.html(bank, SECRET, mode="exam", variant_key=student, student=student)
        v = draw(bank, student, SECRET)
        s = sheets.new_sheet(student, v, "exam")
        s.answers = {i.ref: (None if i.question.type in ("short", "numeric") else key(i)) for i in v.items}
        sheets.save(s, tmp_path / f"{student}.json")
        saved = json.loads((tmp_path / f"{student}.json").read_text(encoding="utf-8"))
        hay = set(normalise(" ".join(metadata(page) + values(saved))).split())
        for item in v.items:
            assert item.id not in page and item.id not in (tmp_path / f"{student}.json").read_text()
            aw = answer_words(item) - words(f"{bank.module} {bank.title}")   # the part's name is the page's title
            words_searched += len(aw)
            hits += [(item.id, w) for w in aw if w in hay]
            checked += 1
    # The search finds what it looks for: the question ids alone give answer words away.
    control = [(q.id, w) for q in bank.questions for _, i in export._instances(q) for w in answer_words(i)
               if w in set(normalise(q.id).split())]
    with capsys.disabled():
        print(f"\n{part} : {checked} questions de 12 pages d'examen et 12 fichiers de réponses, {words_searched} mots "
              f"de réponse cherchés : {len(hits)} trouvé(s) {hits[:5]} ; témoin : les identifiants de question de la "
              f"banque contiennent {len(control)} mot(s) de réponse, ex. {control[:3]}")
    assert not hits


@pytest.mark.parametrize("part", sorted(BANKS))
def test_no_question_answers_another_of_its_variant(part):
    """A short answer (its first accepted form, the course's word; the others are spellings and synonyms
    such as « un programme ») or a numeric answer of 3+ digits (a year) never appears in the text another
    question of the same variant shows. Choice questions show their answers by nature and are not searched."""
    bank = BANKS[part]
    found = set()
    for n in range(300):
        v = draw(bank, f"etu{n:03d}", SECRET)
        views = {i.ref: f" {normalise(' '.join(visible(present(i))))} " for i in v.items}
        for item in v.items:
            q = item.question
            if q.type == "short":
                forms = {normalise(item.text(q.accept[0]))}
            elif q.type == "numeric" and len(expected_text(item).split()[0]) >= 3:
                forms = {normalise(expected_text(item).split()[0])}
            else:
                continue
            for other in v.items:
                hit = [f for f in forms if f and f" {f} " in views[other.ref]]
                if other is not item and hit:
                    found.add((item.id, other.id, tuple(hit)))
    assert not found, sorted(found)


@pytest.mark.parametrize("part", sorted(BANKS))
def test_excluded_questions_are_never_drawn_together_and_every_variant_has_every_pool(part):
    bank = BANKS[part]
    excl = bank.exclusions()
    for n in range(500):
        v = draw(bank, f"etu{n:03d}", SECRET)
        ids = {i.id for i in v.items}
        assert len(v.items) == len(bank.pools())
        for qid in ids:
            assert not excl.get(qid, set()) & ids, (qid, excl[qid] & ids)


def test_matching_right_column_is_never_in_key_order():
    for bank in BANKS.values():
        for q in bank.questions:
            if q.type != "matching":
                continue
            for n in range(200):
                v = draw(bank, f"etu{n:03d}", SECRET)
                item = next((i for i in v.items if i.id == q.id), None)
                if item is not None:
                    assert key(item) != list(range(len(item.order))), q.id
