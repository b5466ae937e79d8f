"""The class roster: a CSV with a header, one student a line (`student_id,nom,prenom,email`).

Only `student_id` is required (letters, digits, `. _ @ -`, like quiz answer files); a bad line is
reported with its line number and the others are kept. Blank lines and lines starting with `#` are
skipped.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from popek.checks.quiz.sheet import STUDENT_ID

COLUMNS = ("student_id", "nom", "prenom", "email")


@dataclasses.dataclass(frozen=True)
class Student:
    id: str
    nom: str = ""
    prenom: str = ""
    email: str = ""
    line: int = 0


class RosterError(ValueError):
    """The roster as a whole is unusable (unreadable, no header with student_id)."""


def parse(text: str, where: str = "roster") -> tuple[list[Student], list[str]]:
    """(students, problems): each problem is `where:LINE: message` in French."""
    rows = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise RosterError(f"{where} : liste d'étudiants vide")
    header_line, header = rows[0]
    names = [h.strip().lower() for h in next(csv.reader([header]))]
    if "student_id" not in names:
        raise RosterError(f"{where}:{header_line}: en-tête sans colonne student_id "
                          f"(attendu : {','.join(COLUMNS)}), trouvé {header!r}")
    students, problems, seen = [], [], {}
    for n, line in rows[1:]:
        try:
            cells = next(csv.reader(io.StringIO(line)))
        except csv.Error as exc:
            problems.append(f"{where}:{n}: ligne CSV illisible ({exc})")
            continue
        if len(cells) > len(names):
            problems.append(f"{where}:{n}: {len(cells)} colonnes pour {len(names)} dans l'en-tête")
            continue
        row = dict(zip(names, (c.strip() for c in cells)))
        sid = row.get("student_id", "")
        if not STUDENT_ID.fullmatch(sid):
            problems.append(f"{where}:{n}: identifiant d'étudiant invalide {sid!r} (lettres, chiffres, . _ @ -)")
            continue
        if sid in seen:
            problems.append(f"{where}:{n}: étudiant {sid} en double (déjà ligne {seen[sid]})")
            continue
        email = row.get("email", "")
        if email and "@" not in email:
            problems.append(f"{where}:{n}: adresse électronique invalide {email!r} pour {sid}")
            continue
        seen[sid] = n
        students.append(Student(sid, row.get("nom", ""), row.get("prenom", ""), email, n))
    return students, problems


def read(path: Path) -> tuple[list[Student], list[str]]:
    """parse() of a roster file; RosterError when it cannot be read at all."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")     # a spreadsheet's export often starts with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path} : illisible ({exc})") from None
    return parse(text, str(path))
