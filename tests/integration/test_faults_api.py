"""Fault tests of the API-level cloud claims (issue #20): each puts the real embedded cloud in a state
where claims are false, runs those claims' real scenarios with `popek run cloud --claim …` as a user
would, and asserts that their verdict is ÉCHEC with the measurement in the message — then restores the
cloud (restart, admin API) and checks that it answers again, so later tests are unaffected.

| fault | claims | what the scenario must say |
|---|---|---|
| swift-proxy stopped | C16 | the object store's address does not answer |
| glance-api stopped | C20, C27, C36 | Glance's address (9292) does not answer; Nova, Neutron… still do |
| nova-api stopped (nova's metadata API, in the same process, too) | C17, C33, C36, C37 | the compute API (8774) does not answer, to HTTP and to the client |
| catalog altered (admin API): compute's address → Placement, network's → a closed port, image renamed | C11, C27, C28, C30, C35 | 1.x is no Nova microversion; Neutron's address does not answer; "images" is not Glance |
| a flavor with 0 vCPU (written in Nova's database) | C22 | the flavor is not a CPU/RAM/disk size |
| every nova-compute disabled (admin API: `compute service set --disable`) | C21, C37 | No valid host, every compute disabled (GET /os-services) |
| the member's password changed in Keystone while the run holds its token | C34 | the openrc gets a 401 |
| RabbitMQ frozen (SIGSTOP) | C31 | the bus does not greet |
| the venv's swift recorded as installed by another tool (INSTALLER) | C32 | not installed by pip |
| Neutron stores each rule one port wider than asked (a MariaDB trigger on its rule table) | C25 | the rule read back is not the one given |

And one state where a claim must NOT fail (issue #19): Swift and Cinder disabled in Keystone (a real
catalog without them) — their scenarios say IGNORÉ with the true reason, never ÉCHEC nor RÉUSSI; and
likewise the project's instance quota set to 0: C21 and C37 IGNORÉ with the quota, its limit and its use.

Run serially (CI) or under `flock -x /tmp/popek-cloud.lock` (these faults change the cloud for everyone).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import textwrap

import pytest
import yaml

from popek import paths
from popek.checks.localcloud import lifecycle, services
from popek.checks.localcloud.state import CloudState

from helpers import allure_results, frozen, run_popek

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, running (its processes are what the faults stop)."""
    st = CloudState(paths.embedded_cloud_dir())
    if os.geteuid() != 0:
        pytest.skip("il faut être root pour arrêter les services du cloud embarqué")
    if not paths.embedded_clouds_yaml().is_file():
        pytest.skip("pas de cloud embarqué (popek cloud up)")
    _, rows = lifecycle.status(st)
    if not any(r.name == "nova-api" and r.pid for r in rows):
        pytest.skip("le cloud embarqué ne tourne pas")
    return st


@pytest.fixture(scope="module")
def admin(state):
    from popek.checks.cloud import connection

    return connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn


def service(state: CloudState, name: str) -> services.Service:
    mod = lifecycle.dataplane_module() if lifecycle.read_mode(state).get("dataplane") else None
    return next(s for s in lifecycle.table(state, mod) if s.name == name)


@contextlib.contextmanager
def stopped(state: CloudState, name: str):
    """Service `name` stopped (SIGTERM to its session), started again and answering in the end."""
    svc = service(state, name)
    assert services.read_pid(state, name) is not None, f"{name} ne tourne pas"
    left = services.stop(state, [name])
    assert not left, f"{name} survit à l'arrêt : {left}"
    try:
        yield svc
    finally:
        if services.read_pid(state, name) is None:  # (unless something restarted it meanwhile)
            services.start(state, svc)
        services.wait_healthy(state, [svc], timeout=120)


