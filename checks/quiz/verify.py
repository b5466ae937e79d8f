"""`verify:` keys: check a question's key against reality (this host, a cloud).

- pg-table: the pgtable question's table against `popek.checks.host.pgtable.measure()`, the host's
  measured Popek–Goldberg table {technique: {condition: "OK"|"KO"}}.
- catalog-services: a matching question "project → role" against the cloud's service catalog
  (each project's catalog entry must have a service type of that role).
- flavor-order: an ordering question of flavor names, smallest first, against the cloud's flavors
  ordered by (vCPU, RAM, disk).

Each check says "ok", "disagree" (the key contradicts what was measured) or "skip" with the true
reason (nothing measured, no cloud, entries absent). Nothing is compared that was not measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from popek.checks.quiz.bank import Bank, Question, normalise


@dataclass(frozen=True)
class Finding:
    question: str
    verify: str
    status: str      # ok | disagree | skip
    message: str     # French


class NoCloud(Exception):
    """No cloud to verify against: the message is the French reason."""


@dataclass
class Context:
    """Where reality is: `cloud` named on the command line (or None), `environ` for OS_CLOUD or an openrc,
    `clouds_yaml` the embedded cloud's file; resolved by popek.checks.cloud.connection like every cloud check."""
    cloud: str | None = None
    environ: dict = field(default_factory=dict)
    clouds_yaml: Path | None = None
    _conn: object = None
    _no_cloud: str = ""
    _pg: object = None

    def pg_table(self) -> dict:
        """The host's measured Popek–Goldberg table, measured once per verification run."""
        if self._pg is None:
            self._pg = measure_pg_table()
        return self._pg

    def connection(self):
        """An authenticated openstacksdk connection, made once per verification run; NoCloud with the
        reason when there is none (tried once too)."""
        if self._conn is None and not self._no_cloud:
            from popek.checks.cloud import connection
            try:
                self._conn = connection.connect(self.cloud, self.environ, Path(self.clouds_yaml or "/nonexistent")).conn
            except connection.CloudUnavailable as exc:
                self._no_cloud = f"cloud indisponible : {exc}"
        if self._conn is None:
            raise NoCloud(self._no_cloud)
        return self._conn


# Names the bank may use for the measured table's techniques and conditions.
ALIASES = {
    "emulation": {"emulation", "tcg", "emule"},
    "assistee materiel": {"assistee materiel", "virtualisation", "kvm", "hardware", "ring 1", "vtx"},
    "conteneur": {"conteneur", "conteneurs", "container", "containers", "namespace", "namespaces"},
    "equivalence": {"equivalence"},
    "efficacite": {"efficacite", "efficiency", "performance"},
    "controle": {"controle", "control", "isolation"},
}


def _canon(name: str) -> str:
    n = normalise(name)
    return next((k for k, names in ALIASES.items() if n in names), n)


def measure_pg_table():
    """The host's measured table {technique: {condition: "OK"|"KO"|None}} from popek.checks.host.pgtable
    (`measure()`, or `build(Measurements()).verdicts()`); raises LookupError when there is none yet."""
    import importlib
    import importlib.util
    if importlib.util.find_spec("popek.checks.host.pgtable") is None:
        raise LookupError("popek.checks.host.pgtable n'existe pas encore : aucun tableau mesuré")
    mod = importlib.import_module("popek.checks.host.pgtable")
    if hasattr(mod, "measure"):
        table = mod.measure()
    elif hasattr(mod, "build") and hasattr(mod, "Measurements"):
        table = mod.build(mod.Measurements())
    else:
        raise LookupError("popek.checks.host.pgtable n'offre ni measure() ni build() : aucun tableau mesuré")
    return table.verdicts() if hasattr(table, "verdicts") else table


def check_pg_table(q: Question, ctx: Context) -> Finding:
    if q.type != "pgtable":
        return Finding(q.id, q.verify, "skip", f"pg-table attend une question pgtable, pas {q.type}")
    try:
        measured = ctx.pg_table()
    except LookupError as exc:
        return Finding(q.id, q.verify, "skip", str(exc))
    except Exception as exc:
        return Finding(q.id, q.verify, "skip", f"mesure du tableau impossible ({type(exc).__name__} : {exc})")
    return compare_pg_table(q, measured)


def compare_pg_table(q: Question, measured: dict) -> Finding:
    """The pgtable key against a measured table {technique: {condition: "OK"|"KO"|other}}; only OK/KO cells count."""
    got = {_canon(t): {_canon(c): v for c, v in (row or {}).items() if v in ("OK", "KO")}
           for t, row in (measured or {}).items()}
    compared, wrong = 0, []
    for tech, row in q.table.items():
        for cond, expected in row.items():
            value = got.get(_canon(tech), {}).get(_canon(cond))
            if value is None:
                continue
            compared += 1
            if value != expected:
                wrong.append(f"{tech}/{cond} : clé {expected}, mesuré {value}")
    if not compared:
        return Finding(q.id, q.verify, "skip", f"aucune case du tableau mesurée sur cet hôte (mesuré : {measured})")
    if wrong:
        return Finding(q.id, q.verify, "disagree", "; ".join(wrong))
    return Finding(q.id, q.verify, "ok", f"{compared} case(s) conforme(s) à la mesure de l'hôte")


