"""Keystone's catalog: the first authenticated answer lists the cloud's other APIs (C35), mapped to the
course's names (C27, C30) and to the "as a service" offers it can reveal (C11)."""
from __future__ import annotations

#: Service type (as the catalog names it) -> (course's function, OpenStack project).
COURSE_NAMES = {
    "compute": ("Compute", "Nova"),
    "network": ("Network", "Neutron"),
    "image": ("Image", "Glance"),
    "volumev3": ("Volume", "Cinder"),
    "block-storage": ("Volume", "Cinder"),
    "identity": ("Authentication", "Keystone"),
    "object-store": ("Object Storage", "Swift"),
}

#: The six services of the course's "PRINCIPAUX PROJETS" slide.
COURSE_PROJECTS = ("Nova", "Neutron", "Glance", "Cinder", "Keystone", "Swift")

#: Other service types a catalog may list -> OpenStack project (for the evidence table).
OTHER_PROJECTS = {
    "placement": "Placement", "dashboard": "Horizon", "orchestration": "Heat", "load-balancer": "Octavia",
    "dns": "Designate", "database": "Trove", "container-infra": "Magnum", "key-manager": "Barbican",
    "shared-file-system": "Manila", "metric": "Gnocchi", "baremetal": "Ironic", "clustering": "Senlin",
    "workflow": "Mistral", "application-catalog": "Murano", "sharev2": "Manila", "volumev2": "Cinder (v2)",
}

#: "As a service" offers of the course (slide WHAT YOU WANT AS A SERVICE) -> service types revealing them.
AS_A_SERVICE = {
    "IaaS (Infrastructure as a Service)": ("compute",),
    "PaaS (Platform as a Service)": ("container-infra", "application-catalog", "orchestration"),
    "DBaaS (Database as a Service)": ("database",),
    "NaaS (Network as a Service)": ("network",),
    "FWaaS (Firewall as a Service)": ("network:fwaas_v2",),
    "LBaaS (Load Balancer as a Service)": ("load-balancer", "network:lbaasv2"),
    "DNSaaS (DNS as a Service)": ("dns",),
}


def catalog(conn) -> list[dict]:
    """The catalog of the token `conn` obtained: [{"type", "name", "endpoints": [{interface, region, url}]}].

    Read from the authentication answer itself (keystoneauth keeps it), i.e. the first request's result."""
    access = conn.session.auth.get_access(conn.session)
    out = []
    for service in access.service_catalog.catalog:
        out.append({"type": service.get("type"), "name": service.get("name"),
                    "endpoints": [{"interface": e.get("interface"), "region": e.get("region_id") or e.get("region"),
                                   "url": e.get("url")} for e in service.get("endpoints", [])]})
    return out


def course_table(entries: list[dict]) -> list[dict]:
    """One row per catalog service: type, name, course function, project (None when not in the course)."""
    rows = []
    for e in entries:
        function, project = COURSE_NAMES.get(e["type"], (None, OTHER_PROJECTS.get(e["type"])))
        rows.append({"type": e["type"], "nom": e["name"], "fonction (cours)": function, "projet": project,
                     "url": next((x["url"] for x in e["endpoints"] if x["interface"] == "public"), None)})
    return rows


def projects_present(entries: list[dict]) -> dict[str, str]:
    """Course project -> the service type that reveals it, for the six projects the catalog lists."""
    found = {}
    for e in entries:
        if e["type"] in COURSE_NAMES:
            found.setdefault(COURSE_NAMES[e["type"]][1], e["type"])
    return found


def network_extensions(conn) -> set[str]:
    """Aliases of Neutron's extensions (FWaaS, LBaaS… show up there), or an empty set without Neutron."""
    try:
        return {x.alias for x in conn.network.extensions()}
    except Exception:  # no network service: nothing to reveal
        return set()


def as_a_service(entries: list[dict], extensions: set[str]) -> dict[str, list[str]]:
    """Offer -> what reveals it in this cloud (service types or `network:<extension>`), [] when absent."""
    types = {e["type"] for e in entries}
    offered = {}
    for offer, markers in AS_A_SERVICE.items():
        offered[offer] = [m for m in markers
                          if (m.startswith("network:") and m.split(":", 1)[1] in extensions) or m in types]
    return offered


def answers(conn, service: dict) -> tuple[str, int]:
    """GET the service's public endpoint with the token: (url, HTTP status). A connection error raises."""
    endpoints = service["endpoints"]
    url = next((e["url"] for e in endpoints if e["interface"] == "public"), None) or endpoints[0]["url"]
    response = conn.session.get(url, raise_exc=False, headers={"Accept": "application/json"})
    return url, response.status_code