def run_claims(tmp_path, *claims: str, plugin: str | None = None, keyword: str | None = None) -> dict[str, dict]:
    """`popek run cloud --claim …` as a user would (plus an optional fault plugin, and `-k keyword` to run
    only some of the claims' scenarios): {scenario name: result}."""
    env, extra = {}, ["-k", keyword] if keyword else []
    if plugin:
        (tmp_path / "popek_fault_plugin.py").write_text(textwrap.dedent(plugin))
        env["PYTHONPATH"] = str(tmp_path)
        extra += ["--", "-p", "popek_fault_plugin"]
    results = tmp_path / "r"
    args = [a for c in claims for a in ("--claim", c)]
    # --no-cloud-up: `popek run` would otherwise restart the service the fault stopped before the scenarios;
    # -n 0: one process (popek run's default is 2 workers on 2 cores): a claim's few scenarios do not pay
    # for two workers' start-up and their two shared networks, and the faults are proven as measured
    proc = run_popek("run", "cloud", "--no-report", "--no-cloud-up", "-n", "0", "--results", str(results), *args,
                     *extra, cwd=tmp_path, env=env)
    found = {r["uuid"]: r for r in allure_results(results)}  # outline rows share a name
    assert found, proc.stdout[-3000:] + proc.stderr[-2000:]
    return found


def label(result: dict) -> str:
    """A scenario's name and its outline row's values (e.g. "… chacun répond object-store Swift")."""
    return " ".join([result["name"], *(str(p["value"]) for p in result.get("parameters") or [])])


def claims_of(result: dict) -> set[str]:
    return {label["value"] for label in result["labels"] if label["name"] == "claim"}


def message(result: dict) -> str:
    return (result.get("statusDetails") or {}).get("message") or ""


#: Allure statuses popek reports as ÉCHEC: an assertion of the check ("failed"), or the cloud that stops
#: answering mid-scenario ("broken": a connection error, which popek's verdict also counts as ÉCHEC).
ECHEC = ("failed", "broken")


def failed(found: dict, claim: str, *needles: str, name_has: str = "") -> str:
    """The message of the scenario of `claim` (whose name holds `name_has`) that ended ÉCHEC; every
    needle is in it. At least one such scenario must exist."""
    mine = [r for r in found.values() if claim in claims_of(r) and name_has in label(r)]
    assert mine, f"aucun scénario de {claim} ({name_has!r}) n'a tourné : {[label(r) for r in found.values()]}"
    bad = [r for r in mine if r["status"] in ECHEC]
    assert bad, f"{claim} : aucun ÉCHEC : {[(label(r), r['status'], message(r)[:300]) for r in mine]}"
    text = " | ".join(message(r) for r in bad)
    for needle in needles:
        assert needle in text, f"{claim} : « {needle} » absent du message : {text[:1500]}"
    return text


def record(record_property, found: dict, *claims: str, **needles) -> None:
    """Record the verdict each claim got and its message (the conftest's fault table shows them),
    before asserting: a claim that did not say ÉCHEC still shows what it said."""
    statuses = {c: sorted({r["status"] for r in found.values() if c in claims_of(r)}) for c in claims}
    verdict = "ÉCHEC" if all(set(ECHEC) & set(s) for s in statuses.values()) else \
        " ; ".join(f"{c} : {'/'.join(s) or 'absent'}" for c, s in statuses.items())
    record_property("verdict", verdict)
    first = {c: next((message(r) for r in found.values() if c in claims_of(r) and r["status"] in ECHEC), "")
             for c in claims}  # one message per claim, so that each claim's row shows its own
    record_property("measure", " | ".join(f"{c} : {m[:1800 // len(claims)]}" for c, m in first.items() if m))


def passed(found: dict, claim: str, name_has: str = "") -> None:
    """A scenario the fault does not touch still passes (the fault is named, not everything fails)."""
    mine = [r for r in found.values() if claim in claims_of(r) and name_has in label(r)]
    assert mine and all(r["status"] == "passed" for r in mine), \
        [(label(r), r["status"], message(r)[:300]) for r in mine]


# --- services stopped ------------------------------------------------------------------------------

@pytest.mark.falsifies("C16", fault="proxy Swift arrêté (swift-proxy)")
def test_swift_proxy_stopped_fails_c16(state, tmp_path, record_property):
    with stopped(state, "swift-proxy"):
        found = run_claims(tmp_path, "C16")
    record(record_property, found, "C16")
    failed(found, "C16", "8080")


