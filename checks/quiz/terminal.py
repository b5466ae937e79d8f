"""The interactive terminal quiz, in French, driven through plain text streams (a test feeds stdin lines).

Practice mode grades each answer at once and shows its feedback; exam mode shows nothing but
"réponse enregistrée" until `popek quiz grade`. After every answer the sheet is saved, so a rerun with
the same answer file resumes at the first unanswered question. Neither mode prints a key: in exam mode
only the prompts and options are printed.
"""
from __future__ import annotations

import re
import string
from pathlib import Path
from typing import TextIO

from popek.checks.quiz import sheet as sheets
from popek.checks.quiz.grading import InvalidAnswer, fr, grade, parse_number
from popek.checks.quiz.variant import Item, Variant, present

LETTERS = string.ascii_lowercase
TYPE_FR = {"single": "choix unique", "multiple": "choix multiples", "truefalse": "vrai ou faux",
           "numeric": "réponse numérique", "short": "réponse courte", "matching": "association",
           "ordering": "remise en ordre", "pgtable": "tableau de Popek et Goldberg"}
PASS = "-"


class Interrupted(Exception):
    """stdin closed before the end: the sheet is saved, a rerun resumes."""


def _letters(text: str, n: int) -> list[int]:
    tokens = [t for t in re.split(r"[\s,;]+", text.strip().lower()) if t]
    out = []
    for t in tokens:
        if len(t) == 1 and t in LETTERS[:n]:
            out.append(LETTERS.index(t))
        elif t.isdigit() and 1 <= int(t) <= n:
            out.append(int(t) - 1)
        else:
            raise InvalidAnswer(f"« {t} » n'est pas une des lettres a–{LETTERS[n - 1]}")
    return out


def parse(view: dict, line: str):
    """Turn one typed line into an answer in display positions (raise InvalidAnswer with a French reason)."""
    t = view["type"]
    line = line.strip()
    if t == "single":
        got = _letters(line, len(view["options"]))
        if len(got) != 1:
            raise InvalidAnswer("une seule lettre attendue")
        return got[0]
    if t == "multiple":
        if line.lower() in ("aucune", "aucun", "rien"):
            return []
        got = _letters(line, len(view["options"]))
        if not got:
            raise InvalidAnswer("une ou plusieurs lettres attendues (ou « aucune »)")
        return sorted(set(got))
    if t == "truefalse":
        word = line.lower()
        if word in ("v", "vrai", "o", "oui", "true"):
            return True
        if word in ("f", "faux", "n", "non", "false"):
            return False
        raise InvalidAnswer("« vrai » ou « faux » attendu")
    if t == "numeric":
        parse_number(line)
        return line.replace(",", ".").replace(" ", "")
    if t == "short":
        if not line:
            raise InvalidAnswer("une réponse non vide attendue")
        return line
    if t == "matching":
        got = _letters(line, len(view["rights"]))
        if len(got) != len(view["lefts"]):
            raise InvalidAnswer(f"{len(view['lefts'])} lettres attendues, une par élément de gauche")
        return got
    if t == "ordering":
        n = len(view["items"])
        got = _letters(line, n)
        if sorted(got) != list(range(n)):
            raise InvalidAnswer(f"chacune des {n} lettres exactement une fois")
        return got
    raise AssertionError(t)


def _show(view: dict, number: int, total: int, out: TextIO) -> None:
    print(f"\nQuestion {number}/{total} — {TYPE_FR[view['type']]} ({fr(view['points'])} pt)", file=out)
    print(view["prompt"], file=out)
    t = view["type"]
    if t in ("single", "multiple"):
        for i, o in enumerate(view["options"]):
            print(f"  {LETTERS[i]}) {o}", file=out)
    elif t == "matching":
        for i, left in enumerate(view["lefts"]):
            print(f"  {i + 1}. {left}", file=out)
        print("  à associer à :", file=out)
        for i, r in enumerate(view["rights"]):
            print(f"  {LETTERS[i]}) {r}", file=out)
    elif t == "ordering":
        for i, it in enumerate(view["items"]):
            print(f"  {LETTERS[i]}) {it}", file=out)


