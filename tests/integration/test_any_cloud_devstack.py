"""Any cloud, round 4: a devstack-style catalog, every API behind one web server under a path prefix
(`http://host/identity`, `http://host/compute/v2.1`, `http://host/image`, `http://host/networking`,
`http://host/volume/v3`, `http://host/placement`, `http://host/object-store/v1/AUTH_…`), as devstack's
Apache serves them. Made on the embedded cloud without disturbing others: a reverse proxy owned by the test
(loopback, a free port, prefix -> the embedded service, the services' own addresses in the answers
rewritten to the prefixed ones, as Apache's ProxyPass + the services' proxy headers do), a Keystone region
`popek-hA-<hex>` whose endpoints point through it, a fresh member-only project (test_foreign_project's),
and a clouds.yaml with `region_name` and `auth_url: http://127.0.0.1:<p>/identity`; all deleted in the end.

Measured by hA on 2026-12-07 (live.py-style runs of these fixtures, `popek run cloud --os-cloud uni --no-cloud-up`):

| the cloud | before | after |
|---|---|---|
| devstack-style prefixes, catalogue claims (C11 C17 C27 C28 C30 C33 C34 C35 C36), 220 s, 13:11 | 19 RÉUSSI, C35 and C27 ÉCHEC « http://127.0.0.1:44341/info → 404 » (Swift's /info looked for at the server's root) | dc139c1 (/info where /v1 begins); not re-run live (the lock was taken) |
| same region, public endpoints on a closed port, `interface: internal` | not run live; by the code C35/C27 probed the public addresses | a5d404d (the client's interface first); unit-tested only |

Opt-in: POPEK_SLOW_FAULTS=1, under `flock -s /tmp/popek-cloud.lock` (only the test's project and region)."""
from __future__ import annotations

import contextlib
import http.client
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from faults import slow
from test_foreign_project import _project, _run

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("un projet, une région et un proxy à préfixes de chemin, popek lancé dessus", " (sous flock -s)")]

#: devstack's path prefix per service type, and the path after it (devstack's endpoint paths).
DEVSTACK = {"identity": ("/identity", ""), "compute": ("/compute", "/v2.1"), "image": ("/image", ""),
            "network": ("/networking", ""), "volumev3": ("/volume", "/v3"), "placement": ("/placement", ""),
            "object-store": ("/object-store", "/v1/AUTH_%(project_id)s")}

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
       "content-length", "host"}