@pytest.mark.falsifies("C20", "C27", "C36", fault="service d'images arrêté (glance-api)")
def test_glance_stopped_fails_c20_c27_c36(state, tmp_path, record_property):
    with stopped(state, "glance-api"):
        found = run_claims(tmp_path, "C20", "C27", "C36")
    record(record_property, found, "C20", "C27", "C36")
    failed(found, "C20", "9292", name_has="images")
    failed(found, "C27", "Glance", "9292")
    failed(found, "C36", "openstack image list", name_has="image")
    passed(found, "C27", name_has="Nova")
    passed(found, "C36", name_has="network")


@pytest.mark.falsifies("C20", fault="le fichier de la plus petite image retiré du stockage de Glance (elle reste « active »)")
def test_image_file_gone_fails_c20(state, admin, tmp_path, record_property):
    """An image whose data is gone is no template ready to boot, although Glance still lists it active and
    nova-compute's own cache still boots it here (seen live, issue #20). ~15 s: one listing scenario."""
    image = min((i for i in admin.image.images() if i.status == "active"), key=lambda i: i.size or 0)
    path = state.data("glance") / "images" / image.id
    aside = path.with_name(path.name + ".popek-fault")
    os.rename(path, aside)
    try:
        found = run_claims(tmp_path, "C20", keyword="images_sont")
    finally:
        os.rename(aside, path)
    record(record_property, found, "C20")
    failed(found, "C20", "pas prête à démarrer", image.id, "répond HTTP", name_has="images")


@pytest.mark.falsifies("C20", fault="les données de la plus petite image qcow2 remplacées par des zéros dans le stockage "
                                    "de Glance (même taille ; elle reste « active »)")
def test_image_data_not_its_format_fails_c20(state, admin, tmp_path, record_property):
    """Bytes that are no qcow2 behind an image Glance records as qcow2 make no template either: Glance still
    serves them (a real Glance checks the format at upload, so the fault goes under it, in its store). ~15 s."""
    image = min((i for i in admin.image.images() if i.status == "active" and i.disk_format == "qcow2"),
                key=lambda i: i.size or 0)
    path = state.data("glance") / "images" / image.id
    aside = path.with_name(path.name + ".popek-fault")
    os.rename(path, aside)
    try:
        with open(path, "wb") as f:
            f.truncate(aside.stat().st_size)     # sparse zeros, the same size
        found = run_claims(tmp_path, "C20", keyword="images_sont")
    finally:
        os.replace(aside, path)
    record(record_property, found, "C20")
    failed(found, "C20", "pas prête à démarrer", image.id, "pas une image qcow2", "00 00 00 00", name_has="images")


@pytest.mark.falsifies("C17", "C33", "C36", "C37", fault="API compute arrêtée (nova-api, avec l'API metadata du même processus)")
def test_nova_api_stopped_fails_c17_c33_c36_c37(state, tmp_path, record_property):
    with stopped(state, "nova-api"):
        found = run_claims(tmp_path, "C17", "C33", "C36", "C37")
    record(record_property, found, "C17", "C33", "C36", "C37")
    failed(found, "C17", "8774")
    failed(found, "C36", "8774", name_has="server list")
    failed(found, "C37", "8774")


# --- the catalog altered through the admin API ---------------------------------------------------

