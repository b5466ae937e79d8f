"""Grading one answer to one drawn question, with partial credit, and the feedback in French.

Answers are in the variant's display positions (see variant.py). Partial-credit rules, the same in
the terminal, the grader, the HTML quiz and (where Moodle allows) the Moodle/GIFT exports:

- single, truefalse: all or nothing.
- multiple: (correct options chosen − wrong options chosen) / number of correct options, floored at 0
  (Moodle's multichoice with fractions +100/n and −100/n gives the same score).
- numeric: full marks when |answer − expected| ≤ tolerance (absolute), else 0. A comma is accepted as
  the decimal separator.
- short: full marks when the answer equals one accepted form after normalisation (accents, case,
  punctuation and extra spaces ignored), else 0.
- matching: fraction of left items matched to their right item (distractors only add wrong options).
- pgtable: fraction of the table's cells (technique × condition) answered correctly.
- ordering: fraction of the n−1 consecutive pairs of the correct order that the answer keeps
  consecutive and in that order (Moodle's "relative to the next item, excluding last" grading).
- no answer (None) scores 0; an ill-formed answer scores 0 and says so.

The score of a question is that fraction times its points; a variant's score is bounded by [0, max].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from popek.checks.quiz.bank import normalise
from popek.checks.quiz.variant import Item, label


class InvalidAnswer(ValueError):
    """An answer that does not fit its question (wrong type, position out of range)."""


def fr(x: float, digits: int = 2) -> str:
    """A number the French way, for every French UI: at most `digits` decimals and a decimal comma
    ("0,33", "1", "12,5"); no thousands separator, so that years stay years ("2004")."""
    text = f"{round(x, digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text.replace(".", ",")


def shorten(value, limit: int = 60) -> str:
    """A bounded repr for messages and feedback: an ill-formed answer is summarised, never copied whole."""
    try:
        text = repr(value)
    except RecursionError:
        text = "<imbrication trop profonde>"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} caractères)"


@dataclass(frozen=True)
class Outcome:
    question: str
    fraction: float   # in [0, 1]
    points: float
    verdict: str      # Correct | Partiellement correct | Incorrect | Sans réponse | Réponse invalide
    feedback: str     # French, cites the course's section

    @property
    def score(self) -> float:
        return self.fraction * self.points


def numeric_value(item: Item) -> float:
    """The expected number of a numeric item, its parameter substituted."""
    return float(str(item.text(str(item.question.answer))).replace(",", "."))


def key(item: Item):
    """The correct answer of `item`, in the same shape (display positions) as a student's answer."""
    q = item.question
    if q.type == "single":
        return next(p for p, i in enumerate(item.order) if q.choices[i].correct)
    if q.type == "multiple":
        return sorted(p for p, i in enumerate(item.order) if q.choices[i].correct)
    if q.type == "truefalse":
        return q.answer
    if q.type == "numeric":
        return numeric_value(item)
    if q.type == "short":
        return item.text(q.accept[0])
    if q.type == "matching":
        rights = q.right_items()
        where = {r: p for p, r in enumerate(item.right_order)}
        return [where[rights.index(q.pairs[i][1])] for i in item.order]
    if q.type == "ordering":
        where = {i: p for p, i in enumerate(item.order)}
        return [where[i] for i in range(len(q.items))]
    if q.type == "pgtable":
        return {t: dict(row) for t, row in q.table.items()}
    raise AssertionError(q.type)


def expected_text(item: Item) -> str:
    """The correct answer in words, for feedback after grading."""
    q = item.question
    if q.type in ("single", "multiple"):
        return " ; ".join(item.text(c.text) for c in q.choices if c.correct)
    if q.type == "truefalse":
        return "vrai" if q.answer else "faux"
    if q.type == "numeric":
        v = numeric_value(item)
        return fr(v, 6) + (f" {q.unit}" if q.unit else "") + (f" (± {fr(q.tolerance, 6)})" if q.tolerance else "")
    if q.type == "short":
        return " ou ".join(item.text(a) for a in q.accept)
    if q.type == "matching":
        return " ; ".join(f"{item.text(left)} → {item.text(right)}" for left, right in q.pairs)
    if q.type == "ordering":
        return " < ".join(item.text(i) for i in q.items)
    if q.type == "pgtable":
        return " ; ".join(f"{label(t)} : " + ", ".join(f"{label(c).lower()} {v}" for c, v in row.items())
                          for t, row in q.table.items())
    raise AssertionError(q.type)


