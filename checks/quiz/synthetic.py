"""Synthetic classes of answer files, for the grader's tests and benchmark (never for grading students)."""
from __future__ import annotations

import random
from pathlib import Path

from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.bank import Bank
from popek.checks.quiz.grading import key, numeric_value
from popek.checks.quiz.variant import Item, draw, present


def random_answer(rng: random.Random, item: Item):
    """A well-formed answer picked at random (display positions), right about as often as chance allows."""
    v = present(item)
    t = v["type"]
    if t == "single":
        return rng.randrange(len(v["options"]))
    if t == "multiple":
        return sorted(rng.sample(range(len(v["options"])), rng.randint(0, len(v["options"]))))
    if t == "truefalse":
        return rng.random() < 0.5
    if t == "numeric":
        return str(numeric_value(item) + rng.choice([0, 0, 1, -1, 10]))
    if t == "short":
        return rng.choice([key(item), "je ne sais pas"])
    if t == "matching":
        return [rng.randrange(len(v["rights"])) for _ in v["lefts"]]
    if t == "ordering":
        return rng.sample(range(len(v["items"])), len(v["items"]))
    if t == "pgtable":
        return {tech: {c: rng.choice(["OK", "KO"]) for c, _ in v["conditions"]} for tech, _ in v["techniques"]}
    raise AssertionError(t)


def write_class(bank: Bank, secret: str, directory: Path, kinds: list[str], seed: int = 1974) -> list[Path]:
    """One answer file per entry of `kinds` ("perfect", "random", "empty", "passed" or "malformed"),
    for students etu000, etu001, … ; returns their paths."""
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, kind in enumerate(kinds):
        student = f"etu{n:03d}"
        path = directory / f"{student}.json"
        if kind == "malformed":
            path.write_text('{"format": "popek-quiz-answers/1", "student": "' + student + '", ', encoding="utf-8")
        else:
            v = draw(bank, student, secret)
            s = sheets.new_sheet(student, v, "exam")
            if kind == "perfect":
                s.answers = {i.ref: key(i) for i in v.items}
            elif kind == "random":
                s.answers = {i.ref: random_answer(rng, i) for i in v.items}
            elif kind == "passed":
                s.answers = {i.ref: None for i in v.items}
            elif kind != "empty":
                raise ValueError(kind)
            sheets.save(s, path)
        paths.append(path)
    return paths