@contextlib.contextmanager
def catalog_altered(admin):
    """compute's public address -> Placement's (a real API, not Nova); network's -> a closed port; the
    image service renamed "images". Everything put back in the end."""
    ident = admin.identity

    def public(service_type):
        svc = next(iter(ident.services(type=service_type)))
        return svc, next(iter(ident.endpoints(service_id=svc.id, interface="public")))

    # the SDK updates the resource objects it is given in place: keep the original values as strings
    _, compute_ep = public("compute")
    _, network_ep = public("network")
    image, _ = public("image")
    compute_url, network_url, image_name = compute_ep.url, network_ep.url, image.name
    placement_url = public("placement")[1].url
    undo = []
    try:
        undo.append(lambda: ident.update_endpoint(compute_ep.id, url=compute_url))
        ident.update_endpoint(compute_ep.id, url=placement_url)
        undo.append(lambda: ident.update_endpoint(network_ep.id, url=network_url))
        ident.update_endpoint(network_ep.id, url="http://127.0.0.1:1")
        undo.append(lambda: ident.update_service(image.id, name=image_name))
        ident.update_service(image.id, name="images")
        yield
    finally:
        for step in reversed(undo):
            step()
        assert (public("compute")[1].url, public("network")[1].url) == (compute_url, network_url)
        assert next(iter(ident.services(type="image"))).name == image_name


@pytest.mark.falsifies("C11", "C27", "C28", "C30", "C35",
                       fault="catalogue altéré par l'API admin : l'adresse compute mène à Placement, celle du réseau "
                             "à un port fermé, le service d'images renommé « images »")
def test_catalog_altered_fails_c11_c27_c28_c30_c35(admin, tmp_path, record_property):
    with catalog_altered(admin):
        found = run_claims(tmp_path, "C11", "C27", "C28", "C30", "C35")
    record(record_property, found, "C11", "C27", "C28", "C30", "C35")
    failed(found, "C28", "pas une microversion de l'API compute")
    failed(found, "C27", "Neutron", "127.0.0.1:1")
    failed(found, "C35", "127.0.0.1:1")
    failed(found, "C11", "network", "127.0.0.1:1")
    failed(found, "C30", "« images »", "Glance")
    passed(found, "C30", name_has="Nova")
    passed(found, "C27", name_has="Swift")


# --- resources altered -----------------------------------------------------------------------------

def sql(state: CloudState, database: str, statement: str) -> str:
    """Run `statement` on one of the cloud's databases (MariaDB, through its unix socket, as root): its
    output (tab-separated, no header)."""
    import subprocess

    sock = state.run_dir / "mysqld.sock"
    return subprocess.run(["mariadb", "--socket", str(sock), "-u", "root", "-N", database, "-e", statement],
                          check=True, capture_output=True, text=True, timeout=30).stdout


@pytest.mark.falsifies("C22", fault="un gabarit à 0 vCPU (écrit dans la base de Nova, que l'API refuserait)")
def test_flavor_without_cpu_fails_c22(state, admin, tmp_path, record_property):
    name = f"popek-fault-{secrets.token_hex(4)}-flavor"
    flavor = admin.compute.create_flavor(name=name, vcpus=1, ram=64, disk=1, is_public=True)
    try:
        sql(state, "nova_api", f"UPDATE flavors SET vcpus = 0 WHERE flavorid = '{flavor.id}'")
        found = run_claims(tmp_path, "C22")
    finally:
        admin.compute.delete_flavor(flavor.id, ignore_missing=True)
    record(record_property, found, "C22")
    failed(found, "C22", name, "0 vCPU")


@contextlib.contextmanager
def computes_disabled(admin):
    """Every nova-compute disabled through the admin API (`openstack compute service set --disable`: the
    scheduler places nothing on it: "No valid host was found"); enabled again in the end, and each one
    checked back enabled and up in `GET /os-services`."""
    computes = [s for s in admin.compute.services() if s.binary == "nova-compute" and s.status == "enabled"]
    assert computes, "aucun nova-compute en service à désactiver"
    done = []
    try:
        for svc in computes:
            done.append(svc)
            admin.compute.disable_service(svc, host=svc.host, binary=svc.binary,
                                          disabled_reason="popek-fault: C21/C37 falsifiables")
        yield [f"{s.binary}@{s.host}" for s in computes]
    finally:
        for svc in done:
            admin.compute.enable_service(svc, host=svc.host, binary=svc.binary)
        back = {s.id: (s.status, s.state) for s in admin.compute.services() if s.binary == "nova-compute"}
        assert all(back.get(s.id) == ("enabled", "up") for s in computes), f"nova-compute pas rétabli : {back}"