def _position(value, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise InvalidAnswer(f"position {shorten(value, 40)} hors de 0..{n - 1}")
    return value


def parse_number(value) -> float:
    if isinstance(value, bool):
        raise InvalidAnswer("nombre attendu")
    try:
        if isinstance(value, (int, float)):
            x = float(value)
        elif isinstance(value, str) and len(value) <= 40:
            x = float(value.strip().replace(" ", "").replace("\u202f", "").replace(",", "."))
        else:
            raise InvalidAnswer(f"nombre attendu, trouvé {shorten(value, 40)}")
    except (ValueError, OverflowError):
        raise InvalidAnswer(f"nombre attendu, trouvé {shorten(value, 40)}") from None
    if not math.isfinite(x):
        raise InvalidAnswer("nombre fini attendu")
    return x


def fraction(item: Item, answer) -> float:
    """The fraction of the points earned by `answer` (raises InvalidAnswer for an ill-formed one)."""
    q = item.question
    if answer is None:
        return 0.0
    if q.type == "single":
        return 1.0 if _position(answer, len(item.order)) == key(item) else 0.0
    if q.type == "multiple":
        if not isinstance(answer, list):
            raise InvalidAnswer("liste de positions attendue")
        chosen = {_position(a, len(item.order)) for a in answer}
        right = set(key(item))
        return max(0.0, (len(chosen & right) - len(chosen - right)) / len(right))
    if q.type == "truefalse":
        if not isinstance(answer, bool):
            raise InvalidAnswer("vrai ou faux attendu")
        return 1.0 if answer == q.answer else 0.0
    if q.type == "numeric":
        # A hair of slack so that 0.1 + 0.2 style representation errors never cost a point.
        return 1.0 if abs(parse_number(answer) - numeric_value(item)) <= q.tolerance + 1e-9 else 0.0
    if q.type == "short":
        if not isinstance(answer, str):
            raise InvalidAnswer("texte attendu")
        return 1.0 if normalise(answer) in {normalise(item.text(a)) for a in q.accept} else 0.0
    if q.type == "matching":
        expected = key(item)
        if not isinstance(answer, list) or len(answer) != len(expected):
            raise InvalidAnswer(f"liste de {len(expected)} positions attendue")
        got = [None if a is None else _position(a, len(item.right_order)) for a in answer]
        return sum(g == e for g, e in zip(got, expected)) / len(expected)
    if q.type == "ordering":
        n = len(q.items)
        if not isinstance(answer, list) or sorted(_position(a, n) for a in answer) != list(range(n)):
            raise InvalidAnswer(f"une permutation des positions 0..{n - 1} attendue")
        rank = {p: r for r, p in enumerate(answer)}
        correct = key(item)
        kept = sum(rank[correct[k + 1]] == rank[correct[k]] + 1 for k in range(n - 1))
        return kept / (n - 1)
    if q.type == "pgtable":
        if not isinstance(answer, dict):
            raise InvalidAnswer("tableau technique → {condition: OK|KO} attendu")
        cells = [(t, c, v) for t, row in q.table.items() for c, v in row.items()]
        good = sum(isinstance(answer.get(t), dict) and answer[t].get(c) == v for t, c, v in cells)
        return good / len(cells)
    raise AssertionError(q.type)


def grade(item: Item, answer) -> Outcome:
    """Grade one answer: fraction, verdict and French feedback citing the course section."""
    q = item.question
    try:
        f = fraction(item, answer)
        verdict = ("Sans réponse" if answer is None else "Correct" if f >= 1 else
                   "Partiellement correct" if f > 0 else "Incorrect")
        note = ""
    except InvalidAnswer as exc:
        f, verdict, note = 0.0, "Réponse invalide", f" ({exc})"
    lines = [f"{verdict}{note} : {fr(f * q.points)}/{fr(q.points)} pt."]
    if q.type in ("single", "multiple") and answer is not None and verdict != "Réponse invalide":
        chosen = [answer] if q.type == "single" else answer
        for p in chosen:
            c = q.choices[item.order[p]]
            if c.feedback:
                lines.append(f"« {item.text(c.text)} » : {item.text(c.feedback)}")
    if f < 1:
        lines.append(f"Réponse attendue : {expected_text(item)}")
    lines.append(item.text(q.feedback))
    lines.append(f"Voir le cours, section « {item.text(q.section)} ».")
    return Outcome(q.id, f, q.points, verdict, "\n".join(lines))
