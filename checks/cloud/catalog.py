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
#: IaaS needs the three APIs an instance is made from; SaaS (an application) is never in a catalog.
AS_A_SERVICE = {
    "IaaS (Infrastructure as a Service)": ("compute", "image", "network"),
    "PaaS (Platform as a Service)": ("container-infra", "application-catalog", "orchestration"),
    "SaaS (Software as a Service)": (),
    "DBaaS (Database as a Service)": ("database",),
    "NaaS (Network as a Service)": ("network",),
    "FWaaS (Firewall as a Service)": ("network:fwaas_v2",),
    "LBaaS (Load Balancer as a Service)": ("load-balancer", "network:lbaasv2"),
    "DNSaaS (DNS as a Service)": ("dns",),
}


def catalog(conn) -> list[dict]:
    """The catalog of the token `conn` obtained: [{"type", "name", "endpoints": [{interface, region, url}]}].

    Read from the authentication answer itself (keystoneauth keeps it), i.e. the first request's result.
    Each service's endpoints in the connection's region (clouds.yaml region_name) come first: on a cloud of
    several regions, the address checked is the one this client uses (public_url takes the first). Each
    service also says the interfaces this client uses for it, in its order of preference (clouds.yaml
    `interface:` / OS_INTERFACE, or that service's own `<type>_interface:`, public by default): on a cloud
    whose public addresses this machine cannot reach, the client uses its internal ones."""
    access = conn.session.auth.get_access(conn.session)
    config = getattr(conn, "config", None)
    region = getattr(config, "region_name", None)
    out = []
    for service in access.service_catalog.catalog:
        endpoints = [{"interface": e.get("interface"), "region": e.get("region_id") or e.get("region"),
                      "url": e.get("url")} for e in service.get("endpoints", [])]
        endpoints.sort(key=lambda e: bool(region) and e["region"] != region)     # stable: the rest keep their order
        interfaces = client_interfaces(config, service.get("type"))
        out.append({"type": service.get("type"), "name": service.get("name"), "endpoints": endpoints,
                    "interface": interfaces[0], "interfaces": interfaces, "region": region})
    return out


def in_region(service: dict) -> bool:
    """Does the client reach this catalog() service in its region (clouds.yaml region_name / OS_REGION_NAME)?
    False for a service whose endpoints are all in other regions: the SDK and the `openstack` client never
    call it (keystoneauth filters the catalog by region), so its addresses are no evidence about this cloud
    as this client sees it. True without a region, or for a service without endpoints."""
    region = service.get("region")
    return not region or not service["endpoints"] or any(e["region"] in (region, None) for e in service["endpoints"])


def client_interfaces(region, service_type: str | None = None) -> list[str]:
    """The catalog interfaces the `openstack` client uses for `service_type` with this cloud entry (`region`:
    openstacksdk's CloudRegion, conn.config), in its order of preference, as openstacksdk reads them
    (CloudRegion.get_interface): the service's own `<type>_interface:` (or one of its aliases', e.g.
    volume_interface for volumev3), else `interface:` (OS_INTERFACE), "public" by default; a list is kept in
    its order (keystoneauth takes the first the service has); old spellings (publicURL, internalURL) too."""
    given = None
    try:
        given = region.get_interface(service_type)
    except AttributeError:      # not a CloudRegion: its plain config dict
        given = (getattr(region, "config", None) or {}).get("interface")
    except Exception:           # openstacksdk refuses the value: the connection already said so
        given = None
    values = given if isinstance(given, (list, tuple)) else [given]
    names = [str(v).lower() for v in values if v]
    names = [n[:-3] if n.endswith("url") else n for n in names]
    return list(dict.fromkeys(names)) or ["public"]