@pytest.mark.falsifies("C21", "C37", fault="nova-compute désactivé par l'API admin (openstack compute service set "
                                           "--disable) : le planificateur ne trouve aucun hôte")
def test_compute_disabled_fails_c21_c37(admin, tmp_path, record_property):
    """~40 s: two boots that go ERROR at scheduling. (Was: the project's instance quota set to 0, a limit of
    the project, which is now IGNORÉ with the quota: test_zero_instance_quota_is_ignored_with_the_quota.)"""
    with computes_disabled(admin) as named:
        found = run_claims(tmp_path, "C21", "C37")
    record(record_property, found, "C21", "C37")
    for claim in ("C21", "C37"):
        failed(found, claim, "No valid host was found", "tous désactivés", "status disabled", named[0])


def quota_instances(admin, project_id: str) -> int:
    return admin.compute.get_quota_set(project_id).instances


@contextlib.contextmanager
def instance_quota(admin, limit: int):
    """The member's project (demo) with an instance quota of `limit` (force: below what it uses is
    allowed); put back as it was in the end, and checked."""
    project = admin.identity.find_project("demo")
    before = quota_instances(admin, project.id)
    admin.compute.update_quota_set(project.id, instances=limit, force=True)
    try:
        yield project
    finally:
        admin.compute.update_quota_set(project.id, instances=before, force=True)
        assert quota_instances(admin, project.id) == before


def test_zero_instance_quota_is_ignored_with_the_quota(admin, tmp_path):
    """A project whose quota leaves no room is a missing capability, not a broken cloud: C21 and C37 say
    IGNORÉ with the quota, its limit and its use (GET /limits), never ÉCHEC nor RÉUSSI."""
    with instance_quota(admin, 0):
        found = run_claims(tmp_path, "C21", "C37")
    mine = [r for r in found.values() if claims_of(r) & {"C21", "C37"}]
    assert {c for r in mine for c in claims_of(r)} >= {"C21", "C37"}, [label(r) for r in mine]
    for r in mine:
        said = (label(r), r["status"], message(r)[:400])
        assert r["status"] == "skipped", said
        assert "quota instances : limite 0 instance(s), en usage" in message(r), said
        assert "il en faut 1 de plus" in message(r) and "pas une panne du cloud" in message(r), said


PASSWORD_CHANGER = """
import yaml
from popek import paths
from popek.checks.cloud import connection

def _set_password(password):
    conn = connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn
    user = conn.identity.find_user("demo", domain_id="default")
    conn.identity.update_user(user, password=password)

def _member_password():
    return yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]["auth"]["password"]

def pytest_bdd_before_step(request, feature, scenario, step, step_func):
    if "fichier openrc" in step.name:   # the fault lasts this step only
        _set_password(open("NEWPW").read())

def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if "fichier openrc" in step.name:
        _set_password(_member_password())

def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception):
    if "fichier openrc" in step.name:
        _set_password(_member_password())
"""


@pytest.mark.falsifies("C34", fault="mot de passe du membre changé dans Keystone pendant le run : l'openrc écrit "
                                    "depuis les identifiants a un mot de passe faux")
def test_password_changed_fails_c34(admin, tmp_path, record_property):
    from popek.checks.cloud import connection

    old = yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"][connection.EMBEDDED_MEMBER]["auth"]["password"]
    newpw = tmp_path / "newpw"
    fd = os.open(newpw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(18))
    user = admin.identity.find_user("demo", domain_id="default")
    try:
        found = run_claims(tmp_path, "C34", plugin=PASSWORD_CHANGER.replace("NEWPW", str(newpw)))
    finally:
        admin.identity.update_user(user, password=old)
    connection.connect(None, {}, paths.embedded_clouds_yaml())  # the member authenticates again
    record(record_property, found, "C34")
    text = failed(found, "C34", "openstack token issue", "401")
    assert old not in text and newpw.read_text() not in text


# --- the embedded cloud's own parts ----------------------------------------------------------------

