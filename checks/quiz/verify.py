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

from dataclasses import dataclass
from pathlib import Path

from popek.checks.quiz.bank import Bank, Question, normalise


@dataclass(frozen=True)
class Finding:
    question: str
    verify: str
    status: str      # ok | disagree | skip
    message: str     # French


@dataclass
class Context:
    """Where reality is: `cloud` names a clouds.yaml entry; `clouds_yaml` is the embedded cloud's file."""
    cloud: str | None = None
    clouds_yaml: Path | None = None
    _conn: object = None
    _conn_error: str = ""

    def connection(self):
        """An openstacksdk connection, or None with `_conn_error` set to the reason."""
        if self._conn is not None or self._conn_error:
            return self._conn
        try:
            self._conn = _connect(self.cloud, self.clouds_yaml)
        except Exception as exc:  # any failure to reach a cloud is a reason to skip, said as such
            self._conn_error = f"cloud injoignable ({type(exc).__name__} : {exc})"
        if self._conn is None and not self._conn_error:
            self._conn_error = "aucun cloud : ni --os-cloud, ni $OS_CLOUD, ni cloud embarqué (popek cloud up)"
        return self._conn


def _connect(cloud: str | None, clouds_yaml: Path | None):
    try:  # the project's one way to resolve a cloud, when it exists
        from popek.checks.cloud import connection as shared
    except ImportError:
        shared = None
    if shared is not None and hasattr(shared, "connect"):
        return shared.connect(cloud)
    import openstack
    if cloud:
        if clouds_yaml and Path(clouds_yaml).is_file():
            from openstack.config import loader
            config = loader.OpenStackConfig(config_files=[str(clouds_yaml), *loader.CONFIG_FILES])
            return openstack.connection.Connection(config=config.get_one(cloud=cloud))
        return openstack.connect(cloud=cloud)
    if clouds_yaml and Path(clouds_yaml).is_file():
        from openstack.config import loader
        config = loader.OpenStackConfig(config_files=[str(clouds_yaml)])
        return openstack.connection.Connection(config=config.get_one(cloud="popek"))
    return None


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


def check_pg_table(q: Question) -> Finding:
    try:
        from popek.checks.host import pgtable
    except ImportError:
        return Finding(q.id, q.verify, "skip", "popek.checks.host.pgtable n'existe pas encore : aucun tableau mesuré")
    try:
        measured = pgtable.measure()
    except Exception as exc:
        return Finding(q.id, q.verify, "skip", f"mesure du tableau impossible ({type(exc).__name__} : {exc})")
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


# Role words (French or English, normalised) -> service types a catalog may use for them.
ROLE_TYPES = {
    "compute": {"compute"}, "calcul": {"compute"},
    "network": {"network"}, "reseau": {"network"},
    "image": {"image"}, "images": {"image"},
    "volume": {"volume", "volumev2", "volumev3", "block-storage"}, "volumes": {"volume", "volumev2", "volumev3", "block-storage"},
    "block storage": {"volume", "volumev2", "volumev3", "block-storage"}, "stockage bloc": {"volume", "volumev3", "block-storage"},
    "authentication": {"identity"}, "authentification": {"identity"}, "identity": {"identity"}, "identite": {"identity"},
    "object storage": {"object-store"}, "stockage objet": {"object-store"},
    "dashboard": {"dashboard"}, "interface web": {"dashboard"},
}


def check_catalog_services(q: Question, ctx: Context) -> Finding:
    if q.type != "matching":
        return Finding(q.id, q.verify, "skip", f"catalog-services attend une question matching, pas {q.type}")
    conn = ctx.connection()
    if conn is None:
        return Finding(q.id, q.verify, "skip", ctx._conn_error)
    try:
        catalog = conn.service_catalog
    except Exception as exc:
        return Finding(q.id, q.verify, "skip", f"catalogue illisible ({type(exc).__name__} : {exc})")
    types_by_name: dict[str, set[str]] = {}
    for entry in catalog or []:
        types_by_name.setdefault(normalise(entry.get("name", "")), set()).add(entry.get("type", ""))
    ok, wrong, absent = [], [], []
    for project, role in q.pairs:
        expected = ROLE_TYPES.get(normalise(role))
        found = types_by_name.get(normalise(project))
        if expected is None or found is None:
            absent.append(project if found is None else f"{project} (rôle « {role} » non reconnu)")
            continue
        (ok if found & expected else wrong).append(f"{project} → {role}" + ("" if found & expected else f" (catalogue : {', '.join(sorted(found))})"))
    if wrong:
        return Finding(q.id, q.verify, "disagree", "; ".join(wrong))
    if not ok:
        return Finding(q.id, q.verify, "skip", f"aucun de ces services au catalogue : {', '.join(absent)}")
    return Finding(q.id, q.verify, "ok", f"conformes au catalogue : {', '.join(ok)}"
                   + (f" ; absents : {', '.join(absent)}" if absent else ""))


def check_flavor_order(q: Question, ctx: Context) -> Finding:
    if q.type != "ordering":
        return Finding(q.id, q.verify, "skip", f"flavor-order attend une question ordering, pas {q.type}")
    conn = ctx.connection()
    if conn is None:
        return Finding(q.id, q.verify, "skip", ctx._conn_error)
    try:
        flavors = {normalise(f.name): f for f in conn.compute.flavors()}
    except Exception as exc:
        return Finding(q.id, q.verify, "skip", f"gabarits illisibles ({type(exc).__name__} : {exc})")
    matched = []
    for text in q.items:
        n = normalise(text)
        name = next((k for k in sorted(flavors, key=len, reverse=True) if n == k or n.startswith(k + " ")), None)
        if name:
            f = flavors[name]
            matched.append((text, (f.vcpus or 0, f.ram or 0, f.disk or 0)))
    if len(matched) < 2:
        return Finding(q.id, q.verify, "skip", f"moins de deux items sont des gabarits du cloud ({', '.join(sorted(flavors)) or 'aucun gabarit'})")
    wrong = [f"« {a} » {sa} avant « {b} » {sb}" for (a, sa), (b, sb) in zip(matched, matched[1:])
             if sa != sb and all(x >= y for x, y in zip(sa, sb))]   # a strictly bigger flavor listed first
    if wrong:
        return Finding(q.id, q.verify, "disagree", "ordre contredit par le cloud (vCPU, RAM Mo, disque Go) : " + "; ".join(wrong))
    return Finding(q.id, q.verify, "ok", f"{len(matched)} gabarits dans l'ordre de taille du cloud")


def verify_banks(banks: dict[str, Bank], ctx: Context) -> list[Finding]:
    """One finding per question that has a `verify:` key."""
    out = []
    for bank in banks.values():
        for q in bank.questions:
            if not q.verify:
                continue
            if q.verify == "pg-table":
                out.append(check_pg_table(q) if q.type == "pgtable" else
                           Finding(q.id, q.verify, "skip", f"pg-table attend une question pgtable, pas {q.type}"))
            elif q.verify == "catalog-services":
                out.append(check_catalog_services(q, ctx))
            elif q.verify == "flavor-order":
                out.append(check_flavor_order(q, ctx))
            else:
                out.append(Finding(q.id, q.verify, "skip", f"clé de vérification inconnue « {q.verify} »"))
    return out