HINT = {"single": "une lettre", "multiple": "les lettres choisies, ex. « a c », ou « aucune »",
        "truefalse": "vrai ou faux", "numeric": "un nombre", "short": "quelques mots",
        "matching": "une lettre par élément de gauche, dans l'ordre 1, 2, …, ex. « b a c »",
        "ordering": "les lettres dans le bon ordre, ex. « c a b »"}


def _read(inp: TextIO, out: TextIO, prompt: str) -> str:
    print(prompt, end="", file=out, flush=True)
    line = inp.readline()
    if not line:
        raise Interrupted()
    return line.rstrip("\n")


def _ask(item: Item, number: int, total: int, inp: TextIO, out: TextIO):
    view = present(item)
    _show(view, number, total, out)
    if view["type"] == "pgtable":
        conds = view["conditions"]
        print("  Pour chaque technique, donnez OK ou KO pour : " + ", ".join(c[1] for c in conds)
              + f" (ex. « OK KO OK » ; « {PASS} » pour passer la question)", file=out)
        answer = {}
        for tech, tech_label in view["techniques"]:
            while True:
                line = _read(inp, out, f"  {tech_label} : ").strip()
                if line == PASS:
                    return None
                cells = line.upper().replace(",", " ").split()
                if len(cells) == len(conds) and all(c in ("OK", "KO") for c in cells):
                    answer[tech] = {c[0]: v for c, v in zip(conds, cells)}
                    break
                print(f"  Réponse non comprise : {len(conds)} valeurs OK ou KO attendues. Réessayez.", file=out)
        return answer
    while True:
        line = _read(inp, out, f"Votre réponse ({HINT[view['type']]} ; « {PASS} » pour passer) : ")
        if line.strip() == PASS:
            return None
        try:
            return parse(view, line)
        except InvalidAnswer as exc:
            print(f"Réponse non comprise : {exc}. Réessayez.", file=out)


def run(variant: Variant, sheet: sheets.Sheet, path: Path, mode: str, inp: TextIO, out: TextIO) -> bool:
    """Ask every unanswered question of `variant`, saving `sheet` at `path` after each answer.

    mode: "practice" (feedback at once) or "exam" (nothing shown until grading).
    Returns True when every question has an answer (or was passed), False if stdin closed first.
    """
    total = len(variant.items)
    done = sum(1 for i in variant.items if i.ref in sheet.answers)
    mode_fr = "entraînement" if mode == "practice" else "examen"
    print(f"Quiz « {variant.module} » — étudiant {sheet.student}, mode {mode_fr}, {total} questions "
          f"({fr(variant.max_score)} pt).", file=out)
    print(f"Les réponses sont enregistrées dans {path} après chaque question.", file=out)
    if done:
        print(f"Reprise : {done}/{total} questions déjà répondues.", file=out)
    try:
        for n, item in enumerate(variant.items, 1):
            if item.ref in sheet.answers:
                continue
            answer = _ask(item, n, total, inp, out)
            sheet.answers[item.ref] = answer
            sheets.save(sheet, path)
            if mode == "practice":
                print(grade(item, answer).feedback, file=out)
            else:
                print("Réponse enregistrée.", file=out)
    except Interrupted:
        answered = sum(1 for i in variant.items if i.ref in sheet.answers)
        print(f"\nQuiz interrompu : {answered}/{total} réponses enregistrées dans {path}. "
              "Relancez la même commande pour reprendre.", file=out)
        return False
    if mode == "practice":
        outcomes = sheets.grade_sheet(sheet, variant)
        score = sum(o.score for o in outcomes)
        print(f"\nScore : {fr(score)}/{fr(variant.max_score)} pt ({fr(100 * score / variant.max_score, 0)} %).", file=out)
    else:
        print(f"\nQuiz terminé : vos réponses sont enregistrées dans {path}. "
              "La note sera donnée à la correction.", file=out)
    return True