@pytest.mark.falsifies("C31", fault="bus RabbitMQ gelé (SIGSTOP)")
def test_rabbitmq_frozen_fails_c31(state, tmp_path, record_property):
    with frozen(state, "rabbitmq"):
        found = run_claims(tmp_path, "C31")
    record(record_property, found, "C31")
    failed(found, "C31", "5672")


@pytest.mark.falsifies("C32", fault="swift enregistré dans le venv du cloud comme installé par un autre outil "
                                    "(fichier INSTALLER)")
def test_not_installed_by_pip_fails_c32(state, tmp_path, record_property):
    installer = next(state.venv.glob("lib/python3*/site-packages/swift-*.dist-info/INSTALLER"))
    before = installer.read_text()
    installer.write_text("uv\n")
    try:
        found = run_claims(tmp_path, "C32")
    finally:
        installer.write_text(before)
    record(record_property, found, "C32")
    failed(found, "C32", "swift", "uv")


# --- Neutron stores another rule than the one asked ---------------------------------------------------

#: A MariaDB trigger (popek's prefix) on Neutron's rule table: every rule with a port range is stored one
#: port wider than asked. The API checks run before the row is written, so Neutron accepts the rule and
#: answers the POST with what it was given; what it keeps, and reads back, opens one more port.
WIDER_RULES = "popek_fault_wider_rules"


@contextlib.contextmanager
def rules_stored_wider(state: CloudState):
    """Neutron stores TCP 22 as 22-23 (and every range one port wider) while this lasts; the trigger is
    dropped in the end and its absence checked."""
    sql(state, "neutron", f"CREATE TRIGGER {WIDER_RULES} BEFORE INSERT ON securitygrouprules FOR EACH ROW "
                          "SET NEW.port_range_max = NEW.port_range_max + 1")
    try:
        yield
    finally:
        sql(state, "neutron", f"DROP TRIGGER IF EXISTS {WIDER_RULES}")
        left = sql(state, "information_schema", "SELECT trigger_name FROM triggers WHERE trigger_schema = 'neutron'")
        assert not left.strip(), f"déclencheur resté dans la base de Neutron : {left}"


@pytest.mark.falsifies("C25", fault="Neutron enregistre chaque règle un port plus large que demandé (déclencheur "
                                    "MariaDB sur sa table des règles) : TCP 22 ouvre 22-23")
def test_rules_stored_wider_fail_c25(state, tmp_path, record_property):
    with rules_stored_wider(state):
        # the two API scenarios that read a rule back; not the dataplane's (instances), not the refusals
        found = run_claims(tmp_path, "C25", keyword="ajoutée or relit")
    record(record_property, found, "C25")
    failed(found, "C25", "'port_range_max': 23", name_has="ajoutée")
    failed(found, "C25", "règle relue différente", "port_range_max: créé avec", name_has="relit")


# --- a real catalog without Swift and Cinder: IGNORÉ, never ÉCHEC (issue #19) -------------------------

#: The services a cloud may go without (checks/cloud/needs.py OPTIONAL_SERVICES), as the embedded
#: cloud's catalog names them.
OPTIONAL = ("volumev3", "object-store")


def keystone_catalog(admin) -> list[tuple]:
    """Every service and endpoint Keystone holds, ids included (what the restore must give back)."""
    ident = admin.identity
    return sorted([("service", s.id, s.type, s.name, s.is_enabled, s.description) for s in ident.services()] +
                  [("endpoint", e.id, e.service_id, e.interface, e.region_id, e.url, e.is_enabled)
                   for e in ident.endpoints()], key=str)


def member_catalog() -> list[dict]:
    """The catalog of a fresh token of the run's member (a new session: nothing cached), in a stable order."""
    from popek.checks.cloud import catalog, connection

    entries = catalog.catalog(connection.connect(None, {}, paths.embedded_clouds_yaml()).conn)
    return sorted(({**e, "endpoints": sorted(e["endpoints"], key=str)} for e in entries), key=str)


