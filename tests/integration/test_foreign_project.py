"""Any cloud, as a student's or an operator's credentials see it: a fresh project of the embedded cloud,
with a member-only user, reached through a clouds.yaml entry that is *not* popek's (so popek sees a foreign
cloud: no admin, no embedded internals), made through the admin API and removed in the end.

Measured by hX on 2026-12-07 (`popek run cloud --os-cloud uni --no-cloud-up`, load 3–10):

| the cloud | verdicts | honest? | fixed |
|---|---|---|---|
| member-only user, fresh project, default quotas (-n 2, 341 s) | RÉUSSI 37, IGNORÉ 4 (C14 ×2 TCG/admin, C31/C32 not embedded) | yes | — |
| v3token entry | C34 IGNORÉ (a token holds no login/password), 8 RÉUSSI | yes | 8bade2a (was C34 ÉCHEC) |
| floatingip quota 0 | both C24 IGNORÉ with the quota | yes | b5de5f0 (was both ÉCHEC 409) |
| volume service filtered out of the project's catalog (OS-EP-FILTER endpoint groups) | Cinder rows of C27/C30 and C15 IGNORÉ, 12 RÉUSSI | yes | — |
| interface: internal | 7 RÉUSSI | yes | — |
| region_name RegionTwo | one line, exit 2 | yes | 42196d2 (was 7 ÉCHEC in English) |
| openrc OS_PROJECT_ID + OS_USER_DOMAIN_ID | 4 RÉUSSI (C34 too) | yes | — |
| openrc without domain | one line naming OS_USER_DOMAIN_NAME, exit 2 | yes | c66c632 |
| wrong password | one line (401), exit 2 | yes | — |

Round 2, hA on 2026-12-07 (each a fresh popek-hA-… project and user, `OS_CLIENT_CONFIG_FILE=… OS_CLOUD=uni`):

| the cloud | before | after |
|---|---|---|
| reader-only account (-n 2, whole cloud area) | 10 ÉCHEC + 3 errors, exit 1 (403 on every creation; C20 « image pas prête » on Glance's 403) | 21 RÉUSSI, 20 IGNORÉ « ce compte n'a que le rôle reader … HTTP 403 » / « données des images … refuse à ce compte », exit 0 (ec21b37, e13e042) |
| Keystone behind HTTPS, private CA, `cacert:` | C34's openrc without OS_CACERT (by the code: SSL error) | 10 RÉUSSI, OS_CACERT added to the openrc (d9c75a3) |
| same, `verify: false` | — | 10 RÉUSSI, OS_INSECURE added (d9c75a3) |
| same, no CA | one line « erreur TLS en contactant Keystone » | one line naming « certificat non reconnu (unable to get local issuer certificate) » and cacert:/verify: false (fdb5752) |
| `cacert:` file missing / holding no certificate | « authentification impossible : OSError » | one line naming the file (fdb5752) |
| domain-scoped entry (`domain_name:`, domain role) / system-scoped (`system_scope: all`) | (not measured before the fix) | one line « jeton à portée du domaine « Default » / du système entier … popek a besoin d'un compte sur un projet », exit 2 (9c742c6) |
| password in secure.yaml; `profile:` + clouds-public.yaml; `auth_type: password` + OS_PASSWORD only | 3 RÉUSSI each, no password written | unchanged |
| whole catalog over HTTPS (a region popek-hA-tls of https endpoints behind loopback haproxy, `cacert:`; under flock -x, deleted after) | (not measured before; by the code C17's raw GET and C16's Swift requests used requests' default CAs, C35 probed RegionOne's http addresses) | 14 passed: C16 C17 C27 C33 C34 C35 C36 C37 RÉUSSI, every call on https (d9c75a3, f3fc33c) |
| default security group without egress rules (-n 2) | 37 RÉUSSI, 4 IGNORÉ (true reasons), 170 s | unchanged |
| Horizon's clouds.yaml (no password) | Keystone's English 400, by the code | one line « le mot de passe manque … OS_PASSWORD, --os-password, secure.yaml » (79eb81d) |

Opt-in (each case makes a project and runs popek; the first three: 32 s at load ~4; the last three — reader,
domain scope, Keystone over HTTPS, which needs haproxy and openssl — 31.5 s, 2026-12-07 07:4x): POPEK_SLOW_FAULTS=1, under
`flock -s /tmp/popek-cloud.lock` (only the test's own project changes)."""
from __future__ import annotations

