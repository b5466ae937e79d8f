"""Quiz banks: load the YAML files of `quizzes/`, validate them, and keep each error's file and line.

One file per course part (`virtualisation.yaml`, `cloud.yaml`, `openstack.yaml`):

    module: virtualisation
    title: "Virtualisation"
    questions:
      - id: virt-pg-conditions          # unique across all banks, [a-z0-9-]+
        type: single                    # single | multiple | truefalse | numeric | matching
                                        # | ordering | short | pgtable
        claims: [C02]                   # claim ids, C01–C39 (popek.checks.claims)
        section: "…"                    # course section cited in the feedback
        points: 1                       # optional
        pool: pg-conditions             # optional: questions of one pool are alternatives
        params: [{annee: 1974}]         # optional: {name} is substituted in every text field
        prompt: "…"
        feedback: "…"                   # required
        verify: pg-table                # optional, for `popek quiz verify`
        excludes: [virt-pg-annee]       # optional: questions never drawn with this one (they answer each other)
        # then, by type: choices (+shuffle) | answer | answer + tolerance + unit | accept
        #                | pairs + distractors | items | table

A malformed bank raises BankError naming the file, the line and the problem: a YAML error, a key
written twice in one mapping (YAML would silently keep the last one: `answer: false` then
`answer: true` flips the key), an unknown field or type, a missing answer, a parameter set whose value
does not fit the answer's type (a numeric answer's parameter must be a number), options that become
identical once a parameter set is substituted, an ordering item GIFT cannot carry (braces, a line
break), an exclusion that names an unknown question or could leave a pool with nothing to draw.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from popek.checks.claims import UnknownClaim, check_ids

TYPES = ("single", "multiple", "truefalse", "numeric", "matching", "ordering", "short", "pgtable")
ID = re.compile(r"[a-z0-9-]+")            # always fullmatch
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
OKKO = ("OK", "KO")
COMMON = {"id", "type", "claims", "section", "points", "pool", "params", "prompt", "feedback", "verify", "excludes"}
BY_TYPE = {
    "single": {"choices", "shuffle"},
    "multiple": {"choices", "shuffle"},
    "truefalse": {"answer"},
    "numeric": {"answer", "tolerance", "unit"},
    "short": {"accept"},
    "matching": {"pairs", "distractors", "shuffle"},
    "ordering": {"items"},
    "pgtable": {"table"},
}


class BankError(ValueError):
    """A malformed bank: `path:line: problem`."""

    def __init__(self, path, line, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool = False
    feedback: str = ""


@dataclass
class Question:
    """One question as written in its bank (texts still hold their {param} placeholders)."""
    id: str
    type: str
    module: str
    claims: list[str]
    section: str
    prompt: str
    feedback: str
    points: float = 1.0
    pool: str = ""
    params: list[dict] = field(default_factory=list)
    verify: str = ""
    excludes: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    shuffle: bool = True
    answer: object = None          # truefalse: bool; numeric: number or "{param}" text
    tolerance: float = 0.0
    unit: str = ""
    accept: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    distractors: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    table: dict[str, dict[str, str]] = field(default_factory=dict)
    path: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def pool_key(self) -> str:
        """The pool it is drawn from: its own id when it names none."""
        return self.pool or self.id

    def right_items(self) -> list[str]:
        """matching: the right-hand options, each once, pairs' rights first then distractors."""
        out = []
        for _, right in self.pairs:
            if right not in out:
                out.append(right)
        return out + [d for d in self.distractors if d not in out]


