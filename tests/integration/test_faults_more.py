"""Fault tests of faults that no other test injected before (issue #20's trial, 2026-12-07): each puts the real
embedded cloud or host in the faulty state, runs the claim's real scenarios with `popek run cloud` as a user
would, and asserts ÉCHEC naming the component, within the time the evidence allows — then undoes the fault and
checks that the cloud is whole again.

| fault | claims | what the scenario must say | before the fix |
|---|---|---|---|
| cinder-volume frozen (SIGSTOP) | C15, C23 | the volume stays « creating »: cinder-volume is frozen, ~20 s in | openstacksdk's bare timeout, 120 s in |
| an owner's bridge over the external network in two more specific halves (/25) | C24 | this host sends the floating IP to the owner's bridge | « L3/NAT » blamed |
| neutron-metadata-agent restarted with another shared secret than nova's | C18 (C26) | nova refuses (HTTP 403): the shared secret differs | « le service de metadata ne répond pas », 25 s after the lease |
| Keystone frozen (SIGSTOP) | C34, C35 | Keystone does not answer, and it is frozen | « 28 service(s) vivant(s) », no word of the freeze |
| placement-api stopped | C21 | Placement does not answer (No valid host) | (already named) |
| nova-scheduler frozen (SIGSTOP) | C21 | nova-scheduler is frozen, the server stays in BUILD (scheduling) | (already named) |

All run with POPEK_SLOW_FAULTS=1 only (each 20 s to 3 min: a pair of guests to boot, a minute of grace, a
server Nova cannot delete until Placement is back), outside the CI budget. Measured 2026-12-07 under
`flock -x` (load 3.4-4.8): placement + owner's bridge 42 s together, both passed.
Run serially (CI) or under `flock -x /tmp/popek-cloud.lock`.
"""
from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import subprocess

import pytest

from popek import paths
from popek.checks.cloud import connection
from popek.checks.localcloud import bootstrap, lifecycle, services

from faults import slow
from helpers import frozen, running_cloud
from test_faults_adversary import frozen_service_is_named
from test_faults_api import failed, record, run_claims
from test_faults_dataplane import failed_with, pick, run_scenarios, seconds

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

SLOW = slow("faute lente (des instances à démarrer, ou une minute de grâce)")


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="geler ou arrêter les services du cloud embarqué")


@pytest.mark.falsifies("C15", "C23", fault="cinder-volume gelé (SIGSTOP) : le volume créé reste « creating »")
@SLOW
def test_cinder_volume_frozen_is_named(state, tmp_path, record_property):
    with frozen(state, "cinder-volume"):
        found = run_scenarios(tmp_path, "garde_ses_données")
    result = pick(found, "C23")
    message = (result.get("statusDetails") or {}).get("message") or ""
    # Cinder refuses to delete a volume still « creating »: the run's cleanup left it; thawed, it gets created
    left = re.search(r"le volume (popek-\S+) reste", message)
    if left:
        admin = connection.connect("popek-admin", {}, paths.embedded_clouds_yaml()).conn
        for volume in admin.block_storage.volumes(all_projects=True, name=left.group(1)):
            admin.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=120)
            admin.block_storage.delete_volume(volume)
            admin.block_storage.wait_for_delete(volume, wait=120)
    failed_with(result, "reste « creating »", "cinder-volume est gelé")
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")
    step = next(s for s in result["steps"] if "un volume de" in s["name"])
    assert (step["stop"] - step["start"]) / 1000 < 40, f"nommé {(step['stop'] - step['start']) / 1000:.0f} s après la création"


#: The owner's bridge: a name and two prefixes more specific than the embedded cloud's external network
#: (198.51.100.0/24), as a libvirt network of the owner's could hold: every floating IP falls in one of them.
OWNER_BRIDGE, OWNER_PREFIXES = "popekowner0", ("198.51.100.254/25", "198.51.100.2/25")


def test_the_owners_addresses_are_outside_the_floating_pool():
    """An owner's address inside the pool would be a floating IP this host owns (`local … dev lo`), not a route."""
    first, last = (ipaddress.ip_address(a) for a in bootstrap.PUBLIC_POOL)
    inside = [p for p in OWNER_PREFIXES if first <= ipaddress.ip_interface(p).ip <= last]
    assert not inside, f"dans la réserve d'IP flottantes {first}–{last} : {inside}"


@contextlib.contextmanager
def owner_bridge():
    """A bridge of the "owner" whose addresses cover the cloud's external network in two halves (made here for
    the test, deleted in the end whatever happens)."""
    if subprocess.run(["ip", "link", "show", OWNER_BRIDGE], capture_output=True).returncode == 0:
        pytest.skip(f"une interface {OWNER_BRIDGE} existe déjà sur cet hôte : elle n'est pas à ce test, il n'y touche pas")
    subprocess.run(["ip", "link", "add", OWNER_BRIDGE, "type", "bridge"], check=True)
    try:
        for prefix in OWNER_PREFIXES:
            subprocess.run(["ip", "addr", "add", prefix, "dev", OWNER_BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", OWNER_BRIDGE, "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "link", "del", OWNER_BRIDGE], check=False)


