"""Answer files: what `popek quiz take` and the HTML quiz write and `popek quiz grade` reads.

An answer file is JSON and holds only: the format tag, the student id, the part (module), the mode,
the variant's description (key it was drawn from, question count, seed fingerprint bound to the
student id, opaque question references) and the answers in display positions, keyed by those
references. Never a key, never the secret, never a question id (ids such as `cloud-bloc-cinder` would
give answers away); an exam page shared by a class adds a per-copy `nonce`.

Reading is bounded, because one crafted file must never stop a class from being graded: a regular
file only (a FIFO or a device is refused without being opened for reading in blocking mode), at most
MAX_BYTES, JSON nested at most MAX_DEPTH deep, integers of at most MAX_DIGITS digits, finite numbers,
strings of at most MAX_STRING characters, at most MAX_ITEMS entries per list or object. Any breach
rejects that file alone with a French reason.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from popek.checks.quiz.bank import Bank
from popek.checks.quiz.grading import Outcome, grade, shorten
from popek.checks.quiz.variant import Variant, draw, fingerprint, seed

FORMAT = "popek-quiz-answers/1"
#: Student ids: always tested with `valid_student` (fullmatch: "alice\\n" is refused, unlike with `$`).
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
NONCE = re.compile(r"[0-9a-f]{32}")
MAX_BYTES = 256 * 1024       # a 60-question answer file is ~5 KiB
MAX_DEPTH = 8                # pgtable answers are the deepest: document > answers > ref > technique > cell
MAX_DIGITS = 18              # integers beyond this are not positions, years or sizes
MAX_STRING = 2000            # characters per string (a short answer, an id)
MAX_ITEMS = 1000             # entries per list or object


def valid_student(student) -> bool:
    """A student id popek accepts: letters, digits, . _ @ -, 1 to 64 characters, nothing else (no newline)."""
    return isinstance(student, str) and STUDENT_ID.fullmatch(student) is not None


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
    answers: dict = field(default_factory=dict)   # opaque reference -> answer in display positions
    nonce: str = ""                               # per-copy nonce of a class-wide exam page ("" otherwise)

    def to_json(self) -> dict:
        out = {"format": FORMAT, "student": self.student, "part": self.part, "mode": self.mode,
               "variant": self.variant, "answers": self.answers}
        if self.nonce:
            out["nonce"] = self.nonce
        return out


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


def read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_BYTES (raise AnswerFileError otherwise).

    O_NONBLOCK: opening a FIFO for reading must not wait for a writer; fstat then refuses it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise AnswerFileError(path, "fichier introuvable") from None
    except OSError as exc:
        raise AnswerFileError(path, f"illisible ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AnswerFileError(path, "ce n'est pas un fichier ordinaire (tube, périphérique ou dossier) : refusé")
        if st.st_size > MAX_BYTES:
            raise AnswerFileError(path, f"fichier trop gros ({st.st_size} octets, au plus {MAX_BYTES}) : refusé")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise AnswerFileError(path, f"illisible ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise AnswerFileError(path, f"fichier trop gros (plus de {MAX_BYTES} octets) : refusé")
    return raw


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"entier de {len(digits)} chiffres (au plus {MAX_DIGITS})")
    return int(text)


def _finite_float(text: str) -> float:
    if len(text) > 40:
        raise ValueError(f"nombre de {len(text)} caractères")
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"nombre hors limites {text[:20]}")
    return x


def _no_constant(name: str):
    raise ValueError(f"{name} n'est pas du JSON valide")


def _check_shape(data) -> None:
    """Depth, sizes and string lengths of decoded JSON, walked iteratively (no recursion to exhaust)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise ValueError(f"texte de {len(value)} caractères (au plus {MAX_STRING})")
        elif isinstance(value, (list, dict)):
            if depth > MAX_DEPTH:
                raise ValueError(f"imbrication de plus de {MAX_DEPTH} niveaux")
            if len(value) > MAX_ITEMS:
                raise ValueError(f"{len(value)} éléments dans une liste ou un objet (au plus {MAX_ITEMS})")
            children = list(value.values()) + list(value) if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children)


# A string, or an unterminated one up to the end: it always matches from a quote, so blanking is linear.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+\\?(?:"|\Z)', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def parse_bounded(raw: bytes):
    """Decode an answer file's bytes as bounded JSON (raise ValueError with a French reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("ce n'est pas du texte UTF-8 (fichier binaire ?)") from None
    # Nesting deeper than MAX_DEPTH is refused before decoding: json's C decoder recurses once per level.
    # Strings are blanked first (their brackets do not nest), then only the brackets are walked.
    depth = 0
    for m in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise ValueError(f"imbrication de plus de {MAX_DEPTH} niveaux")
    try:
        data = json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"imbrication de plus de {MAX_DEPTH} niveaux") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"JSON invalide ligne {exc.lineno}, colonne {exc.colno} : {exc.msg}") from None
    _check_shape(data)
    return data


def load(path: Path) -> Sheet:
    """Read and check the shape of an answer file; raise AnswerFileError with the reason."""
    path = Path(path)
    raw = read_bounded(path)
    try:
        data = parse_bounded(raw)
    except ValueError as exc:
        raise AnswerFileError(path, f"JSON illisible ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnswerFileError(path, f"ce n'est pas un fichier de réponses popek (format {FORMAT} attendu)")
    student, part, variant, answers = (data.get(k) for k in ("student", "part", "variant", "answers"))
    if not valid_student(student):
        raise AnswerFileError(path, f"identifiant d'étudiant invalide {shorten(student)}")
    if not isinstance(part, str) or not isinstance(variant, dict) or not isinstance(answers, dict):
        raise AnswerFileError(path, "champs part, variant ou answers manquants ou mal formés")
    count = variant.get("count", 0)
    if not isinstance(variant.get("key"), str) or isinstance(count, bool) or not isinstance(count, int) \
            or not isinstance(variant.get("digest"), str) or not isinstance(variant.get("questions"), list):
        raise AnswerFileError(path, "description de la variante mal formée")
    nonce = data.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or not NONCE.fullmatch(nonce)):
        raise AnswerFileError(path, f"nonce de copie mal formé {shorten(nonce)}")
    mode = data.get("mode", "")
    return Sheet(student, part, mode if isinstance(mode, str) else "", variant, answers, nonce or "")


def variant_of(sheet: Sheet, banks: dict[str, Bank], secret: str, path="") -> Variant:
    """Recompute the sheet's variant and check it is the one the student answered."""
    bank = banks.get(sheet.part)
    if bank is None:
        raise AnswerFileError(path, f"partie inconnue {shorten(sheet.part)} (connues : {', '.join(sorted(banks))})")
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
                                        f"« {sheet.student} » (autre secret, identifiant, partie ou variante modifiés)")
    if [i.ref for i in v.items] != sheet.variant["questions"]:
        raise AnswerFileError(path, "les questions de la variante ont changé depuis le passage du quiz (banque modifiée ?)")
    unknown = set(sheet.answers) - {i.ref for i in v.items}
    if unknown:
        raise AnswerFileError(path, f"réponses à des questions hors variante : {shorten(sorted(unknown))}")
    return v


def grade_sheet(sheet: Sheet, variant: Variant) -> list[Outcome]:
    """One outcome per question of the variant, in order (unanswered ones score 0)."""
    return [grade(item, sheet.answers.get(item.ref)) for item in variant.items]