@dataclass
class Bank:
    module: str
    title: str
    questions: list[Question]
    path: str = ""

    def exclusions(self) -> dict[str, set[str]]:
        """question id -> the ids never drawn with it (the bank's `excludes:`, made symmetric)."""
        out: dict[str, set[str]] = {}
        for q in self.questions:
            for other in q.excludes:
                out.setdefault(q.id, set()).add(other)
                out.setdefault(other, set()).add(q.id)
        return out

    def pools(self) -> dict[str, list[Question]]:
        """pool -> its questions, in bank order (the course's order)."""
        out: dict[str, list[Question]] = {}
        for q in self.questions:
            out.setdefault(q.pool_key, []).append(q)
        return out


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records each mapping's line (1-based) under the key `__line__`."""


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        k = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(k)
        except TypeError:       # an unhashable key: let SafeLoader report it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"clé {k!r} écrite deux fois dans le même dictionnaire (déjà ligne {first}) : "
                            "YAML garderait la dernière en silence", key_node.start_mark)
        seen[k] = key_node.start_mark.line + 1
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise BankError(path, mark.line + 1 if mark else 0, f"YAML invalide : {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BankError(path, 0, f"illisible : {exc}") from None


def _text(value, what, path, line, required=True) -> str:
    if value is None and not required:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (isinstance(value, str) and not value.strip()):
        raise BankError(path, line, f"{what} : texte non vide attendu, trouvé {value!r}")
    return str(value)


def _bool(value, what, path, line) -> bool:
    if not isinstance(value, bool):
        raise BankError(path, line, f"{what} : booléen YAML attendu (true ou false), trouvé {value!r}")
    return value


def _placeholders(q: Question) -> set[str]:
    texts = [q.prompt, q.feedback, q.section, str(q.answer) if q.answer is not None else ""]
    texts += [c.text for c in q.choices] + [c.feedback for c in q.choices] + q.accept + q.items + q.distractors
    texts += [s for pair in q.pairs for s in pair]
    return {m.group(1) for t in texts for m in PLACEHOLDER.finditer(t)}


def _question(raw, module: str, path: Path) -> Question:
    if not isinstance(raw, dict):
        raise BankError(path, 0, f"une question doit être un dictionnaire, trouvé {raw!r}")
    line = raw.get("__line__", 0)

    def err(msg):
        raise BankError(path, line, f"question {raw.get('id', '?')} : {msg}")

    qid = raw.get("id")
    if not isinstance(qid, str) or not ID.fullmatch(qid):
        err(f"id manquant ou invalide {qid!r} (attendu [a-z0-9-]+)")
    qtype = raw.get("type")
    if qtype not in TYPES:
        err(f"type inconnu {qtype!r} (connus : {', '.join(TYPES)})")
    unknown = set(raw) - COMMON - BY_TYPE[qtype] - {"__line__"}
    if unknown:
        err(f"champ(s) inconnu(s) pour le type {qtype} : {', '.join(sorted(unknown))}")
    claims = raw.get("claims")
    if not isinstance(claims, list) or not claims:
        err("claims : liste non vide d'identifiants attendue (ex. [C02])")
    try:
        check_ids([str(c) for c in claims], f"question {qid}")
    except UnknownClaim as exc:
        raise BankError(path, line, str(exc)) from None
    points = raw.get("points", 1)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not points > 0:
        err(f"points : nombre positif attendu, trouvé {points!r}")
    params = raw.get("params") or []
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        err("params : liste de dictionnaires attendue")
    params = [{k: v for k, v in p.items() if k != "__line__"} for p in params]
    if params and len({tuple(sorted(p)) for p in params}) != 1:
        err("params : chaque jeu de paramètres doit avoir les mêmes noms")
    for p in params:
        bad = {k: v for k, v in p.items() if isinstance(v, bool) or not isinstance(v, (str, int, float))}
        if bad:
            err(f"params : valeurs texte ou nombre attendues, trouvé {bad}")
    excludes = raw.get("excludes") or []
    if not isinstance(excludes, list) or not all(isinstance(x, str) and ID.fullmatch(x) for x in excludes):
        err(f"excludes : liste d'identifiants de questions attendue, trouvé {excludes!r}")
    if qid in excludes:
        err("excludes : une question ne peut pas s'exclure elle-même")
    q = Question(
        id=qid, type=qtype, module=module, claims=[str(c) for c in claims],
        section=_text(raw.get("section"), "section", path, line),
        prompt=_text(raw.get("prompt"), "prompt", path, line),
        feedback=_text(raw.get("feedback"), "feedback (obligatoire)", path, line),
        points=float(points), pool=str(raw.get("pool") or ""), params=params,
        verify=str(raw.get("verify") or ""), excludes=list(excludes), path=str(path), line=line)

    if qtype in ("single", "multiple"):
        choices = raw.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            err("choices : au moins deux choix attendus")
        for c in choices:
            if not isinstance(c, dict):
                err(f"choix invalide {c!r} (attendu {{text: …, correct: true}})")
            cl = c.get("__line__", line)
            extra = set(c) - {"text", "correct", "feedback", "__line__"}
            if extra:
                raise BankError(path, cl, f"question {qid} : champ(s) de choix inconnu(s) {', '.join(sorted(extra))}")
            q.choices.append(Choice(_text(c.get("text"), "choix", path, cl),
                                    _bool(c.get("correct", False), f"question {qid} : correct", path, cl),
                                    _text(c.get("feedback"), "feedback du choix", path, cl, required=False)))
        n_ok = sum(c.correct for c in q.choices)
        if qtype == "single" and n_ok != 1:
            err(f"type single : exactement un choix correct attendu, trouvé {n_ok} (réponse manquante ?)")
        if qtype == "multiple" and n_ok < 1:
            err("type multiple : au moins un choix correct attendu (réponse manquante)")
        if len({c.text for c in q.choices}) != len(q.choices):
            err("choices : deux choix ont le même texte")
        q.shuffle = _bool(raw.get("shuffle", True), f"question {qid} : shuffle", path, line)
    elif qtype == "truefalse":
        if not isinstance(raw.get("answer"), bool):
            err(f"type truefalse : answer: true|false attendu, trouvé {raw.get('answer')!r} (réponse manquante ?)")
        q.answer = raw["answer"]
    elif qtype == "numeric":
        answer = raw.get("answer")
        if isinstance(answer, bool) or answer is None or not (
                isinstance(answer, (int, float)) or (isinstance(answer, str) and PLACEHOLDER.fullmatch(answer.strip()))):
            err(f"type numeric : answer nombre ou \"{{param}}\" attendu, trouvé {answer!r} (réponse manquante ?)")
        q.answer = answer
        tol = raw.get("tolerance", 0)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0 or not math.isfinite(tol):
            err(f"tolerance : nombre positif ou nul attendu, trouvé {tol!r}")
        q.tolerance = float(tol)
        q.unit = _text(raw.get("unit"), "unit", path, line, required=False)
    elif qtype == "short":
        accept = raw.get("accept")
        if not isinstance(accept, list) or not accept:
            err("type short : accept, liste non vide des formes acceptées, attendu (réponse manquante ?)")
        q.accept = [_text(a, "accept", path, line) for a in accept]
        if not any(normalise(a) for a in q.accept):
            err("accept : aucune forme non vide après normalisation")
    elif qtype == "matching":
        pairs = raw.get("pairs")
        if not isinstance(pairs, list) or len(pairs) < 2:
            err("type matching : au moins deux paires {left, right} attendues")
        for p in pairs:
            if not isinstance(p, dict) or set(p) - {"left", "right", "__line__"}:
                err(f"paire invalide {p!r} (attendu {{left: …, right: …}})")
            pl = p.get("__line__", line)
            q.pairs.append((_text(p.get("left"), "left", path, pl), _text(p.get("right"), "right", path, pl)))
        if len({left for left, _ in q.pairs}) != len(q.pairs):
            err("pairs : deux éléments de gauche identiques")
        distractors = raw.get("distractors") or []
        if not isinstance(distractors, list):
            err("distractors : liste attendue")
        q.distractors = [_text(d, "distractor", path, line) for d in distractors]
        if set(q.distractors) & {r for _, r in q.pairs}:
            err("distractors : un distracteur est aussi une bonne réponse")
        q.shuffle = _bool(raw.get("shuffle", True), f"question {qid} : shuffle", path, line)
    elif qtype == "ordering":
        items = raw.get("items")
        if not isinstance(items, list) or len(items) < 2:
            err("type ordering : au moins deux items (dans l'ordre correct) attendus")
        q.items = [_text(i, "item", path, line) for i in items]
        if len(set(q.items)) != len(q.items):
            err("items : deux items identiques")
        for it in q.items:
            # Moodle's ordering GIFT import reads one item per line, inside the braces, unescaped.
            if any(ch in it for ch in "{}\n\r\\") or it.strip().startswith("//") or "####" in it \
                    or it.strip() == "0":
                err(f"item {it!r} : ni accolade, ni barre oblique inverse, ni saut de ligne, ni « // » en tête, "
                    "ni « #### », ni « 0 » seul (l'import GIFT de Moodle ne saurait pas le lire)")
    elif qtype == "pgtable":
        table = raw.get("table")
        if not isinstance(table, dict) or not [k for k in table if k != "__line__"]:
            err("type pgtable : table technique → {condition: OK|KO} attendue (réponse manquante ?)")
        conditions = None
        for tech, row in table.items():
            if tech == "__line__":
                continue
            if not isinstance(row, dict):
                err(f"table.{tech} : dictionnaire condition → OK|KO attendu")
            cells = {k: v for k, v in row.items() if k != "__line__"}
            bad = {k: v for k, v in cells.items() if v not in OKKO}
            if bad:
                err(f"table.{tech} : valeurs OK ou KO attendues, trouvé {bad}")
            if conditions is None:
                conditions = list(cells)
            elif list(cells) != conditions:
                err(f"table.{tech} : mêmes conditions, dans le même ordre, attendues que la première ligne ({conditions})")
            q.table[str(tech)] = cells
    missing = _placeholders(q) - (set(params[0]) if params else set())
    if missing and params:
        err(f"paramètre(s) {', '.join(sorted(missing))} utilisé(s) mais absent(s) de params")
    if qtype == "numeric" and isinstance(q.answer, str) and not params:
        err(f"answer {q.answer!r} nomme un paramètre mais la question n'a pas de params")
    for p in params or [{}]:
        _check_instance(q, p, err)
    return q


def _check_instance(q: Question, params: dict, err) -> None:
    """One parameter set substituted: the numeric answer is a finite number, options stay distinct."""
    t = lambda s: substitute(s, params)  # noqa: E731
    shown = f" (paramètres {params})" if params else ""
    if q.type == "numeric":
        try:
            value = float(str(t(str(q.answer))).replace(",", "."))
        except (ValueError, OverflowError):
            value = math.nan
        if not math.isfinite(value):
            err(f"answer {q.answer!r} : nombre attendu une fois substitué, trouvé {t(str(q.answer))!r}{shown}")
    groups = {"choices": [t(c.text) for c in q.choices], "items": [t(i) for i in q.items],
              "pairs (gauche)": [t(left) for left, _ in q.pairs],
              "distractors": [t(d) for d in q.distractors] + sorted({t(r) for _, r in q.pairs})}
    for name, texts in groups.items():
        if len(set(texts)) != len(texts):
            dup = sorted({x for x in texts if texts.count(x) > 1})
            err(f"{name} : options identiques une fois les paramètres substitués ({', '.join(dup)}){shown}")


def load_bank(path: Path) -> Bank:
    """Load and validate one bank file; raise BankError naming the file and line of the first problem."""
    path = Path(path)
    doc = _read_yaml(path)
    if not isinstance(doc, dict):
        raise BankError(path, 0, "un dictionnaire {module, title, questions} est attendu")
    module = doc.get("module")
    if module != path.stem:
        raise BankError(path, doc.get("__line__", 1), f"module {module!r} : doit être le nom du fichier ({path.stem!r})")
    title = _text(doc.get("title"), "title", path, doc.get("__line__", 1))
    raw = doc.get("questions")
    if not isinstance(raw, list) or not raw:
        raise BankError(path, doc.get("__line__", 1), "questions : liste non vide attendue")
    questions, seen = [], {}
    for item in raw:
        q = _question(item, module, path)
        if q.id in seen:
            raise BankError(path, q.line, f"id {q.id!r} en double (déjà ligne {seen[q.id]})")
        seen[q.id] = q.line
        questions.append(q)
    bank = Bank(module, title, questions, str(path))
    # A pool's questions must be interchangeable: same points, else a variant's maximum would depend on the draw.
    pools = bank.pools()
    for pool, qs in pools.items():
        if len({q.points for q in qs}) > 1:
            raise BankError(path, qs[0].line, f"pool {pool!r} : toutes ses questions doivent valoir les mêmes points")
    # Exclusions: known ids of this bank, and never all of a pool (its draw would then have nothing to pick).
    by_id = {q.id: q for q in questions}
    for q in questions:
        for other in q.excludes:
            if other not in by_id:
                raise BankError(path, q.line, f"question {q.id} : excludes nomme {other!r}, absente de cette banque")
            if by_id[other].pool_key == q.pool_key:
                raise BankError(path, q.line, f"question {q.id} : excludes {other!r} du même pool (jamais tirées ensemble)")
    # Pools are drawn in the bank's order: a question drawn from a pool must leave every later pool
    # something to draw.
    excl, order = bank.exclusions(), list(pools)
    for i, earlier in enumerate(order):
        for q in pools[earlier]:
            for later in order[i + 1:]:
                if all(o.id in excl.get(q.id, ()) for o in pools[later]):
                    raise BankError(path, q.line, f"question {q.id} : exclut toutes les questions du pool {later!r}, "
                                                  "tiré après elle ; ajoutez une alternative à ce pool ou reformulez")
    return bank


def load_banks(directory: Path) -> dict[str, Bank]:
    """Every bank of `directory` (module -> Bank), ids checked unique across banks."""
    banks, where = {}, {}
    for path in sorted(Path(directory).glob("*.yaml")):
        bank = load_bank(path)
        for q in bank.questions:
            if q.id in where:
                raise BankError(path, q.line, f"id {q.id!r} déjà utilisé dans {where[q.id]}")
            where[q.id] = q.where
        banks[bank.module] = bank
    return banks


def question_claims(directory: Path) -> dict[str, list[str]]:
    """question id -> claim ids, for `popek claims` (validates the banks on the way)."""
    return {q.id: list(q.claims) for bank in load_banks(directory).values() for q in bank.questions}


def substitute(text: str, params: dict) -> str:
    """Replace each {name} of `params` in `text`; other braces (code samples) stay as written."""
    if not params or "{" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), text)


_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalise(text: str) -> str:
    """Short answers are compared after this: no accents, case folded, punctuation dropped, spaces collapsed."""
    import unicodedata
    decomposed = unicodedata.normalize("NFKD", str(text))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_PUNCT.sub(" ", bare).split())