@pytest.mark.falsifies("C24", fault="un pont du propriétaire de l'hôte couvre le réseau externe du cloud en "
                                    "deux moitiés (/25) plus précises : l'hôte y envoie les IP flottantes")
@SLOW
def test_an_owners_bridge_over_the_external_network_is_named(state, tmp_path, record_property):
    with owner_bridge():
        found = run_scenarios(tmp_path, "déplacée_mène")
    result = pick(found, "C24")
    message = failed_with(result, f"par {OWNER_BRIDGE}", "pas par popek-ex")
    assert "L3/NAT" not in message, message
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")


@pytest.mark.falsifies("C21", fault="API Placement arrêtée (placement-api)")
@SLOW
def test_placement_stopped_is_named(state, tmp_path, record_property):
    svc = next(s for s in services.core_services(state) if s.name == "placement-api")
    assert not services.stop(state, ["placement-api"])
    try:
        found = run_scenarios(tmp_path, "server_create_avec")
    finally:
        if services.read_pid(state, "placement-api") is None:
            services.start(state, svc)
        services.wait_healthy(state, [svc], timeout=120)
    result = pick(found, "C21")
    message = (result.get("statusDetails") or {}).get("message") or ""
    # Nova cannot delete a server while Placement is down (500): the run's cleanup left it, in ERROR
    left = re.search(r"l'instance (popek-\S+) est passée en ERROR", message)
    if left:
        admin = connection.connect("popek-admin", {}, paths.embedded_clouds_yaml()).conn
        for server in admin.compute.servers(all_projects=True, name=f"^{re.escape(left.group(1))}$"):
            admin.compute.delete_server(server)
            admin.compute.wait_for_delete(server, wait=120)
    failed_with(result, "No valid host", "Placement ne répond pas")
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")
    assert seconds(result) < 30, f"nommé en {seconds(result):.0f} s"


@pytest.mark.falsifies("C21", fault="nova-scheduler gelé (SIGSTOP)")
@SLOW
def test_scheduler_frozen_is_named(state, tmp_path, record_property):
    frozen_service_is_named(state, tmp_path, record_property, "nova-scheduler", "nova-scheduler")


def restarted(state, name: str) -> None:
    """Service `name` of the embedded cloud stopped, started again and answering."""
    svc = next(s for s in lifecycle.table(state, lifecycle.dataplane_module()) if s.name == name)
    assert not services.stop(state, [name]), f"{name} survit à l'arrêt"
    services.start(state, svc)
    services.wait_healthy(state, [svc], timeout=120)


@contextlib.contextmanager
def metadata_secret_changed(state):
    """neutron-metadata-agent restarted with a shared secret that is not nova's (its file put back and the agent
    restarted again in the end, whatever happens)."""
    conf = state.etc("neutron") / "metadata_agent.ini"
    kept = conf.read_text()
    lines = [f"metadata_proxy_shared_secret = {secrets.token_hex(16)}"
             if line.startswith("metadata_proxy_shared_secret") else line for line in kept.splitlines()]
    try:
        conf.write_text("\n".join(lines) + "\n")
        restarted(state, "neutron-metadata-agent")
        yield
    finally:
        conf.write_text(kept)
        restarted(state, "neutron-metadata-agent")


@pytest.mark.falsifies("C18", fault="agent de metadata de Neutron redémarré avec un autre secret partagé que "
                                    "celui de Nova : Nova refuse (403) les requêtes de metadata")
@SLOW
def test_metadata_secret_mismatch_is_named(state, tmp_path, record_property):
    with metadata_secret_changed(state):
        found = run_scenarios(tmp_path, "ouvre_linstance")
    result = pick(found, "C18")
    message = failed_with(result, "refuse les requêtes (HTTP 403)", "secret partagé")
    record_property("verdict", "ÉCHEC")
    record_property("measure", f"{seconds(result):.0f} s : {message[:400]}")


@pytest.mark.falsifies("C34", "C35", fault="Keystone gelé (SIGSTOP) : toute connexion expire")
@SLOW
def test_keystone_frozen_is_named(state, tmp_path, record_property):
    with frozen(state, "keystone"):
        found = run_claims(tmp_path, "C34", "C35")
    record(record_property, found, "C34", "C35")
    for claim in ("C34", "C35"):
        failed(found, claim, "Keystone injoignable", "gelé(s)", "keystone")