@contextlib.contextmanager
def services_disabled(admin, *service_types: str):
    """The services of these types disabled in Keystone (`enabled: false`: every new token's catalog leaves
    them out, their ids and endpoints untouched); enabled again in the end, and Keystone's services and
    endpoints, and a new token's catalog, checked equal to what they were."""
    ident = admin.identity
    before, tokens_before = keystone_catalog(admin), member_catalog()
    ids = [s.id for t in service_types for s in ident.services(type=t)]
    assert len(ids) == len(service_types), f"services attendus {service_types}, trouvés {ids}"
    done = []
    try:
        for sid in ids:
            done.append(sid)
            ident.update_service(sid, is_enabled=False)
        shown = {e["type"] for e in member_catalog()}
        assert not shown & set(service_types), f"toujours au catalogue d'un nouveau jeton : {sorted(shown)}"
        yield
    finally:
        for sid in done:
            ident.update_service(sid, is_enabled=True)
        assert keystone_catalog(admin) == before
        assert member_catalog() == tokens_before


def test_a_catalog_without_swift_and_cinder_skips_their_scenarios(admin, tmp_path):
    with services_disabled(admin, *OPTIONAL):
        found = run_claims(tmp_path, "C15", "C16", "C23", "C27", "C30")
    storage = [r for r in found.values() if claims_of(r) & {"C15", "C16", "C23"}]
    rows = [r for r in found.values() if claims_of(r) & {"C27", "C30"} and any(t in label(r) for t in OPTIONAL)]
    assert len(storage) == 2 and len(rows) == 4, [label(r) for r in found.values()]
    for r in storage + rows:
        said = (label(r), r["status"], message(r)[:300])
        assert r["status"] == "skipped", said
        if "C15" in claims_of(r) and message(r).startswith("dataplane : "):
            continue  # its needs are checked in no set order: a cloud without its dataplane may say so first
        assert "le catalogue de ce cloud n'a pas de service" in message(r), said
        swift = "C16" in claims_of(r) or "object-store" in label(r)
        assert ("Swift" if swift else "Cinder") in message(r), said
    passed(found, "C27", name_has="Nova")  # the services still there are still checked
    passed(found, "C30", name_has="Neutron")


def test_a_build_refused_by_novas_quota_recheck_is_no_room_with_its_numbers(state, admin):
    """Nova's API accepts a boot within the quota; its conductor checks the quota again once the scheduler
    answered (a race between two boots of the project: seen live under `popek run -n 2` with quota 1) and
    puts the server in ERROR with an OverQuota fault (code 413). Made deterministic here: nova-scheduler
    frozen between the API's answer and the recheck, the quota lowered to 0 meanwhile. wait_active reads
    that fault as compute.NoRoom (IGNORÉ in a scenario), with Nova's numbers; the quota and the scheduler
    restored in the end. ~15 s."""
    import time

    from popek.checks.cloud import compute, connection, ledger as ledger_mod

    member = connection.connect(None, {}, paths.embedded_clouds_yaml()).conn
    book = ledger_mod.Ledger(member, f"popek-{ledger_mod.new_run_id()}-fault")
    image = compute.pick_image(member)
    flavor = compute.pick_flavor(member, image)
    try:
        with instance_quota(admin, 1) as project:
            with frozen(state, "nova-scheduler"):
                server = compute.boot(member, book, "recheck", image, flavor, compute.project_network(member, book),
                                      wait=False)
                time.sleep(2)   # the conductor waits for the frozen scheduler
                admin.compute.update_quota_set(project.id, instances=0, force=True)
            with pytest.raises(compute.NoRoom) as refused:
                compute.wait_active(member, server, timeout=120, admin=admin)
            fault = member.compute.get_server(server.id).fault or {}
    finally:
        book.cleanup()
    said = str(refused.value)
    assert fault.get("code") == compute.OVER_QUOTA_CODE, fault
    assert "Quota exceeded for instances" in fault.get("message", ""), fault
    assert "passée en ERROR faute de quota" in said and "quota instances : limite 0, en usage 0, demandé(s) 1" in said, said
