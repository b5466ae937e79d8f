"""API versions and microversions a cloud reports, and the OpenStack release they designate (C28).

The table comes from Nova's "REST API Version History" (nova/api/openstack/compute/
rest_api_version_history.rst, e.g. "2.96 (Maximum in 2024.1 Caracal and 2024.2 Dalmatian)"): the
maximum compute microversion of each release. A released Nova stops at one of these maxima; a maximum
between two of them is a development snapshot of Nova (no release of the calendar), and a maximum that
is not 2.x is not Nova's compute API at all.
"""
from __future__ import annotations

import re

#: Maximum compute microversion -> releases whose Nova stops there (upstream's own table, read from
#: rest_api_version_history.rst of nova 34.0.0).
NOVA_MAX_MICROVERSION = (
    ((2, 60), "Queens"),
    ((2, 65), "Rocky"),
    ((2, 72), "Stein"),
    ((2, 79), "Train"),
    ((2, 87), "Ussuri / Victoria"),
    ((2, 88), "Wallaby"),
    ((2, 90), "Xena / Yoga"),
    ((2, 93), "Zed"),
    ((2, 95), "2023.1 Antelope / 2023.2 Bobcat"),
    ((2, 96), "2024.1 Caracal / 2024.2 Dalmatian"),
    ((2, 100), "2025.1 Epoxy / 2025.2 Flamingo"),
    ((2, 103), "2026.1 Gazpacho"),
    ((2, 104), "2026.2 Hibiscus"),
)

#: The releases the course names (slide HISTOIRE: "Cycle de 2 releases par an").
COURSE_RELEASES = ("2025.1 Epoxy", "2025.2 Flamingo", "2026.1 Gazpacho")

#: Since 2023, a release is named YEAR.N, N = 1 or 2: two releases a year.
CALENDAR_NAME = re.compile(r"^(\d{4})\.([12]) [A-Z][a-z]+$")


def parse(version: str) -> tuple[int, int]:
    """'2.96' -> (2, 96); ValueError when `version` is not MAJOR.MINOR."""
    major, minor = str(version).strip().split(".")
    return int(major), int(minor)


def _label(top: tuple[int, int], name: str) -> str:
    return f"{name} ({top[0]}.{top[1]})"


def nova_release(max_microversion: str) -> tuple[str, str]:
    """What a compute API's maximum microversion designates: (kind, French sentence).

    kind: "release" (the maximum of a published release: the sentence names it), "between" (no release
    stopped there: a development Nova), "newer" (past popek's table: cannot be named here), "older"
    (before Queens), "not-nova" (not a 2.x compute microversion)."""
    try:
        mv = parse(max_microversion)
    except ValueError:
        return "not-nova", f"« {max_microversion} » n'est pas une microversion (MAJEURE.MINEURE)"
    if mv[0] != 2:
        return "not-nova", (f"{max_microversion} n'est pas une microversion de l'API compute de Nova (2.x) : "
                            "ce n'est pas Nova qui répond à l'adresse compute du catalogue")
    for top, name in NOVA_MAX_MICROVERSION:
        if mv == top:
            return "release", name
    (first_mv, first), (newest_mv, newest) = NOVA_MAX_MICROVERSION[0], NOVA_MAX_MICROVERSION[-1]
    if mv > newest_mv:
        return "newer", f"postérieure à {_label(newest_mv, newest)}, la plus récente que connaît popek"
    if mv < first_mv:
        return "older", f"antérieure à {_label(first_mv, first)}"
    before = max((t, n) for t, n in NOVA_MAX_MICROVERSION if t < mv)
    after = min((t, n) for t, n in NOVA_MAX_MICROVERSION if t > mv)
    return "between", (f"{max_microversion} n'est le maximum d'aucune version publiée : entre "
                       f"{_label(*before)} et {_label(*after)}, un Nova de développement")


def release_for(max_microversion: str) -> str:
    """The release (or the French sentence saying why none) a Nova maximum microversion designates."""
    return nova_release(max_microversion)[1]


def calendar_place(release: str) -> str:
    """Where `release` (e.g. "2026.2 Hibiscus", or "2025.1 Epoxy / 2025.2 Flamingo") sits against the
    course's list: named by the course, or how many releases (six months each) after its last one."""
    names = [n.strip() for n in release.split("/")]
    if any(n in COURSE_RELEASES for n in names):
        return "citée par le cours"
    dated = [CALENDAR_NAME.match(n) for n in names]
    if not all(dated):
        return "avant le nommage ANNÉE.N (2023), hors de la liste du cours"
    def index(m) -> int:  # releases since 2000.1, two a year
        return int(m[1]) * 2 + int(m[2])

    first, last = (index(CALENDAR_NAME.match(r)) for r in (COURSE_RELEASES[0], COURSE_RELEASES[-1]))
    mine = [index(m) for m in dated]
    if min(mine) > last:
        return f"{min(mine) - last} version(s) après {COURSE_RELEASES[-1]}, la dernière que cite le cours"
    return f"{first - max(mine)} version(s) avant {COURSE_RELEASES[0]}, la première que cite le cours"


def version_document(session, url: str) -> dict:
    """GET `url` (an endpoint or its root) without a token; the JSON version document it returns."""
    response = session.get(url, authenticated=False, raise_exc=False, headers={"Accept": "application/json"})
    if response.status_code not in (200, 300):
        return {}
    try:
        return response.json()
    except ValueError:
        return {}


def versions_of(doc: dict) -> list[dict]:
    """Normalise a version document ({"version": {…}} or {"versions": [… ] | {"values": […]}})."""
    if "version" in doc and isinstance(doc["version"], dict):
        items = [doc["version"]]
    else:
        items = doc.get("versions", [])
        if isinstance(items, dict):
            items = items.get("values", [])
    return [{"id": v.get("id"), "status": v.get("status"),
             "min_version": v.get("min_version") or None, "version": v.get("version") or v.get("max_version") or None}
            for v in items if isinstance(v, dict)]


def report(conn) -> dict[str, list[dict]]:
    """Service type -> versions its endpoint reports, for compute, identity, image, network, volume."""
    out = {}
    for service_type in ("compute", "identity", "image", "network", "block-storage"):
        try:
            endpoint = conn.endpoint_for(service_type)
        except Exception:  # this cloud has no such service
            continue
        if not endpoint:
            continue
        root = endpoint.rstrip("/").rsplit("/", 1)[0] + "/"
        try:
            found = versions_of(version_document(conn.session, endpoint)) or \
                versions_of(version_document(conn.session, root))
        except Exception as exc:  # this API does not answer: said in the report, judged by its own step
            found = [{"id": None, "erreur": f"{endpoint} : {type(exc).__name__}"}]
        out[service_type] = found
    return out


def compute_max_microversion(conn) -> str:
    """The maximum microversion the compute API of the catalog reports in its version document (e.g.
    '2.104'); LookupError when it reports none."""
    endpoint = conn.endpoint_for("compute")  # the catalog's address, without the SDK's own discovery
    for v in versions_of(version_document(conn.session, endpoint)):
        if v["version"]:
            return v["version"]
    raise LookupError(f"le point d'accès compute {endpoint} n'annonce pas de microversion")
