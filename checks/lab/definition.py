"""Lab definitions: YAML files (French) that a teacher writes without Python, loaded and validated
with the file and line of each error.

Format (one file per lab, in popek's `quizzes/labs/` or anywhere given by path):

    lab: tp-openstack                 # = the file's name without .yaml; [a-z0-9-]+
    title: "TP OpenStack : …"
    description: "…"                  # optional, shown by `popek lab list`
    claims: [C37]                     # optional: claim ids of the course (checked)
    tasks:
      - id: instance                  # unique in the lab, [a-z0-9-]+ (a gradebook column)
        title: "Démarrer une instance" # shown to the student (Gradescope test name)
        points: 4                     # > 0
        check: server_booted          # a check of checks/lab/registry.py (see its docstring)
        with: {flavor: small, image: "Debian 13", network: public}   # the check's parameters
        partial:                      # optional: each criterion's share of the points (sum = 1);
          exists: 0.4                 #   without it the task is all-or-nothing
          active: 0.1
          flavor: 0.2
          image: 0.15
          network: 0.15
        feedback: "…"                 # French hint shown when the task is not fully done

A malformed lab raises LabError(`path:line: problem`) on the first problem found.
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

from popek.checks.claims import UnknownClaim, check_ids
from popek.checks.lab.registry import CHECKS, Check
# The one YAML-with-line-numbers reader (quiz banks and labs share it).
from popek.checks.quiz.bank import BankError, _read_yaml

ID = re.compile(r"^[a-z0-9-]+$")
LAB_FIELDS = {"lab", "title", "description", "claims", "tasks"}
TASK_FIELDS = {"id", "title", "points", "check", "with", "partial", "feedback"}


class LabError(ValueError):
    """A malformed lab definition: `path:line: problem`."""

    def __init__(self, path, line, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")


@dataclasses.dataclass(frozen=True)
class LabTask:
    id: str
    title: str
    points: float
    check: Check
    params: dict            # complete: the check's defaults filled in
    partial: dict           # criterion -> share of the points; {} = all-or-nothing
    feedback: str
    line: int = 0

    def criteria(self) -> list[str]:
        return self.check.criteria(self.params)


@dataclasses.dataclass(frozen=True)
class Lab:
    id: str
    title: str
    tasks: tuple[LabTask, ...]
    description: str = ""
    claims: tuple[str, ...] = ()
    path: str = ""

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tasks)


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "__line__"}


def _text(value, what: str, path, line) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LabError(path, line, f"{what} : texte non vide attendu, trouvé {value!r}")
    return value.strip()


def _params(check: Check, given, path, line, tid) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise LabError(path, line, f"tâche {tid} : with doit être un dictionnaire de paramètres, trouvé {given!r}")
    given = _clean(given)
    unknown = set(given) - set(check.params)
    if unknown:
        raise LabError(path, line, f"tâche {tid} : paramètre(s) inconnu(s) pour {check.name} : "
                                   f"{', '.join(sorted(unknown))} (connus : {', '.join(check.params) or 'aucun'})")
    for name, value in given.items():
        want = check.params[name].type
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = given[name] = str(value)     # `flavor: 2` is the flavor called "2"
            ok = True
        if not ok:
            raise LabError(path, line, f"tâche {tid} : {check.name}.{name} : {want.__name__} attendu, trouvé {value!r}")
    missing = [n for n, p in check.params.items() if p.required and n not in given]
    if missing:
        raise LabError(path, line, f"tâche {tid} : paramètre(s) obligatoire(s) manquant(s) pour {check.name} : "
                                   f"{', '.join(missing)}")
    return check.complete(given)


def _partial(raw, criteria: list[str], path, line, tid) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LabError(path, line, f"tâche {tid} : partial doit associer chaque critère à sa part des points")
    where = raw.get("__line__", line)
    raw = _clean(raw)
    if set(raw) != set(criteria):
        extra, lack = set(raw) - set(criteria), [c for c in criteria if c not in raw]
        parts = []
        if extra:
            parts.append(f"critère(s) inconnu(s) {', '.join(sorted(extra))}")
        if lack:
            parts.append(f"critère(s) manquant(s) {', '.join(lack)}")
        raise LabError(path, where, f"tâche {tid} : partial : {' ; '.join(parts)} "
                                    f"(critères de cette vérification : {', '.join(criteria)})")
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            raise LabError(path, where, f"tâche {tid} : partial.{k} : nombre positif ou nul attendu, trouvé {v!r}")
    total = sum(raw.values())
    if abs(total - 1.0) > 1e-6:
        raise LabError(path, where, f"tâche {tid} : partial : la somme des parts doit valoir 1, trouvé {total:g}")
    return {c: float(raw[c]) for c in criteria}


def _task(raw, path) -> LabTask:
    if not isinstance(raw, dict):
        raise LabError(path, 0, f"une tâche doit être un dictionnaire, trouvé {raw!r}")
    line = raw.get("__line__", 0)
    tid = raw.get("id")
    if not isinstance(tid, str) or not ID.fullmatch(tid):
        raise LabError(path, line, f"tâche : id manquant ou invalide {tid!r} (attendu [a-z0-9-]+)")
    unknown = set(raw) - TASK_FIELDS - {"__line__"}
    if unknown:
        raise LabError(path, line, f"tâche {tid} : champ(s) inconnu(s) {', '.join(sorted(unknown))} "
                                   f"(connus : {', '.join(sorted(TASK_FIELDS))})")
    points = raw.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not points > 0 or not math.isfinite(points):
        raise LabError(path, line, f"tâche {tid} : points : nombre positif attendu, trouvé {points!r}")
    name = raw.get("check")
    if name not in CHECKS:
        raise LabError(path, line, f"tâche {tid} : vérification inconnue {name!r} "
                                   f"(connues : {', '.join(sorted(CHECKS))})")
    check = CHECKS[name]
    params = _params(check, raw.get("with"), path, line, tid)
    return LabTask(id=tid, title=_text(raw.get("title"), f"tâche {tid} : title", path, line), points=float(points),
                   check=check, params=params, partial=_partial(raw.get("partial"), check.criteria(params), path,
                                                                line, tid),
                   feedback=_text(raw.get("feedback"), f"tâche {tid} : feedback (obligatoire)", path, line), line=line)


def load_lab(path: Path) -> Lab:
    """Load and validate one lab file; raise LabError naming the file and line of the first problem."""
    path = Path(path)
    try:
        doc = _read_yaml(path)
    except BankError as exc:
        raise LabError(exc.path, exc.line, exc.problem) from None
    if not isinstance(doc, dict):
        raise LabError(path, 0, "un dictionnaire {lab, title, tasks} est attendu")
    top = doc.get("__line__", 1)
    unknown = set(doc) - LAB_FIELDS - {"__line__"}
    if unknown:
        raise LabError(path, top, f"champ(s) inconnu(s) {', '.join(sorted(unknown))} (connus : {', '.join(sorted(LAB_FIELDS))})")
    lab_id = doc.get("lab")
    if lab_id != path.stem:
        raise LabError(path, top, f"lab {lab_id!r} : doit être le nom du fichier ({path.stem!r})")
    claims = doc.get("claims") or []
    if not isinstance(claims, list):
        raise LabError(path, top, "claims : liste d'identifiants attendue (ex. [C37])")
    try:
        check_ids([str(c) for c in claims], f"lab {lab_id}")
    except UnknownClaim as exc:
        raise LabError(path, top, str(exc)) from None
    raw = doc.get("tasks")
    if not isinstance(raw, list) or not raw:
        raise LabError(path, top, "tasks : liste non vide de tâches attendue")
    tasks, seen = [], {}
    for item in raw:
        t = _task(item, path)
        if t.id in seen:
            raise LabError(path, t.line, f"tâche {t.id!r} en double (déjà ligne {seen[t.id]})")
        seen[t.id] = t.line
        tasks.append(t)
    description = doc.get("description")
    return Lab(id=lab_id, title=_text(doc.get("title"), "title", path, top), tasks=tuple(tasks),
               description=description.strip() if isinstance(description, str) else "",
               claims=tuple(str(c) for c in claims), path=str(path))


def load_labs(directory: Path) -> dict[str, Lab]:
    """Every lab of `directory` (lab id -> Lab)."""
    return {lab.id: lab for lab in (load_lab(p) for p in sorted(Path(directory).glob("*.yaml")))}


def find_lab(name: str, directory: Path) -> Lab:
    """A lab by id (in `directory`) or by path to its YAML file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise LabError(candidate, 0, "fichier introuvable")
        return load_lab(candidate)
    labs = load_labs(directory)
    if name not in labs:
        raise LabError(directory, 0, f"TP inconnu « {name} » (connus : {', '.join(sorted(labs)) or 'aucun'})")
    return labs[name]
