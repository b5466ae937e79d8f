"""Variants: each student gets a deterministic draw of a bank from (variant key, exam secret).

The seed is HMAC-SHA256(secret, "popek-quiz\\0<module>\\0<count>\\0<key>"), where the key is normally the
student id. A `random.Random` seeded with it draws, in this order: one question per pool (the pools
are kept in the bank's order, which is the course's), then `count` of those pools if a count is set,
then for each drawn question its parameter set and the display order of its options.

Answers are recorded in *display* positions of the variant (never in the bank's order, where the
correct choice may well be written first): the grader recomputes the variant from the same key and
secret to map them back. The answer file carries only a short fingerprint (`digest`):
HMAC-SHA256(seed, "popek-quiz-answers\\0<student>"), which binds the part, count, key and the student
id the variant was drawn for, so that the grader detects a different secret, a tampered file, or a file
handed in under another student's id, without revealing the secret. A variant shared by a group (the
exam HTML file given to a whole class) is drawn for no particular student (student ""): its fingerprint
is valid under any student id.

Question ids never leave popek in a student's material: the page, the terminal and the answer file
name each drawn question by an opaque reference, HMAC-SHA256(seed, "popek-quiz-ref\\0<id>") cut to
10 hex digits, which the grader recomputes to map answers back (several ids, such as
`cloud-bloc-cinder`, would give their answer away).

A question may name others in `excludes:` (symmetric): questions that answer each other are never
drawn into the same variant. Pools are drawn in the bank's order; a pool's questions excluded by
those already drawn are left out of its draw (load_bank refuses exclusions that could empty a pool).
"""
from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass, field

from popek.checks.quiz.bank import Bank, Question, substitute

DEFAULT_SECRET = "popek-entrainement"


@dataclass(frozen=True)
class Item:
    """One drawn question as one student sees it."""
    question: Question
    params: dict = field(default_factory=dict)
    order: tuple[int, ...] = ()        # display position -> bank index (choices, lefts, or items)
    right_order: tuple[int, ...] = ()  # matching: display position -> index in question.right_items()
    ref: str = ""                      # opaque reference shown to the student instead of the id

    @property
    def id(self) -> str:
        return self.question.id

    def text(self, s: str) -> str:
        return substitute(s, self.params)


@dataclass(frozen=True)
class Variant:
    module: str
    key: str              # what the draw was derived from (the student id, or a shared key)
    count: int            # questions asked per module (0 = one per pool, all pools)
    digest: str           # fingerprint of the seed, stored in answer files
    items: tuple[Item, ...]

    @property
    def max_score(self) -> float:
        return sum(i.question.points for i in self.items)

    def describe(self) -> dict:
        """What an answer file records about the variant (no key, no secret, no question id)."""
        return {"key": self.key, "count": self.count, "digest": self.digest,
                "questions": [i.ref for i in self.items]}

    def by_ref(self) -> dict[str, Item]:
        return {i.ref: i for i in self.items}


def seed(module: str, key: str, secret: str, count: int = 0) -> bytes:
    """The 32-byte HMAC-SHA256 seed of one variant."""
    msg = "\0".join(("popek-quiz", module, str(count), key)).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).digest()


def fingerprint(raw: bytes, student: str) -> str:
    """The `digest` of a variant: its seed bound to the student id ("" for a variant shared by a group)."""
    msg = "\0".join(("popek-quiz-answers", student)).encode("utf-8")
    return hmac.new(raw, msg, hashlib.sha256).digest()[:8].hex()


def reference(raw: bytes, qid: str) -> str:
    """The opaque reference of question `qid` in the variant of seed `raw`."""
    return hmac.new(raw, f"popek-quiz-ref\0{qid}".encode("utf-8"), hashlib.sha256).hexdigest()[:10]


def _derangement_free_shuffle(rng: random.Random, n: int) -> list[int]:
    """A shuffled 0..n-1 that is never the identity when n > 1 (an ordering shown in order gives its key away)."""
    order = list(range(n))
    rng.shuffle(order)
    if n > 1 and order == sorted(order):
        order = order[1:] + order[:1]
    return order


