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

Opt-in (each case makes a project and runs popek; the three: 32 s at load ~4): POPEK_SLOW_FAULTS=1, under
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

from helpers import allure_results, run_popek

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              pytest.mark.skipif(os.environ.get("POPEK_SLOW_FAULTS") != "1",
                                 reason="budget CI : POPEK_SLOW_FAULTS=1 pour les lancer (sous flock -s)")]


def _project_name() -> str:
    """`popek-<8 hex>-fp`: a name ledger.NAME_RE takes for popek's, so a leftover is known for what it is."""
    return f"popek-{secrets.token_hex(4)}-fp"


@pytest.fixture
def foreign(tmp_path):
    """(admin connection, project, user name, password, member clouds.yaml entry): a fresh project with a
    member-only user, everything in it deleted in the end (servers, floating IPs, routers, ports,
    networks, groups, volumes, keypairs, quotas), then the user and the project (see _remove)."""
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
        ident.assign_project_role_to_user(project, user, ident.find_role("member"))
        auth_url = yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]["auth"]["auth_url"]
        entry = {"auth": {"auth_url": auth_url, "username": name, "password": password, "project_name": name,
                          "user_domain_name": "Default", "project_domain_name": "Default"},
                 "region_name": "RegionOne", "identity_api_version": 3}
        yield admin, project, name, password, entry
    finally:
        _remove(admin, project, user)


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