def course_table(entries: list[dict]) -> list[dict]:
    """One row per catalog service: type, name, course function, project (None when not in the course)."""
    rows = []
    for e in entries:
        function, project = COURSE_NAMES.get(e["type"], (None, OTHER_PROJECTS.get(e["type"])))
        rows.append({"type": e["type"], "nom": e["name"], "fonction (cours)": function, "projet": project,
                     "url": public_url(e)})
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


def public_url(service: dict) -> str | None:
    """The URL the client uses for the service: its endpoint of the first of the client's interfaces it has
    (catalog()'s "interfaces", or "interface"; public by default), else its public one, else its first, in
    the client's region (catalog()'s "region") when it has one; None without endpoints there."""
    region = service.get("region")
    endpoints = [e for e in service["endpoints"] if not region or e["region"] in (region, None)]
    if not endpoints:       # none, or only in other regions than the client's (see in_region)
        return None
    wanted = list(service.get("interfaces") or [service.get("interface") or "public"]) + ["public"]
    return next((e["url"] for interface in wanted for e in endpoints if e["interface"] == interface), None) \
        or endpoints[0]["url"]


def version_urls(service_type: str, url: str) -> list[str]:
    """Where the version document of the API at catalog address `url` is, as clients discover it: the
    address itself without a trailing project id, then its parent (Glance, Neutron, Cinder answer at their
    root); Swift's discovery document is /info where its /v1 begins (openstacksdk's and swiftclient's rule):
    the server's root on a cloud of one port per API, `http://host/object-store/info` behind devstack's
    path prefixes."""
    import re
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    root = f"{parts.scheme}://{parts.netloc}/"
    path = parts.path.rstrip("/")
    if service_type == "object-store":
        versioned = re.search(r"/v\d+(\.\d+)?(/|$)", path)
        return [f"{parts.scheme}://{parts.netloc}{path[:versioned.start()] if versioned else path}/info"]
    last = path.rsplit("/", 1)[-1]
    if last.startswith("AUTH_") or (len(last) == 32 and all(c in "0123456789abcdef" for c in last)) or "%(" in last:
        path = path.rsplit("/", 1)[0]
    here = f"{parts.scheme}://{parts.netloc}{path}"
    parent = f"{parts.scheme}://{parts.netloc}{path.rsplit('/', 1)[0]}/" if path else root
    return list(dict.fromkeys([here or root, parent]))


def version_answer(session, service: dict) -> dict:
    """Ask the API at the service's catalog address for its version document, without a token, like a
    client's discovery does. Returns {"url": catalog address, "essais": [[url, status or error]],
    "document": the url that answered 200/300 with a version document, or None}."""
    url = public_url(service)
    out = {"url": url, "essais": [], "document": None}
    if url is None:
        return out
    for candidate in version_urls(service["type"], url):
        try:
            response = session.get(candidate, authenticated=False, raise_exc=False, connect_retries=0,
                                   headers={"Accept": "application/json"})
        except Exception as exc:  # refused, timed out, DNS: what the client would meet
            out["essais"].append([candidate, f"injoignable ({type(exc).__name__})"])
            continue
        out["essais"].append([candidate, response.status_code])
        if response.status_code in (200, 300) and _is_version_document(response):
            out["document"] = candidate
            break
    return out


def _is_version_document(response) -> bool:
    try:
        doc = response.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and bool({"version", "versions", "swift"} & set(doc))


def answer_text(project: str, found: dict) -> str:
    """French account of version_answer(): who answered where, for the report and the failure message."""
    tries = " ; ".join(f"{u} → {s}" for u, s in found["essais"]) or "aucune adresse au catalogue"
    if found["document"]:
        return f"{project} répond à {found['document']} par son document de versions"
    return f"{project} (adresse du catalogue {found['url']}) ne rend pas de document de versions : {tries}"


def named_by_course(entry: dict, project: str) -> bool:
    """Does the catalog's own `name` of this service say `project` (e.g. "nova", "cinderv3" for Cinder)?"""
    return (entry.get("name") or "").lower().startswith(project.lower())
