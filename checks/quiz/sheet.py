"""Answer files: what `popek quiz take` and the HTML quiz write and `popek quiz grade` reads.

An answer file is JSON and holds only: the format tag, the student id, the part (module), the mode,
the variant's description (key it was drawn from, question count, seed fingerprint bound to the
student id, question ids) and the answers in display positions. Never a key, never the secret.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from popek.checks.quiz.bank import Bank
from popek.checks.quiz.grading import Outcome, grade
from popek.checks.quiz.variant import Variant, draw, fingerprint, seed

FORMAT = "popek-quiz-answers/1"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AnswerFileError(ValueError):
    """An answer file that cannot be graded: `path: problem`."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass
class Sheet:
    student: str
    part: str
    mode: str
    variant: dict
    answers: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"format": FORMAT, "student": self.student, "part": self.part, "mode": self.mode,
                "variant": self.variant, "answers": self.answers}


def new_sheet(student: str, variant: Variant, mode: str) -> Sheet:
    return Sheet(student, variant.module, mode, variant.describe(), {})


def save(sheet: Sheet, path: Path) -> None:
    """Write atomically, so that an interrupted quiz never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(sheet.to_json(), out, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def load(path: Path) -> Sheet:
    """Read and check the shape of an answer file; raise AnswerFileError with the reason."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnswerFileError(path, "fichier introuvable") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AnswerFileError(path, f"JSON illisible ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnswerFileError(path, f"ce n'est pas un fichier de réponses popek (format {FORMAT} attendu)")
    student, part, variant, answers = (data.get(k) for k in ("student", "part", "variant", "answers"))
    if not isinstance(student, str) or not STUDENT_ID.match(student):
        raise AnswerFileError(path, f"identifiant d'étudiant invalide {student!r}")
    if not isinstance(part, str) or not isinstance(variant, dict) or not isinstance(answers, dict):
        raise AnswerFileError(path, "champs part, variant ou answers manquants ou mal formés")
    if not isinstance(variant.get("key"), str) or not isinstance(variant.get("count", 0), int) \
            or not isinstance(variant.get("digest"), str) or not isinstance(variant.get("questions"), list):
        raise AnswerFileError(path, "description de la variante mal formée")
    return Sheet(student, part, str(data.get("mode", "")), variant, answers)


def variant_of(sheet: Sheet, banks: dict[str, Bank], secret: str, path="") -> Variant:
    """Recompute the sheet's variant and check it is the one the student answered."""
    bank = banks.get(sheet.part)
    if bank is None:
        raise AnswerFileError(path, f"partie inconnue {sheet.part!r} (connues : {', '.join(sorted(banks))})")
    key, count, digest = sheet.variant["key"], sheet.variant.get("count", 0), sheet.variant["digest"]
    v = draw(bank, key, secret, count, student=sheet.student)
    if v.digest != digest:
        raw = seed(bank.module, key, secret, count)
        if digest == fingerprint(raw, ""):          # a variant shared by a group: valid under any student id
            v = replace(v, digest=digest)
        elif key != sheet.student and digest == fingerprint(raw, key):
            raise AnswerFileError(path, f"fichier de réponses de « {key} » rendu sous l'identifiant "
                                        f"« {sheet.student} » (identifiant modifié ou copie d'un autre étudiant) : refusé")
        else:
            raise AnswerFileError(path, "la variante ne correspond pas au secret d'examen ni à l'étudiant "
                                        f"« {sheet.student} » (autre secret, identifiant modifié ou fichier modifié)")
    if [i.id for i in v.items] != sheet.variant["questions"]:
        raise AnswerFileError(path, "les questions de la variante ont changé depuis le passage du quiz (banque modifiée ?)")
    unknown = set(sheet.answers) - {i.id for i in v.items}
    if unknown:
        raise AnswerFileError(path, f"réponses à des questions hors variante : {', '.join(sorted(unknown))}")
    return v


def grade_sheet(sheet: Sheet, variant: Variant) -> list[Outcome]:
    """One outcome per question of the variant, in order (unanswered ones score 0)."""
    return [grade(item, sheet.answers.get(item.id)) for item in variant.items]