import contextlib
import os
import secrets
import time

import pytest
import yaml

from popek import paths
from popek.checks.cloud import connection

from faults import slow
from helpers import allure_results, run_popek

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("chaque cas crée un projet et y lance popek (~30 s)", " (sous flock -s)")]


def _project_name() -> str:
    """`popek-<8 hex>-fp`: a name ledger.NAME_RE takes for popek's, so a leftover is known for what it is."""
    return f"popek-{secrets.token_hex(4)}-fp"


@contextlib.contextmanager
def _project(roles=("member",), domain_roles=()):
    """(admin connection, project, user name, password, clouds.yaml entry): a fresh project with a user
    holding `roles` on it (and `domain_roles` on the Default domain), everything in it deleted in the end
    (servers, floating IPs, routers, ports, networks, groups, volumes, keypairs, quotas), then the user
    (its role assignments with it) and the project (see _remove)."""
    try:
        admin = connection.connect("popek-admin", {}, paths.embedded_clouds_yaml()).conn
    except connection.CloudUnavailable as exc:
        pytest.skip(f"pas de cloud embarqué : {exc}")
    name = _project_name()
    password = secrets.token_urlsafe(18)
    ident = admin.identity
    project = ident.create_project(name=name, domain_id="default")
    user = None
    try:
        user = ident.create_user(name=name, domain_id="default", password=password, default_project_id=project.id)
        for role in roles:
            ident.assign_project_role_to_user(project, user, ident.find_role(role))
        for role in domain_roles:
            ident.assign_domain_role_to_user(ident.get_domain("default"), user, ident.find_role(role))
        auth_url = yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]["auth"]["auth_url"]
        entry = {"auth": {"auth_url": auth_url, "username": name, "password": password, "project_name": name,
                          "user_domain_name": "Default", "project_domain_name": "Default"},
                 "region_name": "RegionOne", "identity_api_version": 3}
        yield admin, project, name, password, entry
    finally:
        _remove(admin, project, user)


@pytest.fixture
def foreign(tmp_path):
    """_project() with a member-only user."""
    with _project() as made:
        yield made


def _remove(admin, project, user) -> None:
    """Empty the project, then delete the user, then the project: each runs even if what came before
    raised (the first error is raised in the end), so no failure in the emptying leaks the project."""
    ident = admin.identity
    try:
        _empty(admin, project.id, user)
    finally:
        try:
            if user is not None:
                ident.delete_user(user, ignore_missing=True)
        finally:
            ident.delete_project(project, ignore_missing=True)


def _empty(admin, pid, user) -> None:
    """Delete what the project holds. Every step runs even if one before failed (a network still in use,
    a volume still detaching); the first failure is raised once all were tried."""
    net, compute, volumes = admin.network, admin.compute, admin.block_storage
    errors: list[BaseException] = []

    def step(call, *args, **kwargs):
        try:
            call(*args, **kwargs)
        except Exception as exc:
            errors.append(exc)

    def servers():
        return list(compute.servers(all_projects=True, project_id=pid))

    def wait(what, seconds=120):
        deadline = time.time() + seconds
        while what() and time.time() < deadline:
            time.sleep(2)

    for s in servers():
        step(compute.delete_server, s, force=True)
    for f in net.ips(project_id=pid):
        step(net.delete_ip, f)
    for r in net.routers(project_id=pid):
        for port in net.ports(device_id=r.id, device_owner="network:router_interface"):
            with contextlib.suppress(Exception):
                net.remove_interface_from_router(r, port_id=port.id)
        step(net.delete_router, r)
    wait(servers)
    for port in net.ports(project_id=pid):
        with contextlib.suppress(Exception):
            net.delete_port(port)
    for n in net.networks(project_id=pid):
        step(net.delete_network, n)
    for g in net.security_groups(project_id=pid):
        with contextlib.suppress(Exception):
            net.delete_security_group(g)
    with contextlib.suppress(Exception):
        net.delete_quota(pid)
    with contextlib.suppress(Exception):  # a cloud without Cinder has no volumes
        for b in volumes.backups(all_projects=True, project_id=pid):
            step(volumes.delete_backup, b, force=True)
        wait(lambda: list(volumes.backups(all_projects=True, project_id=pid)), 60)
        for v in volumes.volumes(all_projects=True, project_id=pid):
            step(volumes.delete_volume, v, cascade=True)    # with its snapshots
        wait(lambda: list(volumes.volumes(all_projects=True, project_id=pid)), 60)
    if user is not None:
        for kp in compute.keypairs(user_id=user.id):
            step(compute.delete_keypair, kp.name, user_id=user.id)
    if errors:
        raise errors[0]


