"""The class roster: a CSV with a header, one student a line, columns found by their name.

Two shapes are read:
  - popek's own: `student_id,nom,prenom,email` (only `student_id` is required);
  - the participants list a teacher downloads from Moodle (Participants → select all → "Download table
    data as" CSV: `user/action_redir.php` writes "First name", "Last name" and the site's identity
    fields — "Email address", "ID number", "Username"… — in the teacher's language, e.g. "Prénom",
    "Nom", "Adresse de courriel", "Numéro d'identification", "Nom d'utilisateur"). The student id is
    the "ID number" column, else "Username"; a list with neither is refused with one message that
    names the missing column. Commas or semicolons (a French spreadsheet's CSV) are both read.

Ids are what Keystone and a file name can hold: letters, digits, `. _ @ -`, starting with a letter or
digit (like quiz answer files), at most MAX_ID characters (the project is `<prefix>-<id>`, and
Keystone's project names hold 64). A bad line is reported with its line number and the others are
kept. Blank lines and lines starting with `#` are skipped.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from popek.checks.quiz.sheet import STUDENT_ID

COLUMNS = ("student_id", "nom", "prenom", "email")

#: Longest student id: `<prefix>-<id>` must fit Keystone's 64-character project names with a prefix
#: of up to 8 characters.
MAX_ID = 55

#: Header (lower case) -> popek's column, for the LMS exports (Moodle's English and French strings).
ALIASES = {
    "student_id": "student_id", "id number": "student_id", "numéro d'identification": "student_id",
    "idnumber": "student_id",
    "username": "username", "nom d'utilisateur": "username",
    "nom": "nom", "last name": "nom", "surname": "nom", "lastname": "nom",
    "prenom": "prenom", "prénom": "prenom", "first name": "prenom", "firstname": "prenom",
    "email": "email", "email address": "email", "adresse de courriel": "email", "adresse courriel": "email",
    "courriel": "email",
}


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
    delimiter = ";" if header.count(";") > header.count(",") else ","
    raw = [h.strip() for h in next(csv.reader([header], delimiter=delimiter))]
    names = [ALIASES.get(h.lower().replace("\u2019", "'"), h.lower()) for h in raw]
    if "student_id" not in names:
        if "username" not in names:
            raise RosterError(
                f"{where}:{header_line}: colonne manquante « student_id » (liste de popek) ou « Numéro "
                f"d'identification » / « ID number » / « Nom d'utilisateur » / « Username » (liste des "
                f"participants de Moodle : ajoutez ce champ d'identité) ; en-tête trouvé : {header!r}")
        names = ["student_id" if n == "username" else n for n in names]
    students, problems, seen = [], [], {}
    for n, line in rows[1:]:
        try:
            cells = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        except csv.Error as exc:
            problems.append(f"{where}:{n}: ligne CSV illisible ({exc})")
            continue
        if len(cells) > len(names):
            problems.append(f"{where}:{n}: {len(cells)} colonnes pour {len(names)} dans l'en-tête")
            continue
        row = dict(zip(names, (c.strip() for c in cells)))
        sid = row.get("student_id", "")
        if not STUDENT_ID.fullmatch(sid) or len(sid) > MAX_ID:
            problems.append(f"{where}:{n}: identifiant d'étudiant invalide {sid!r} (lettres, chiffres, . _ @ -, "
                            f"{MAX_ID} caractères au plus)")
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