class PrefixProxy:
    """A reverse proxy on 127.0.0.1:<free port>: `/prefix/rest` -> `backend/rest`, and every backend base
    address in an answer (bodies, Location) rewritten to `http://127.0.0.1:<port>/prefix`."""

    def __init__(self, routes: dict[str, str]):
        self.routes = routes            # "/compute" -> "http://127.0.0.1:8774"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                proxy.forward(self)
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def rewrite(self, data: bytes) -> bytes:
        for prefix, backend in self.routes.items():
            data = data.replace(backend.encode(), (self.base + prefix).encode())
        return data

    def forward(self, h: BaseHTTPRequestHandler) -> None:
        prefix = next((p for p in self.routes if h.path == p or h.path.startswith(p + "/")
                       or h.path.startswith(p + "?")), None)
        if prefix is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        backend = urlsplit(self.routes[prefix])
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    while h.rfile.readline().strip():
                        pass
                    break
                body += h.rfile.read(size)
                h.rfile.readline()
        else:
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection(backend.hostname, backend.port, timeout=300)
        try:
            conn.request(h.command, h.path[len(prefix):] or "/", body=body if body or h.command in
                         ("POST", "PUT", "PATCH") else None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except OSError:
            h.send_response(502)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        finally:
            conn.close()
        kind = answer.getheader("Content-Type", "")
        if ("json" in kind or "text" in kind) and not h.path.split("?")[0].rstrip("/").endswith(
                ("/auth/tokens", "/auth/catalog")):     # Keystone's catalog says what the endpoints say
            data = self.rewrite(data)
        h.send_response(answer.status, answer.reason)
        for k, v in answer.getheaders():
            if k.lower() not in HOP:
                h.send_header(k, self.rewrite(v.encode()).decode() if k.lower() == "location" else v)
        # a HEAD's length is the object's (Swift's HEAD of an object), not of the empty body read here
        h.send_header("Content-Length", answer.getheader("Content-Length", "0") if h.command == "HEAD"
                      else str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


@contextlib.contextmanager
def devstack_region(admin, public_unreachable: bool = False):
    """(region id, proxy): a region `popek-hA-<hex>` whose public/internal/admin endpoints are RegionOne's
    public ones behind a PrefixProxy under devstack's paths; the endpoints and the region deleted in the end.
    public_unreachable: the public endpoints on a closed port (127.0.0.1:9) instead, as a cloud whose public
    addresses only the outside reaches (its users on the inside set `interface: internal`)."""
    ident = admin.identity
    services = {s.id: s.type for s in ident.services()}
    ones = [e for e in ident.endpoints(interface="public") if e.region_id == "RegionOne"]
    routes, paths = {}, {}
    for e in ones:
        kind = services.get(e.service_id)
        if kind not in DEVSTACK:
            continue
        parts = urlsplit(e.url.replace("%(", "%28").replace(")s", "%29s"))
        prefix, tail = DEVSTACK[kind]
        routes[prefix] = f"{parts.scheme}://{parts.netloc}"
        paths[e.service_id] = (prefix, tail)
    region = ident.create_region(id=f"popek-hA-{secrets.token_hex(3)}")
    made = []
    try:
        with PrefixProxy(routes) as proxy:
            for service_id, (prefix, tail) in paths.items():
                for interface in ("public", "internal", "admin"):
                    base = "http://127.0.0.1:9" if public_unreachable and interface == "public" else proxy.base
                    made.append(ident.create_endpoint(service_id=service_id, interface=interface,
                                                      region_id=region.id, url=base + prefix + tail))
            yield region.id, proxy
    finally:
        for e in made:
            with contextlib.suppress(Exception):
                ident.delete_endpoint(e)
        ident.delete_region(region)


def test_a_devstack_catalog_behind_path_prefixes(tmp_path):
    """Every claim of the cloud area passes or is IGNORÉ with a true reason through devstack-style URLs."""
    with _project() as (admin, project, name, password, entry), devstack_region(admin) as (region, proxy):
        entry = {**entry, "region_name": region,
                 "auth": {**entry["auth"], "auth_url": proxy.base + "/identity"}}
        proc, found, written = _run(tmp_path, entry, "-n", "2")
    status = {r["name"]: (r["status"], (r.get("statusDetails") or {}).get("message", "")[:300]) for r in found}
    assert found and proc.returncode == 0, (proc.stdout[-3000:], {k: v for k, v in status.items() if v[0] != "passed"})
    assert all(s in ("passed", "skipped") for s, _ in status.values()), status
    assert password not in written


def test_public_endpoints_unreachable_and_interface_internal(tmp_path):
    """`interface: internal` where only the internal addresses answer: the catalog scenarios check the
    addresses the client uses (C35 was ÉCHEC on the unreachable public ones)."""
    with _project() as (admin, project, name, password, entry), \
            devstack_region(admin, public_unreachable=True) as (region, proxy):
        entry = {**entry, "region_name": region, "interface": "internal",
                 "auth": {**entry["auth"], "auth_url": proxy.base + "/identity"}}
        proc, found, written = _run(tmp_path, entry, "--claim", "C35", "--claim", "C27", "--claim", "C11",
                                    "--claim", "C30", "--claim", "C22")
    status = {r["name"]: (r["status"], (r.get("statusDetails") or {}).get("message", "")[:300]) for r in found}
    assert found and proc.returncode == 0, (proc.stdout[-3000:], status)
    assert all(s in ("passed", "skipped") for s, _ in status.values()), status
    assert password not in written
