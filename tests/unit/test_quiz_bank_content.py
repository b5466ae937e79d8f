"""The content of the French question banks (quizzes/*.yaml), read straight with PyYAML.

The engine (checks/quiz) has its own tests; these check what a teacher edits: ids, claims, the course
section each feedback cites, and that every question's answer is complete and consistent for its type,
in every parameter set.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest
import yaml

from popek import paths
from popek.checks.claims import CLAIMS, check_ids
from popek.checks.quiz.bank import normalise
from popek.checks.quiz.verify import CHECKERS

KINDS = {"single", "multiple", "truefalse", "numeric", "matching", "ordering", "short", "pgtable"}
VERIFY = set(CHECKERS)  # every `verify:` key popek can check
ID = re.compile(r"^[a-z0-9-]+$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Keys whose values are identifiers, never shown as text with parameters substituted.
NOT_TEXT = {"id", "type", "claims", "section", "pool", "verify", "params", "points", "shuffle", "correct",
            "tolerance"}

# The course's Popek–Goldberg table (sections "Les anneaux de protections", "Ring -1", "Containers").
PG_TABLE = {
    "emulation": {"equivalence": "OK", "efficacite": "KO", "controle": "OK"},
    "assistee_materiel": {"equivalence": "OK", "efficacite": "OK", "controle": "OK"},
    "conteneur": {"equivalence": "KO", "efficacite": "OK", "controle": "OK"},
}

# Every heading of the course text (levels 1 and 2), without "#" and "**", as written.
# `section` must be one of them, compared without case (the banks write them in sentence case).
COURSE_HEADINGS = (
    "VIRTUALISATION ET OPENSTACK", "OBJECTIFS", "VIRTUALISATION", "DÉFINITION",
    "PRINCIPES DE POPEK ET GOLDBERG", "HISTORIQUE", "INTÉRÊTS DE LA VIRTUALISATION",
    "COMPRENDRE LA VIRTUALISATION", "CPU X86: LES ANNEAUX DE PROTECTIONS", "LES ANNEAUX DE PROTECTIONS",
    "RAPPEL", "CE N'EST PAS DE LA VIRTUALISATION !", "EMULATION", "RING -1", "CONTAINERS",
    "LES MODELES DE VIRTU", "CLOUD", "LE CLOUD C'EST LARGE !", "WHAT YOU WANT AS A SERVICE", "TYPE DE CLOUD",
    "POURQUOI FAIRE DU CLOUD", "CLOUD PROVIDERS", "VIRTUALISATION DANS LE CLOUD", "STOCKAGE DANS LE CLOUD",
    "BLOCK STORAGE", "OBJECT STORAGE", "LEXIQUE DU CLOUD : LES MOTS CLÉS À MAÎTRISER", "API REST",
    "API DE METADATA/USERDATA", "CLOUD-INIT", "IMAGE", "INSTANCE", "FLAVOR", "VOLUME", "FLOATING IP",
    "SECURITY-GROUP", "KEYPAIR", "OPENSTACK", "Suite logicielle Open Source pour construire un cloud.",
    "HISTOIRE", "LES 4 OPENS", "OVERVIEW", "PRINCIPAUX PROJETS", "MAIS AUSSI", "INSTALLATION D'OPENSTACK",
    "UTILISATION D'OPENSTACK", "FICHIER OPENRC", "EXEMPLE DE FICHIER OPENRC", "CATALOG", "LISTE DES INSTANCES",
    "LISTE DES IMAGES", "LISTE DES RÉSEAUX", "ETC.", "INTERFACE WEB", "...OU VIA DU CODE",
)
# The course lives beside the repository in the shared workspace; when present, the list above must match it.
COURSE_FILE = paths.PACKAGE_DIR.parent.parent / "shared" / "course" / "virtualisation-et-openstack.md"


def _fold(s: str) -> str:
    return s.casefold().strip()


SECTIONS = {_fold(h) for h in COURSE_HEADINGS}


def _banks() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted(paths.QUIZZES_DIR.glob("*.yaml"))}


BANKS = _banks()
QUESTIONS = [(stem, q) for stem, doc in BANKS.items() for q in (doc or {}).get("questions") or []]


def _qid(item):
    return item[1].get("id", "?") if isinstance(item, tuple) else None


def _texts(obj, key=None):
    """Every string shown to the student in `obj` (a question or a part of it), with its key."""
    if isinstance(obj, str):
        if key not in NOT_TEXT:
            yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in NOT_TEXT:
                yield from _texts(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _texts(v, key)


def _substitute(obj, values: dict):
    """`obj` with every {name} replaced in its text fields, as the engine renders one parameter set."""
    if isinstance(obj, str):
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), obj)
    if isinstance(obj, dict):
        return {k: (v if k in NOT_TEXT else _substitute(v, values)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, values) for v in obj]
    return obj


def _renderings(q: dict) -> list[dict]:
    """The question as the student sees it, once per parameter set (once if it has none)."""
    sets = q.get("params") or [{}]
    return [_substitute(q, s) for s in sets]


def _norm(s: str) -> str:
    # The engine's own comparison of short answers (case, accents, punctuation, spaces).
    return normalise(s)


def test_there_are_three_banks_with_module_and_title():
    assert {"virtualisation", "cloud", "openstack"} <= set(BANKS)
    for stem, doc in BANKS.items():
        assert doc.get("module") == stem, f"{stem}.yaml: module doit valoir {stem!r}"
        assert isinstance(doc.get("title"), str) and doc["title"].strip()
        assert doc.get("questions"), f"{stem}.yaml n'a aucune question"


def test_the_course_headings_list_matches_the_course():
    if not COURSE_FILE.is_file():
        pytest.skip(f"cours introuvable ({COURSE_FILE}) : liste des titres non recoupée")
    found, in_code = set(), False
    for line in COURSE_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code  # a "# comment" inside a shell block is not a heading
        m = re.match(r"^#{1,2}\s+(.*\S)\s*$", line)
        if m and not in_code:
            found.add(_fold(m.group(1).replace("**", "")))
    assert SECTIONS == found


def test_ids_are_unique_and_well_formed():
    ids = [q.get("id") for _, q in QUESTIONS]
    assert all(isinstance(i, str) and ID.match(i) for i in ids), [i for i in ids if not (isinstance(i, str) and ID.match(i))]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    assert not dup, f"identifiants en double : {dup}"


@pytest.mark.parametrize("item", QUESTIONS, ids=_qid)
def test_question_is_complete_and_consistent(item):
    stem, q = item
    where = f"{stem}.yaml:{q.get('id')}"
    assert q.get("type") in KINDS, f"{where}: type inconnu {q.get('type')!r}"
    assert isinstance(q.get("claims"), list) and q["claims"], f"{where}: claims manquants"
    check_ids(q["claims"], where)
    assert _fold(q.get("section", "")) in SECTIONS, f"{where}: section {q.get('section')!r} n'est pas un titre du cours"
    assert isinstance(q.get("prompt"), str) and q["prompt"].strip(), f"{where}: prompt manquant"
    feedback = q.get("feedback")
    assert isinstance(feedback, str) and len(feedback) >= 60, f"{where}: le feedback doit expliquer la réponse"
    assert isinstance(q.get("points", 1), int) and q.get("points", 1) >= 1
    if "pool" in q:
        assert isinstance(q["pool"], str) and ID.match(q["pool"])
    if "verify" in q:
        assert q["verify"] in VERIFY, f"{where}: verify inconnu {q['verify']!r}"
    if "shuffle" in q:
        assert isinstance(q["shuffle"], bool)

    params = q.get("params")
    used = {m for t in _texts(q) for m in PLACEHOLDER.findall(t)}
    if params is None:
        assert not used, f"{where}: {sorted(used)} utilisés sans params"
    else:
        assert isinstance(params, list) and params, f"{where}: params doit être une liste non vide"
        for i, s in enumerate(params):
            assert isinstance(s, dict)
            missing = used - set(s)
            assert not missing, f"{where}: jeu de params n°{i + 1} sans {sorted(missing)}"
            assert set(s) <= used, f"{where}: jeu de params n°{i + 1} : {sorted(set(s) - used)} jamais utilisés"

    for r in _renderings(q):
        _check_answer(where, r)


def _check_answer(where: str, q: dict):
    kind = q["type"]
    if kind in ("single", "multiple"):
        choices = q.get("choices")
        assert isinstance(choices, list) and len(choices) >= 3, f"{where}: au moins 3 choix"
        texts = [c.get("text") for c in choices]
        assert all(isinstance(t, str) and t.strip() for t in texts)
        assert len({_fold(" ".join(t.split())) for t in texts}) == len(texts), f"{where}: choix en double {texts}"
        assert all(set(c) <= {"text", "correct", "feedback"} for c in choices)
        assert all(isinstance(c.get("correct", False), bool) for c in choices)
        good = sum(c.get("correct", False) for c in choices)
        if kind == "single":
            assert good == 1, f"{where}: un single a exactement une bonne réponse ({good})"
        else:
            assert 1 <= good < len(choices), f"{where}: un multiple a au moins une bonne et une mauvaise réponse"
    elif kind == "truefalse":
        assert isinstance(q.get("answer"), bool), f"{where}: answer doit être true ou false"
    elif kind == "numeric":
        value = q.get("answer")
        number = float(value) if isinstance(value, str) else value
        assert isinstance(number, (int, float)) and not isinstance(number, bool), f"{where}: answer numérique"
        tol = q.get("tolerance", 0)
        assert isinstance(tol, (int, float)) and tol >= 0
    elif kind == "short":
        accept = q.get("accept")
        assert isinstance(accept, list) and accept and all(isinstance(a, str) and _norm(a) for a in accept)
        assert len({_norm(a) for a in accept}) == len(accept), f"{where}: formes acceptées en double"
    elif kind == "matching":
        pairs = q.get("pairs")
        assert isinstance(pairs, list) and len(pairs) >= 3, f"{where}: au moins 3 paires"
        lefts = [p["left"] for p in pairs]
        rights = [p["right"] for p in pairs]
        assert len(set(lefts)) == len(lefts) and len(set(rights)) == len(rights), f"{where}: paires ambiguës"
        distractors = q.get("distractors", [])
        assert isinstance(distractors, list) and not set(distractors) & set(rights), f"{where}: distracteur = réponse"
    elif kind == "ordering":
        items = q.get("items")
        assert isinstance(items, list) and len(items) >= 3 and len(set(items)) == len(items), f"{where}: items"
    elif kind == "pgtable":
        table = q.get("table")
        assert isinstance(table, dict) and table and set(table) <= set(PG_TABLE), f"{where}: techniques inconnues"
        for tech, row in table.items():
            # YAML reads OK/KO as strings; the course fixes every cell.
            assert row == PG_TABLE[tech], f"{where}: ligne {tech} {row} ≠ cours {PG_TABLE[tech]}"


def test_pools_are_fair_alternatives():
    pools = defaultdict(list)
    for stem, q in QUESTIONS:
        if "pool" in q:
            pools[(stem, q["pool"])].append(q)
    for (stem, pool), qs in pools.items():
        assert len({q.get("points", 1) for q in qs}) == 1, f"{stem}.yaml pool {pool}: points différents"
    names = Counter(pool for stem, pool in pools)
    assert all(n == 1 for n in names.values()), "un pool ne doit pas s'étendre sur deux modules"


def test_every_quiz_claim_has_at_least_two_questions():
    count = Counter(c for _, q in QUESTIONS for c in q.get("claims", []))
    # Every claim of the course carries a Q mark (checks/claims.py: how), so every one needs questions
    # (variants draw alternatives).
    thin = {c: count[c] for c in CLAIMS if count[c] < 2}
    assert not thin, f"claims couverts par moins de 2 questions : {thin}"


def test_claims_of_a_module_stay_in_its_range():
    ranges = {"virtualisation": (1, 9), "cloud": (10, 26), "openstack": (27, 39)}
    for stem, q in QUESTIONS:
        lo, hi = ranges.get(stem, (1, 39))
        assert any(lo <= int(c[1:]) <= hi for c in q["claims"]), f"{stem}.yaml:{q['id']} hors du module"


def test_every_kind_and_every_verification_is_used():
    assert {q.get("type") for _, q in QUESTIONS} == KINDS
    assert {q["verify"] for _, q in QUESTIONS if "verify" in q} == VERIFY


def test_verified_questions_have_the_shape_their_check_needs():
    for stem, q in QUESTIONS:
        v = q.get("verify")
        if v == "pg-table":
            assert q["type"] == "pgtable"
        elif v == "catalog-services":
            assert q["type"] == "matching" and "C30" in q["claims"]
        elif v == "flavor-order":
            assert q["type"] == "ordering" and "C22" in q["claims"]
