"""Fault tests of faults no test was written for (hF's hunt, 2026-12-07 13:00–14:15 UTC): each puts the real
embedded cloud in the faulty state, runs the claims it should break with `popek run cloud` as a user would, and
asserts ÉCHEC naming the component with its evidence — then undoes the fault.

| fault | claims | what the scenario must say | before the fix |
|---|---|---|---|
| port security turned off (API) on the guest's port, right after the scenario removed its SSH rule | C25 | the port's security is off: no group filters it | « SSH passe toujours », no cause |
| the smallest image's recorded hash (os_hash_value) changed in Glance's database, its data unchanged | C20 | its data is not what Glance recorded (Nova's download refuses it) | RÉUSSI (only the first KiB was read) |
| the loop volume backend full (a full 8 MiB tmpfs over its directory) | C15, C23 | the volume goes « error » and Cinder's own message says why (no backend with room) | « le volume … est passé en « error » », no cause |

Measured 2026-12-07 13:48-13:50 UTC under `flock -x` (hF): port security off, ÉCHEC « SSH passe toujours ; la sécurité de
port est désactivée sur le port 3b91df25-… de l'instance (port_security_enabled=False) : aucun groupe de sécurité ne le
filtre », whole test ~55 s (opt-in: CI's budget). The image-hash test ran live at 14:10 (hLive, flock -x): C20 ÉCHEC « ses
données (15339008 octets relus) ne sont pas celles que Glance a enregistrées … os_hash_value », 8 s; it runs in CI. The
backend-full test (opt-in) ran live at 17:36-17:37 (hLive, flock -x, POPEK_SLOW_FAULTS=1): C15 and C23 ÉCHEC in 22 s « le
volume … est passé en « error » (création) ; Cinder dit (openstack volume message list) : « schedule allocate
volume:Could not find any available weighted backend. » (VOLUME_VOLUME_001_003) », test 34.9 s, 26/26 after.

Run serially (CI) or under `flock -x /tmp/popek-cloud.lock`.
"""
from __future__ import annotations

import contextlib

import pytest

from popek import paths
from popek.checks.cloud import connection

from faults import record, slow
from helpers import running_cloud
from test_faults_dataplane import failed_with, pick, run_scenarios, seconds

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

SLOW = slow("faute lente (deux instances à démarrer, cinder-volume redémarré deux fois)")


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="mettre en faute le cloud embarqué")


#: Turns the port security off on the guest's port (its groups emptied first: Neutron requires it) right after
#: the scenario removed its SSH rule: the group no longer filters anything, as a user (or a tool) with the
#: port's owner rights can do through the API.
#: Turned on again (groups still empty: the run's ledger gives them back) once the step that judges it has run.
PORT_SECURITY_OFF = """
def _ports(request, enabled):
    conn, guest = request.getfixturevalue("conn"), request.getfixturevalue("guest")
    for port in conn.network.ports(device_id=guest.server.id):
        conn.network.update_port(port, security_group_ids=[], port_security_enabled=enabled)

def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if step.name == "je retire du groupe la règle SSH":
        _ports(request, False)
    elif step.name.startswith("SSH et ping vers l'instance sont bloqués"):
        _ports(request, True)

def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception):
    if step.name.startswith("SSH et ping vers l'instance sont bloqués"):
        _ports(request, True)
"""


@pytest.mark.falsifies("C25", fault="sécurité de port désactivée par l'API sur le port de l'instance, juste après que "
                                    "le scénario a retiré sa règle SSH : aucun groupe ne la filtre plus")
@slow("faute lente (~55 s : la paire d'instances du run à démarrer)")
def test_port_security_off_is_named(state, tmp_path, record_property):
    found = run_scenarios(tmp_path, "bloque_puis", plugin=PORT_SECURITY_OFF)
    result = pick(found, "C25", "bloque")
    message = failed_with(result, "SSH passe toujours", "la sécurité de port est désactivée sur le port")
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")


@pytest.fixture(scope="module")
def admin(state):
    return connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn


