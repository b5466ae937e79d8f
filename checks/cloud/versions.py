"""API versions and microversions a cloud reports, and the OpenStack release they suggest (C28).

The table comes from Nova's "REST API Version History" (nova/api/openstack/compute/
rest_api_version_history.rst, e.g. "2.96 (Maximum in 2024.1 Caracal and 2024.2 Dalmatian)"): the
maximum compute microversion of each release. A cloud's maximum tells the release of its Nova, or
the range of releases when several share it.
"""
from __future__ import annotations

#: Maximum compute microversion -> releases whose Nova stops there (upstream's own table).
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
)


def parse(version: str) -> tuple[int, int]:
    """'2.96' -> (2, 96)."""
    major, minor = version.strip().split(".")
    return int(major), int(minor)


def release_for(max_microversion: str) -> str:
    """The release a Nova maximum microversion suggests (French sentence for the report)."""
    mv = parse(max_microversion)
    for top, name in NOVA_MAX_MICROVERSION:
        if mv == top:
            return name
    newest_mv, newest = NOVA_MAX_MICROVERSION[-1]
    if mv > newest_mv:
        return f"postérieure à {newest} (version en développement ou plus récente que la table)"
    older = [name for top, name in NOVA_MAX_MICROVERSION if top > mv]
    return f"entre deux versions de la table, avant {older[0]}" if older else "inconnue"


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
        doc = version_document(conn.session, endpoint)
        root = endpoint.rstrip("/").rsplit("/", 1)[0] + "/"
        found = versions_of(doc) or versions_of(version_document(conn.session, root))
        out[service_type] = found
    return out


def compute_max_microversion(conn) -> str:
    """The compute API's maximum microversion, from its version document (e.g. '2.104')."""
    endpoint = conn.compute.get_endpoint()
    for v in versions_of(version_document(conn.session, endpoint)):
        if v["version"]:
            return v["version"]
    raise LookupError(f"le point d'accès compute {endpoint} n'annonce pas de microversion")
