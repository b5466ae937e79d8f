"""Variants and grading: the documented partial-credit rules, and properties over every variant."""
import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import given as h_given
from hypothesis import strategies as st

from popek.checks.quiz.bank import load_bank
from popek.checks.quiz.grading import fraction, grade, key
from popek.checks.quiz.variant import draw, present
from quiz_helpers import DATA, answer_strategy

BANK = load_bank(DATA / "demo.yaml")
SETTINGS = settings(database=None, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
students = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=12)


def item_of(qid, student="alice", secret="s"):
    for n in range(200):  # a student whose draw includes qid (pools)
        v = draw(BANK, f"{student}{n}", secret)
        for it in v.items:
            if it.id == qid:
                return it
    raise AssertionError(qid)


def test_variants_are_deterministic_and_depend_on_student_and_secret():
    a = draw(BANK, "alice", "s")
    assert a == draw(BANK, "alice", "s")
    assert a.digest != draw(BANK, "alice", "t").digest != draw(BANK, "bob", "s").digest
    assert len(a.items) == 8 and a.max_score == 10      # one per pool
    few = draw(BANK, "alice", "s", count=3)
    assert len(few.items) == 3 and few.describe()["count"] == 3


def test_multiple_choice_partial_credit():
    it = item_of("demo-benefits")
    right = key(it)
    wrong = [p for p in range(5) if p not in right]
    assert fraction(it, right) == 1
    assert fraction(it, right[:2]) == pytest.approx(2 / 3)
    assert fraction(it, right[:2] + wrong[:1]) == pytest.approx(1 / 3)
    assert fraction(it, right[:1] + wrong) == 0        # floored at 0, never negative
    assert fraction(it, []) == 0


def test_ordering_counts_consecutive_pairs_kept():
    it = item_of("demo-history")
    k = key(it)                                          # display positions, correct order
    assert fraction(it, k) == 1
    assert fraction(it, [k[1], k[0], k[2], k[3]]) == pytest.approx(1 / 3)   # only (3rd, 4th) kept
    assert fraction(it, list(reversed(k))) == 0


def test_matching_pgtable_numeric_short_rules():
    m = item_of("demo-services")
    k = key(m)
    assert fraction(m, k[:2] + [None, None]) == 0.5
    pg = item_of("demo-pgtable")
    table = key(pg)
    table["conteneur"]["equivalence"] = "OK"
    assert fraction(pg, table) == pytest.approx(8 / 9)
    num = item_of("demo-vtx-year")
    assert fraction(num, "2004") == fraction(num, 2004.0) == 1 and fraction(num, "2005") == 0
    short = item_of("demo-kvm")
    assert fraction(short, " kernel-based virtual MACHINE ") == 1 and fraction(short, "Xen") == 0


def test_feedback_is_french_and_cites_the_section():
    it = item_of("demo-pg-count")
    good = grade(it, key(it))
    assert good.verdict == "Correct" and "Équivalence, efficacité, contrôle." in good.feedback
    bad = grade(it, (key(it) + 1) % 3)
    assert bad.verdict == "Incorrect" and "Réponse attendue : Trois conditions" in bad.feedback
    assert "Voir le cours, section « Principes de Popek et Goldberg »." in bad.feedback
    assert grade(it, 99).verdict == "Réponse invalide" and grade(it, None).verdict == "Sans réponse"


@SETTINGS
@h_given(students, st.text(min_size=1, max_size=8), st.integers(0, 9))
def test_every_variant_is_gradable_and_its_key_scores_full_marks(student, secret, count):
    v = draw(BANK, student, secret, count)
    assert 1 <= len(v.items) <= 8
    for it in v.items:
        assert grade(it, key(it)).fraction == 1
        assert grade(it, None).score == 0


@SETTINGS
@h_given(students, st.data())
def test_scores_are_bounded_and_fixing_an_answer_never_lowers_them(student, data):
    v = draw(BANK, student, "s")
    answers = {it.id: data.draw(answer_strategy(it)) for it in v.items}
    total = sum(grade(it, answers[it.id]).score for it in v.items)
    assert 0 <= total <= v.max_score
    for it in v.items:
        o = grade(it, answers[it.id])
        assert 0 <= o.score <= it.question.points
        fixed = dict(answers, **{it.id: key(it)})
        assert sum(grade(i, fixed[i.id]).score for i in v.items) >= total - 1e-9


@SETTINGS
@h_given(students, st.data())
def test_one_more_correct_part_never_lowers_a_question_score(student, data):
    v = draw(BANK, student, "s")
    for it in v.items:
        t, k = it.question.type, key(it)
        a = data.draw(answer_strategy(it))
        if a is None or t not in ("multiple", "matching", "pgtable"):
            continue
        before = fraction(it, a)
        if t == "multiple":
            wrong = [p for p in a if p not in k]
            better = sorted(set(a) | {data.draw(st.sampled_from(k))}) if not wrong or data.draw(st.booleans()) \
                else [p for p in a if p != wrong[0]]
        elif t == "matching":
            i = data.draw(st.integers(0, len(k) - 1))
            better = a[:i] + [k[i]] + a[i + 1:]
        else:
            tech = data.draw(st.sampled_from(sorted(k)))
            cond = data.draw(st.sampled_from(sorted(k[tech])))
            better = {tt: dict(row) for tt, row in a.items()}
            better[tech][cond] = k[tech][cond]
        assert fraction(it, better) >= before


@SETTINGS
@h_given(students, students)
def test_two_students_rarely_share_a_variant(a, b):
    assume(a != b)
    va, vb = draw(BANK, a, "exam"), draw(BANK, b, "exam")
    shape = lambda v: [(i.id, tuple(sorted(i.params.items())), i.order, i.right_order) for i in v.items]  # noqa: E731
    assert shape(va) != shape(vb)


def test_views_hold_no_key():
    for n in range(30):
        for it in draw(BANK, f"s{n}", "s").items:
            view = present(it)
            assert not {"answer", "correct", "table", "accept", "pairs", "key"} & set(view)


def test_the_shipped_banks_variants_are_gradable_and_keys_score_full_marks():
    from popek import paths
    from popek.checks.quiz.bank import load_banks
    for bank in load_banks(paths.QUIZZES_DIR).values():
        for n in range(20):
            v = draw(bank, f"etu{n}", "s")
            assert len(v.items) == len(bank.pools())
            for it in v.items:
                assert grade(it, key(it)).fraction == 1, it.id
                assert grade(it, None).fraction == 0
