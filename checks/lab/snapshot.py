"""What a student's project holds, read once with the student's own credentials, and nothing changed.

`inspect(conn)` lists the project's keypairs, security groups (with rules), servers (flavor, image,
networks, keypair, groups), volumes (attachments), floating IPs (target server), containers and
objects, into a plain `Snapshot` (JSON-serialisable: it is kept as the grading evidence). The checks
of `registry.py` read only the Snapshot, so they are pure and unit-testable.

Read-only is enforced, not just intended: during the inspection `read_only(conn)` wraps the
connection's keystoneauth Session so that any request other than GET/HEAD raises
`ReadOnlyViolation` (the only exception: POST /auth/tokens, which re-authenticates).
One thing a read can create, and not by popek: Neutron makes a project's `default` security group
on its first security-group listing (the student's own first `openstack security group list` does
the same). Every other resource count is identical before and after an inspection.
A service the cloud does not offer (no object store…) is recorded in `unavailable` with the reason;
the checks that need it then say "non vérifiable" instead of failing the student.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable


class ReadOnlyViolation(RuntimeError):
    """The inspection tried to change something (a bug in popek, never the student's fault)."""


@dataclasses.dataclass
class Snapshot:
    """One project's resources as plain data (see module doc). Each list holds dicts; field names:

    keypairs: name, type, fingerprint
    security_groups: id, name, rules [direction, protocol, port_min, port_max, remote_ip_prefix, ethertype]
    servers: id, name, status, flavor (name), image (name, else id), networks [names], key_name,
             security_groups [names]
    volumes: id, name, status, size (GiB), attached_to [server ids]
    floating_ips: id, address, network (name), port_id, server_id (None when not associated)
    containers: name, objects [{name, bytes}]
    unavailable: service type -> French reason (service absent from the catalog)."""
    project_id: str = ""
    keypairs: list = dataclasses.field(default_factory=list)
    security_groups: list = dataclasses.field(default_factory=list)
    servers: list = dataclasses.field(default_factory=list)
    volumes: list = dataclasses.field(default_factory=list)
    floating_ips: list = dataclasses.field(default_factory=list)
    containers: list = dataclasses.field(default_factory=list)
    unavailable: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Snapshot":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


#: HTTP methods that read; everything else is refused during an inspection.
READ_METHODS = ("GET", "HEAD")


@contextlib.contextmanager
def read_only(conn):
    """Refuse every request of `conn` that could change the cloud, for the duration of the block.

    conn: openstack.connection.Connection. The SDK's proxies are keystoneauth Adapters sharing
    `conn.session`; shadowing the Session's `request` on the instance guards all of them."""
    session = conn.session
    original = session.request

    def guarded(url, method, *args, **kwargs):
        if method.upper() not in READ_METHODS and not str(url).rstrip("/").endswith("/auth/tokens"):
            raise ReadOnlyViolation(f"inspection en lecture seule : requête {method} {url} refusée")
        return original(url, method, *args, **kwargs)

    session.request = guarded
    try:
        yield conn
    finally:
        del session.request     # back to the class method


def _absent(exc: BaseException) -> bool:
    """True when `exc` says the service is not in the catalog (the cloud does not offer it)."""
    from openstack import exceptions as sdk_exc
    from keystoneauth1 import exceptions as ks
    return isinstance(exc, (sdk_exc.EndpointNotFound, ks.EndpointNotFound, ks.catalog.EndpointNotFound))


def _section(snap: Snapshot, service: str, read: Callable[[], None]) -> None:
    """Run one part of the inspection; a service missing from the catalog is recorded, not raised."""
    try:
        read()
    except Exception as exc:
        if _absent(exc):
            snap.unavailable[service] = f"le cloud n'offre pas le service « {service} » (absent du catalogue)"
            return
        raise


def _flavor_name(conn, flavor: dict, cache: dict) -> str:
    # microversion >= 2.47 embeds the flavor (original_name); older ones give only its id
    if flavor.get("original_name") or flavor.get("name"):
        return flavor.get("original_name") or flavor.get("name")
    fid = flavor.get("id")
    if fid and fid not in cache:
        try:
            cache[fid] = conn.compute.get_flavor(fid).name
        except Exception:  # a deleted flavor: keep its id
            cache[fid] = fid
    return cache.get(fid, "")


def inspect(conn) -> Snapshot:
    """Read the project of `conn` (see module doc); raises on HTTP errors other than a missing service.

    conn: an authenticated openstack.connection.Connection scoped to the student's project."""
    snap = Snapshot(project_id=conn.current_project_id)
    with read_only(conn):
        net_names: dict[str, str] = {}
        port_device: dict[str, str] = {}
        port_network: dict[str, list] = {}

        def network():
            for n in conn.network.networks():
                net_names[n.id] = n.name or n.id
            for p in conn.network.ports(project_id=snap.project_id):
                port_device[p.id] = p.device_id or ""
                if p.device_id:
                    port_network.setdefault(p.device_id, []).append(p.network_id)
            for g in conn.network.security_groups(project_id=snap.project_id):
                snap.security_groups.append({"id": g.id, "name": g.name, "rules": [
                    {"direction": r.get("direction"), "protocol": r.get("protocol"),
                     "port_min": r.get("port_range_min"), "port_max": r.get("port_range_max"),
                     "remote_ip_prefix": r.get("remote_ip_prefix"), "ethertype": r.get("ethertype")}
                    for r in (g.security_group_rules or [])]})
            for f in conn.network.ips(project_id=snap.project_id):
                snap.floating_ips.append({"id": f.id, "address": f.floating_ip_address,
                                          "network": net_names.get(f.floating_network_id, f.floating_network_id),
                                          "port_id": f.port_id,
                                          "server_id": port_device.get(f.port_id) or None if f.port_id else None})

        def images():
            return {i.id: i.name for i in conn.image.images()}

        def compute():
            snap.keypairs = [{"name": k.name, "type": k.type, "fingerprint": k.fingerprint}
                             for k in conn.compute.keypairs()]
            image_names: dict[str, str] = {}
            _section(snap, "image", lambda: image_names.update(images()))
            flavors: dict[str, str] = {}
            for s in conn.compute.servers(details=True):
                image_id = (s.image or {}).get("id") if isinstance(s.image, dict) else None
                nets = [net_names.get(n, n) for n in port_network.get(s.id, [])]
                if not nets:  # ports not visible (no network service): Nova's own view
                    nets = sorted((s.addresses or {}).keys())
                snap.servers.append({
                    "id": s.id, "name": s.name, "status": s.status,
                    "flavor": _flavor_name(conn, s.flavor or {}, flavors),
                    "image": image_names.get(image_id, image_id) if image_id else "",
                    "networks": sorted(set(nets)), "key_name": s.key_name,
                    "security_groups": sorted({g.get("name") for g in (s.security_groups or []) if g.get("name")})})

        def volumes():
            for v in conn.block_storage.volumes(details=True):
                snap.volumes.append({"id": v.id, "name": v.name or "", "status": v.status, "size": v.size,
                                     "attached_to": [a.get("server_id") for a in (v.attachments or [])]})

        def objects():
            for c in conn.object_store.containers():
                snap.containers.append({"name": c.name, "objects": [
                    {"name": o.name, "bytes": getattr(o, "content_length", None) or getattr(o, "bytes", None)}
                    for o in conn.object_store.objects(c.name)]})

        _section(snap, "network", network)
        _section(snap, "compute", compute)
        _section(snap, "block-storage", volumes)
        _section(snap, "object-store", objects)
    return snap


def counts(snap: Snapshot) -> dict[str, int]:
    """How many resources of each kind a snapshot holds (to compare before/after)."""
    return {"keypairs": len(snap.keypairs), "security_groups": len(snap.security_groups),
            "rules": sum(len(g["rules"]) for g in snap.security_groups), "servers": len(snap.servers),
            "volumes": len(snap.volumes), "floating_ips": len(snap.floating_ips),
            "containers": len(snap.containers), "objects": sum(len(c["objects"]) for c in snap.containers)}