# French (and other) words for the course's service functions -> the English function of
# popek.checks.cloud.catalog.COURSE_NAMES, normalised.
ROLE_SYNONYMS = {
    "calcul": "compute", "reseau": "network", "images": "image", "volumes": "volume", "stockage bloc": "volume",
    "block storage": "volume", "stockage en bloc": "volume", "authentification": "authentication",
    "identite": "authentication", "identity": "authentication", "stockage objet": "object storage",
    "stockage d objets": "object storage", "object store": "object storage",
}


def check_catalog_services(q: Question, ctx: Context) -> Finding:
    if q.type != "matching":
        return Finding(q.id, q.verify, "skip", f"catalog-services attend une question matching, pas {q.type}")
    try:
        conn = ctx.connection()
    except NoCloud as exc:
        return Finding(q.id, q.verify, "skip", str(exc))
    from popek.checks.cloud import catalog
    try:
        entries = catalog.catalog(conn)
    except Exception as exc:
        return Finding(q.id, q.verify, "skip", f"catalogue illisible ({type(exc).__name__} : {exc})")
    return compare_catalog(q, entries, catalog.COURSE_NAMES)


def compare_catalog(q: Question, entries: list[dict], course_names: dict) -> Finding:
    """The matching key "project → function" against catalog entries [{type, name}], through
    course_names (service type -> (function, project)) of popek.checks.cloud.catalog."""
    functions_by_name: dict[str, set[str]] = {}
    for e in entries:
        if e.get("type") in course_names:
            functions_by_name.setdefault(normalise(e.get("name") or ""), set()).add(normalise(course_names[e["type"]][0]))
    ok, wrong, absent = [], [], []
    for project, role in q.pairs:
        expected = ROLE_SYNONYMS.get(normalise(role), normalise(role))
        found = functions_by_name.get(normalise(project))
        if found is None:
            absent.append(project)
        elif expected in found:
            ok.append(f"{project} → {role}")
        else:
            wrong.append(f"{project} → {role} (catalogue : {', '.join(sorted(found))})")
    if wrong:
        return Finding(q.id, q.verify, "disagree", "; ".join(wrong))
    if not ok:
        return Finding(q.id, q.verify, "skip", f"aucun de ces services au catalogue : {', '.join(absent)}")
    return Finding(q.id, q.verify, "ok", f"conformes au catalogue : {', '.join(ok)}"
                   + (f" ; absents : {', '.join(absent)}" if absent else ""))


def check_flavor_order(q: Question, ctx: Context) -> Finding:
    if q.type != "ordering":
        return Finding(q.id, q.verify, "skip", f"flavor-order attend une question ordering, pas {q.type}")
    try:
        conn = ctx.connection()
    except NoCloud as exc:
        return Finding(q.id, q.verify, "skip", str(exc))
    try:
        flavors = {normalise(f.name): f for f in conn.compute.flavors()}
    except Exception as exc:
        return Finding(q.id, q.verify, "skip", f"gabarits illisibles ({type(exc).__name__} : {exc})")
    return compare_flavors(q, [(f.name, f.vcpus or 0, f.ram or 0, f.disk or 0) for f in flavors.values()])


def compare_flavors(q: Question, flavors: list[tuple[str, int, int, int]]) -> Finding:
    """The ordering key (smallest first) against the cloud's flavors [(name, vcpus, ram MB, disk GB)]."""
    sizes = {normalise(name): (v, r, d) for name, v, r, d in flavors}
    # An item names a flavor in full ("m1.small", "m1.small (1 vCPU)") or by its size word ("small"):
    # then the family ("m1") that holds the most items is used, as a cloud's families grow separately.
    families: dict[str, dict[str, str]] = {}
    for full in sizes:
        family, _, word = full.rpartition(" ")
        families.setdefault(family, {})[word] = full
    best = max(families.values(), key=lambda words: sum(normalise(t) in words for t in q.items), default={})
    matched = []
    for text in q.items:
        n = normalise(text)
        name = next((k for k in sorted(sizes, key=len, reverse=True) if n == k or n.startswith(k + " ")), None) \
            or best.get(n)
        if name:
            matched.append((text, sizes[name]))
    if len(matched) < 2:
        return Finding(q.id, q.verify, "skip", f"moins de deux items sont des gabarits du cloud ({', '.join(sorted(sizes)) or 'aucun gabarit'})")
    wrong = [f"« {a} » {sa} avant « {b} » {sb}" for (a, sa), (b, sb) in zip(matched, matched[1:])
             if sa != sb and all(x >= y for x, y in zip(sa, sb))]   # a strictly bigger flavor listed first
    if wrong:
        return Finding(q.id, q.verify, "disagree", "ordre contredit par le cloud (vCPU, RAM Mo, disque Go) : " + "; ".join(wrong))
    return Finding(q.id, q.verify, "ok", f"{len(matched)} gabarits dans l'ordre de taille du cloud")


#: The `verify:` keys a question may name, each with its checker (the module docstring says what each checks).
CHECKERS = {"pg-table": check_pg_table, "catalog-services": check_catalog_services, "flavor-order": check_flavor_order}


def unknown_key(q: Question, ctx: Context) -> Finding:
    return Finding(q.id, q.verify, "skip", f"clé de vérification inconnue « {q.verify} »")


def verify_banks(banks: dict[str, Bank], ctx: Context) -> list[Finding]:
    """One finding per question that has a `verify:` key."""
    return [CHECKERS.get(q.verify, unknown_key)(q, ctx) for bank in banks.values() for q in bank.questions if q.verify]
