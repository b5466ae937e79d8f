"""Fault tests of faults no other test injected (hF's adversary trial, 2026-12-07): each puts the real embedded
cloud in a faulty state, runs the claim's real scenarios with `popek run cloud` as a user would, and asserts
ÉCHEC naming the component, within the time the evidence allows — then undoes the fault.

| fault | claims | what the scenario must say, measured live (07:xx, load 2–4) | before |
|---|---|---|---|
| the run's subnet's DHCP turned off through the API before the guests boot | C26 (C18) | « DHCP désactivé dans Neutron sur le sous-réseau … », 93 s | « pas de bail DHCP … (agent DHCP ?) », a hard reboot and a second wait |
| nova-conductor frozen (SIGSTOP) | C21 | nova-conductor gives no sign of life (state down), 48 s | (already named) |
| libvirtd frozen (SIGSTOP) | C21 | libvirtd is frozen, the server stays in BUILD, 62 s | (already named) |
| nova-compute frozen (SIGSTOP) once the server is ACTIVE, at « je supprime l'instance » | C21 | the server stays « deleting »: nova-compute is frozen, 61 s | error « Leftover … toujours là après 60 s », no cause |
| MariaDB frozen (SIGSTOP) | C21, C31 | the cloud stops answering; MariaDB frozen, in the report's message too | report message: bare « Request to … timed out » |

Each costs 50 s to 2 min (a guest to boot, a heartbeat to go stale): all run with POPEK_SLOW_FAULTS=1 only,
outside the CI budget. Run serially, under `flock -x /tmp/popek-cloud.lock`.
"""
from __future__ import annotations

import os

import pytest

from faults import freeze_at_step, slow
from helpers import frozen, running_cloud
from test_faults_dataplane import NAMED_WITHIN, failed_with, pick, run_scenarios, seconds

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

SLOW = slow("faute lente (une instance à démarrer, un signe de vie à laisser vieillir)")


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="geler les services du cloud embarqué")


#: Turns DHCP off on the run's subnet right after the scenario made its routed network, before the run's guests
#: boot (the run deletes the network, and the fault with it).
DHCP_OFF = """
def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if step.name != "un réseau relié au réseau externe par un routeur":
        return
    conn, routed = request.getfixturevalue("conn"), request.getfixturevalue("routed")
    for subnet in conn.network.subnets(network_id=routed.network.id):
        if subnet.is_dhcp_enabled:
            conn.network.update_subnet(subnet, enable_dhcp=False)
"""


@pytest.mark.falsifies("C26", "C18", fault="DHCP désactivé par l'API sur le sous-réseau du run avant le démarrage "
                                           "des instances : aucune n'obtient d'adresse")
@SLOW
def test_dhcp_off_on_the_subnet_is_named(state, tmp_path, record_property):
    found = run_scenarios(tmp_path, "ouvre_linstance", plugin=DHCP_OFF)
    result = pick(found, "C26")
    message = failed_with(result, "pas de bail DHCP", "DHCP désactivé dans Neutron sur le sous-réseau")
    assert "agent DHCP ?" not in message, message
    assert seconds(result) < NAMED_WITHIN, f"ÉCHEC nommé en {seconds(result):.0f} s"
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")


def frozen_service_is_named(state, tmp_path, record_property, service: str, needle: str,
                            within: float = 120) -> None:
    """C21's server scenario run with the embedded cloud's `service` frozen (SIGSTOP, thawed after): ÉCHEC
    whose message holds `needle`, within `within` seconds (test_faults_more's nova-scheduler test too)."""
    with frozen(state, service):
        found = run_scenarios(tmp_path, "server_create_avec")
    result = pick(found, "C21")
    message = failed_with(result, needle)
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")
    assert seconds(result) < within, f"nommé en {seconds(result):.0f} s"


@pytest.mark.falsifies("C21", fault="nova-conductor gelé (SIGSTOP)")
@SLOW
def test_conductor_frozen_is_named(state, tmp_path, record_property):
    frozen_service_is_named(state, tmp_path, record_property, "nova-conductor", "nova-conductor")


@pytest.mark.falsifies("C21", fault="libvirtd gelé (SIGSTOP) : l'instance reste en BUILD")
@SLOW
def test_libvirtd_frozen_is_named(state, tmp_path, record_property):
    frozen_service_is_named(state, tmp_path, record_property, "libvirtd", "libvirtd est gelé")


@pytest.mark.falsifies("C21", "C31", fault="base MariaDB gelée (SIGSTOP) : toute API qui l'attend expire")
@SLOW
def test_mariadb_frozen_is_named(state, tmp_path, record_property):
    with frozen(state, "mariadb"):
        found = run_scenarios(tmp_path, "server_create_avec", "MariaDB_et_RabbitMQ")
    c31 = failed_with(pick(found, "C31"), "base de Nova ne répond pas")
    c21 = pick(found, "C21")    # an API timing out is an error of the scenario (broken), told in one French line
    message = (c21.get("statusDetails") or {}).get("message") or ""
    assert c21["status"] in ("failed", "broken"), c21["status"]
    assert "le cloud ne répond plus" in message and "mariadb est gelé" in message, message[:800]
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"C31 : {c31[:200]} // C21 ({seconds(c21):.0f} s) : {message[:300]}")


#: Freezes nova-compute once the scenario's server is ACTIVE, right before the scenario deletes it (thawed at the
#: session's end, and by the test whatever happens): Nova's API accepts the deletion, nova-compute never runs it.
FREEZE_COMPUTE_AT_DELETE = freeze_at_step("nova-compute", "je supprime l'instance")


@pytest.mark.falsifies("C21", fault="nova-compute gelé (SIGSTOP) juste avant la suppression de l'instance : elle "
                                    "reste « deleting »")
@SLOW
def test_compute_frozen_at_delete_is_named(state, tmp_path, record_property):
    import contextlib
    import signal

    from popek.checks.localcloud import services

    pid = services.read_pid(state, "nova-compute")
    try:
        found = run_scenarios(tmp_path, "server_create_avec", plugin=FREEZE_COMPUTE_AT_DELETE)
    finally:
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.killpg(pid, signal.SIGCONT)
    result = pick(found, "C21")
    message = failed_with(result, "est toujours là", "étape deleting", "nova-compute est gelé")
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")