def glance_sql(state, statement: str, *args) -> list:
    """Run `statement` on the embedded Glance's database (SQLite: checks/localcloud/config.py) and commit."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(state.data("glance") / "glance.db", timeout=30)) as db:
        rows = db.execute(statement, args).fetchall()
        db.commit()
    return rows


@contextlib.contextmanager
def recorded_hash_changed(state, image):
    """`image`'s os_hash_value rewritten in Glance's database (its data left as it is), put back in the end."""
    was = (glance_sql(state, "SELECT os_hash_value FROM images WHERE id = ?", image.id) or [[None]])[0][0]
    assert was, f"pas de os_hash_value pour {image.id}"
    forged = ("0" if was[0] != "0" else "1") + was[1:]
    glance_sql(state, "UPDATE images SET os_hash_value = ? WHERE id = ?", forged, image.id)
    try:
        yield forged
    finally:
        glance_sql(state, "UPDATE images SET os_hash_value = ? WHERE id = ?", was, image.id)


@pytest.mark.falsifies("C20", fault="le hachage enregistré de la plus petite image (os_hash_value) changé dans la base de "
                                    "Glance, ses données intactes : Nova refuse de la télécharger")
def test_recorded_image_hash_changed_fails_c20(state, admin, tmp_path, record_property):
    """~15 s: one listing scenario, the tiny image read whole."""
    from test_faults_api import failed, record as record_claims, run_claims

    image = min((i for i in admin.image.images() if i.status == "active" and i.visibility == "public" and (i.size or 0) > 0),
                key=lambda i: i.size)
    with recorded_hash_changed(state, image):
        found = run_claims(tmp_path, "C20", keyword="images_sont")
    record_claims(record_property, found, "C20")
    failed(found, "C20", "pas prête à démarrer", image.id, "ne sont pas celles que Glance a enregistrées",
           "os_hash_value", name_has="images")


@contextlib.contextmanager
def volume_backend_full(state):
    """The dataplane's loop volume backend (checks/localcloud/loopvolume.py, its volumes' directory) made full:
    a tmpfs of 8 MiB, filled, mounted over its directory, and cinder-volume restarted so that it reports the
    capacity now (else at its next periodic report, 60 s); in the end unmounted, cinder-volume restarted again
    and its pool seen with room before the cloud is handed back."""
    import subprocess
    import time

    from popek.checks.localcloud import lifecycle, services

    where = state.data("cinder") / "loop-volumes"
    if any(where.iterdir()):
        pytest.skip(f"des volumes sont dans {where} : ce test ne les cache pas")
    svc = next(s for s in lifecycle.table(state, lifecycle.dataplane_module()) if s.name == "cinder-volume")

    def restart():
        assert not services.stop(state, ["cinder-volume"]), "cinder-volume survit à l'arrêt"
        services.start(state, svc)
        services.wait_healthy(state, [svc], timeout=120)

    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "popek-hF-full", str(where)], check=True, timeout=30)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={where / 'popek-hF-fill'}", "bs=1M"], capture_output=True,
                       timeout=60)
        restart()
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True, timeout=30)
        restart()
        admin = connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn
        deadline, free = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            free = [p.capabilities.get("free_capacity_gb") for p in admin.block_storage.backend_pools()]
            if free and all((f or 0) > 1 for f in free):
                break
            time.sleep(3)
        assert free and all((f or 0) > 1 for f in free), f"le pool de Cinder n'a pas retrouvé de place : {free}"


@pytest.mark.falsifies("C15", "C23", fault="stockage des volumes plein (un tmpfs de 8 Mio rempli sur le répertoire des "
                                           "volumes) : Cinder ne trouve aucun backend où créer le volume")
@SLOW
def test_volume_backend_full_is_named(state, tmp_path, record_property):
    with volume_backend_full(state):
        found = run_scenarios(tmp_path, "garde_ses_données")
    result = pick(found, "C23")
    message = failed_with(result, "« error »", "Cinder dit", "backend")
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")
