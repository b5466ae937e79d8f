"""Shared by the quiz tests: the small test bank, and answers built from a variant's views."""
from pathlib import Path

from hypothesis import strategies as st

from popek.checks.quiz.grading import key
from popek.checks.quiz.variant import present

DATA = Path(__file__).parent / "data" / "quiz"


def answer_strategy(item):
    """Any well-formed answer to `item` (or None), in display positions."""
    v = present(item)
    t = v["type"]
    if t == "single":
        s = st.integers(0, len(v["options"]) - 1)
    elif t == "multiple":
        s = st.lists(st.integers(0, len(v["options"]) - 1), unique=True)
    elif t == "truefalse":
        s = st.booleans()
    elif t == "numeric":
        s = st.one_of(st.just(key(item)), st.integers(-5000, 5000), st.floats(allow_nan=False, allow_infinity=False))
    elif t == "short":
        s = st.one_of(st.just(key(item)), st.text(max_size=20))
    elif t == "matching":
        s = st.lists(st.one_of(st.none(), st.integers(0, len(v["rights"]) - 1)),
                     min_size=len(v["lefts"]), max_size=len(v["lefts"]))
    elif t == "ordering":
        s = st.permutations(list(range(len(v["items"]))))
    elif t == "pgtable":
        s = st.fixed_dictionaries({tech: st.fixed_dictionaries({c: st.sampled_from(["OK", "KO"]) for c, _ in v["conditions"]})
                                   for tech, _ in v["techniques"]})
    else:
        raise AssertionError(t)
    return st.one_of(st.none(), s)