def _run(tmp_path, entry, *args):
    """`popek run cloud --os-cloud uni` with `entry` as the user's only clouds.yaml, no OS_* variable."""
    home = tmp_path / "home"
    (home / ".config" / "openstack").mkdir(parents=True)
    (home / ".config" / "openstack" / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {"uni": entry}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(HOME=str(home), POPEK_HOME=str(paths.state_home()))
    results = tmp_path / "r"
    proc = run_popek("run", "cloud", "--os-cloud", "uni", "--no-cloud-up", "--no-report", "--results",
                     str(results), *args, cwd=home, env=env)
    found = allure_results(results) if (results / "allure-results").is_dir() else []
    written = proc.stdout + proc.stderr + "".join(
        p.read_text(errors="replace") for p in results.rglob("*") if p.is_file())
    return proc, found, written


def test_a_token_entry_skips_the_openrc_claim_and_leaks_no_token(foreign, tmp_path):
    import openstack

    admin, project, name, password, entry = foreign
    member = openstack.connect(**entry["auth"], region_name="RegionOne")
    token = member.session.get_token()
    entry = {**entry, "auth_type": "v3token",
             "auth": {"auth_url": entry["auth"]["auth_url"], "token": token, "project_id": project.id}}
    proc, found, written = _run(tmp_path, entry, "--claim", "C34", "--claim", "C22")
    assert proc.returncode == 0, proc.stderr[-2000:]
    by_claim = {tuple(x["value"] for x in r["labels"] if x["name"] == "claim"): r for r in found}
    c34 = by_claim[("C34",)]
    assert c34["status"] == "skipped" and "v3token" in c34["statusDetails"]["message"], c34.get("statusDetails")
    assert by_claim[("C22",)]["status"] == "passed"
    assert token not in written and password not in written


def test_a_floating_ip_quota_of_zero_is_ignored_with_the_quota(foreign, tmp_path):
    admin, project, name, password, entry = foreign
    admin.network.update_quota(project.id, floating_ips=0)
    proc, found, written = _run(tmp_path, entry, "--claim", "C24")
    assert found and all(r["status"] == "skipped" and "quota d'IP flottantes de ce projet est 0"
                         in r["statusDetails"]["message"] for r in found), [(r["name"], r["status"]) for r in found]
    assert password not in written


def test_a_region_the_catalog_lacks_is_one_line(foreign, tmp_path):
    admin, project, name, password, entry = foreign
    proc, found, written = _run(tmp_path, {**entry, "region_name": "RegionTwo"}, "--claim", "C17")
    assert proc.returncode != 0 and not found
    assert len(proc.stderr.strip().splitlines()) == 1 and "la région « RegionTwo »" in proc.stderr
    assert password not in written


def test_a_reader_only_account_checks_what_it_reads_and_ignores_every_write(tmp_path):
    """Keystone's `reader` role alone (a teacher's audit account): was 10 ÉCHEC + 3 errors (403 on every
    creation, Glance's image data 403 told as a broken image); now the reads pass, every scenario that
    writes is IGNORÉ « ce compte n'a que le rôle reader », exit 0."""
    with _project(roles=("reader",)) as (admin, project, name, password, entry):
        proc, found, written = _run(tmp_path, entry, "--claim", "C22", "--claim", "C21", "--claim", "C20",
                                    "--claim", "C25", "--claim", "C24")
    assert proc.returncode == 0, proc.stdout[-3000:]
    status = {r["name"]: (r["status"], (r.get("statusDetails") or {}).get("message", "")) for r in found}
    assert all(s in ("passed", "skipped") for s, _ in status.values()), status
    writes = [m for s, m in status.values() if s == "skipped" and "ce compte n'a que le rôle reader" in m]
    assert len(writes) >= 5 and any(s == "passed" for s, _ in status.values()), status
    assert password not in written


def test_a_domain_scoped_entry_is_one_line_asking_for_a_project(tmp_path):
    with _project(roles=(), domain_roles=("member",)) as (admin, project, name, password, entry):
        auth = {k: v for k, v in entry["auth"].items() if not k.startswith("project_")}
        proc, found, written = _run(tmp_path, {**entry, "auth": {**auth, "domain_name": "Default"}}, "--claim", "C22")
    assert proc.returncode != 0 and not found
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "jeton à portée du domaine « Default »" in proc.stderr and "Traceback" not in proc.stderr
    assert password not in written


@pytest.fixture
def tls_keystone(tmp_path):
    """(https URL of the embedded Keystone behind a TLS proxy on loopback, its private CA's file): haproxy
    with a certificate for 127.0.0.1 signed by a CA made here; stopped in the end."""
    import shutil
    import socket
    import subprocess

    if not (shutil.which("haproxy") and shutil.which("openssl")):
        pytest.skip("haproxy et openssl sont nécessaires pour un Keystone en HTTPS")
    tls = tmp_path / "tls"
    tls.mkdir()

    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=tls, check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=popek test CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (tls / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem",
        "-days", "1", "-extfile", "ext")
    (tls / "both.pem").write_text((tls / "srv.pem").read_text() + (tls / "srv.key").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth_url = yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]["auth"]["auth_url"]
    backend = auth_url.split("//", 1)[1].split("/", 1)[0]
    (tls / "haproxy.cfg").write_text(
        "defaults\n  mode http\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n"
        f"frontend ks\n  bind 127.0.0.1:{port} ssl crt {tls / 'both.pem'}\n"
        "  http-request set-header X-Forwarded-Proto https\n  default_backend ks\n"
        f"backend ks\n  server s {backend}\n")
    proxy = subprocess.Popen(["haproxy", "-db", "-f", str(tls / "haproxy.cfg")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield auth_url.replace(f"http://{backend}", f"https://127.0.0.1:{port}"), str(tls / "ca.pem")
    finally:
        proxy.terminate()
        proxy.wait(10)


def test_keystone_behind_https_with_a_private_ca(foreign, tls_keystone, tmp_path):
    """cacert: -> the openrc of C34 carries OS_CACERT and passes; verify: false -> passes; no CA -> one line
    naming the certificate problem and the cure, exit 2 (was 'erreur TLS en contactant Keystone')."""
    admin, project, name, password, entry = foreign
    url, ca = tls_keystone
    on_tls = {**entry, "auth": {**entry["auth"], "auth_url": url}}
    for extra in ({"cacert": ca}, {"verify": False}):
        proc, found, written = _run(tmp_path / str(len(extra)) / next(iter(extra)), {**on_tls, **extra},
                                    "--claim", "C34", "--claim", "C35")
        assert proc.returncode == 0 and found and all(r["status"] == "passed" for r in found), \
            (extra, [(r["name"], r["status"]) for r in found], proc.stdout[-2000:])
        assert password not in written
    proc, found, written = _run(tmp_path / "noca", on_tls, "--claim", "C35")
    assert proc.returncode == 2 and not found and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "certificat non reconnu (unable to get local issuer certificate)" in proc.stderr and "cacert:" in proc.stderr
    assert password not in written