def _not_in_key_order(q: Question, order: list[int], right: list[int]) -> list[int]:
    """Rotate the right column while the k-th left's match is shown k-th (the key in plain sight)."""
    rights = q.right_items()
    for _ in range(len(right)):
        where = {rights[r]: p for p, r in enumerate(right)}
        if [where[q.pairs[i][1]] for i in order] != list(range(len(order))):
            break
        right = right[1:] + right[:1]
    return right


def draw(bank: Bank, key: str, secret: str = DEFAULT_SECRET, count: int = 0, student: str | None = None) -> Variant:
    """The variant of `bank` for `key` (a student id).

    bank: a loaded bank. key: the student id (or a key shared by a group). secret: the exam secret.
    count: how many questions to ask (pools drawn); 0 or more than the pools means one per pool.
    student: the student id its digest is bound to (default: the key; "" for a variant shared by a group).
    """
    raw = seed(bank.module, key, secret, count)
    rng = random.Random(int.from_bytes(raw, "big"))
    pools = list(bank.pools().values())
    chosen: list[Question] = []
    excluded: set[str] = set()
    for qs in pools:
        candidates = [q for q in qs if q.id not in excluded] or qs   # load_bank makes `or qs` unreachable
        q = candidates[rng.randrange(len(candidates))]
        chosen.append(q)
        excluded.update(bank.exclusions().get(q.id, ()))
    if 0 < count < len(chosen):
        keep = sorted(rng.sample(range(len(chosen)), count))
        chosen = [chosen[i] for i in keep]
    items = []
    for q in chosen:
        params = dict(q.params[rng.randrange(len(q.params))]) if q.params else {}
        order: list[int] = []
        right: list[int] = []
        if q.type in ("single", "multiple"):
            order = list(range(len(q.choices)))
            if q.shuffle:
                rng.shuffle(order)
        elif q.type == "matching":
            # `shuffle: false` keeps the left column in the bank's order; the right column is always
            # shuffled, and never left in the left column's order (that would show the key).
            order = list(range(len(q.pairs)))
            right = list(range(len(q.right_items())))
            if q.shuffle:
                rng.shuffle(order)
            rng.shuffle(right)
            right = _not_in_key_order(q, order, right)
        elif q.type == "ordering":
            order = _derangement_free_shuffle(rng, len(q.items))
        items.append(Item(q, params, tuple(order), tuple(right), reference(raw, q.id)))
    return Variant(bank.module, key, count, fingerprint(raw, key if student is None else student), tuple(items))


#: French labels of the pgtable row and column ids the course uses; others are shown as written.
LABELS = {
    "emulation": "Émulation", "assistee_materiel": "Virtualisation assistée par le matériel (ring -1)",
    "virtualisation": "Virtualisation", "conteneur": "Conteneur", "conteneurs": "Conteneurs",
    "equivalence": "Équivalence", "efficacite": "Efficacité", "controle": "Contrôle",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def present(item: Item) -> dict:
    """What the student sees of `item`, with its parameters substituted and no key at all."""
    q = item.question
    view = {"id": item.ref, "type": q.type, "prompt": item.text(q.prompt), "points": q.points}
    if q.type in ("single", "multiple"):
        view["options"] = [item.text(q.choices[i].text) for i in item.order]
    elif q.type == "numeric":
        view["unit"] = item.text(q.unit)
    elif q.type == "matching":
        rights = q.right_items()
        view["lefts"] = [item.text(q.pairs[i][0]) for i in item.order]
        view["rights"] = [item.text(rights[i]) for i in item.right_order]
    elif q.type == "ordering":
        view["items"] = [item.text(q.items[i]) for i in item.order]
    elif q.type == "pgtable":
        view["techniques"] = [[t, label(t)] for t in q.table]
        view["conditions"] = [[c, label(c)] for c in next(iter(q.table.values()))]
    return view
