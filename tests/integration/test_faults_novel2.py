"""Fault tests of faults no test was written for, round 2 (hF2's hunt, 2026-12-07 16:10–17:35 UTC): each puts the
real embedded cloud (or the run's own resources) in the faulty state, runs the claims it should break with
`popek run cloud` as a user would, and asserts ÉCHEC naming the cause with its evidence — then undoes the fault.

| fault | claims | what the scenario must say | before the fix |
|---|---|---|---|
| the SSH rule the scenario put back deleted behind its back (the allow path) | C25 | no group of the guest's ports admits tcp 22 any more, with the rules they hold, after a short try | a TimeoutError after 60 s (no verdict, no cause) |
| the SSH rule of the second guest's group deleted right after the floating IP moved to it | C24 | the same, after a short try | 300 s of waiting, then « n'arrive pas sur … » without a cause |
| RabbitMQ's memory alarm (`rabbitmqctl set_vm_memory_high_watermark 0.0001`): every publisher blocked, every process alive, the bus greeting | C21, C31 | C21: the API that timed out, and the bus's alarm with RabbitMQ's measure; C31: the bus greets but carries nothing | C21 « le cloud ne répond plus … 9696/v2.0/networks timed out », no cause; C31 RÉUSSI |
| nova-compute stopped (SIGTERM: its service goes « down » after service_down_time), not frozen nor disabled | C21 | the boot stays in BUILD and nova-compute gives no sign of life, with its last heartbeat | (no defect: already named) |
| the cloud's external bridge down on this host (`ip link set popek-ex down`: its route gone with it) | C26, C18 | this host sends the floating IP elsewhere: the bridge is down, its route gone; no cloud component blamed | L3/NAT blamed (by the code: no route of the bridge, the watch went on; not run before the fix) |
| the smallest image (qcow2) recorded as raw in Glance's database (disk_format), its data and hash unchanged | C20 | its data is a qcow2 image, not raw as Glance says | RÉUSSI (raw has no signature to check) |

Measured 2026-12-07 under `flock -s` (hF2): the SSH rule put back then deleted (C25), before the fix « broken »
(TimeoutError « SSH vers 198.51.100.85 impossible en 60 s », no cause, 128.7 s), after ÉCHEC in 125.8 s (the run's pair
booted inside it) « SSH ne passe pas malgré la règle SSH remise : … impossible en 20 s … ; aucun groupe de sécurité des
ports de l'instance ne laisse entrer tcp 22 depuis cette source, selon Neutron en ce moment (groupe 750eec39-… : entrée
IPv4 icmp depuis 0.0.0.0/0 (règle c1d4fc1b-…)) : la règle qui l'autorisait n'y est plus ». The second guest's SSH rule
deleted after the move (C24): without a pause the OVS agent had not applied the deletion yet and SSH arrived 0.6 s
later (RÉUSSI, true at that moment: the plugin now waits 10 s); with it, ÉCHEC in 77.7 s « SSH via 198.51.100.46
n'arrive pas sur 10.78.0.253 (dernier vu : ['TimeoutError']) ; aucun groupe … (groupe 8acbac92-… : aucune règle en
entrée) : la règle qui l'autorisait n'y est plus » — before the fix, by its code, 300 s of waiting and no cause.

Measured in hF2's slot S1 (2026-12-07 16:30–16:35 UTC, flock -x): RabbitMQ's memory alarm, before the fix C21 broken
« le cloud ne répond plus pendant le scénario (ConnectTimeout) : Request to http://127.0.0.1:9696/v2.0/networks timed
out » (31 s) and C31 RÉUSSI; after, C21 the same « ; le bus RabbitMQ a une alarme de mémoire en cours (depuis …) : il
bloque les connexions qui publient, chaque appel RPC du cloud attend (Memory used:137035776 allowed:2527618) » and C31
ÉCHEC « le bus RabbitMQ (127.0.0.1:5672) répond à l'accueil AMQP mais ne transmet plus : … » (0,15 s), whole run 50 s.
The run's heartbeat group, created by Neutron once the alarm cleared after its client had timed out, was left behind
(the run's cleanup timed out too; the 30-min auto sweep would take it): the test deletes such leftovers itself.
nova-compute stopped: C21 ÉCHEC in 59.5 s « l'instance … reste en BUILD (étape scheduling) depuis 58 s : nova-compute
ne donne plus signe de vie (openstack compute service list : state down) : nova-compute@compute1 (dernier signe de vie
…) »; stop 20 s + run 63 s + restart 23 s (opt-in).
Slot S5 (17:18–17:20 UTC, flock -x, `POPEK_SLOW_FAULTS=1 pytest … -k "bus_memory or recorded_as_raw or external_bridge"`):
3 passed in 79.5 s. The bridge down: C26/C18 ÉCHEC in 13 s (named 2 s into the watch) « l'IP flottante 198.51.100.220 ne
répond pas en SSH : cet hôte envoie 198.51.100.220 par eth0, pas par popek-ex, le pont du réseau externe du cloud
(198.51.100.1/24) : ce pont est à l'arrêt (ip link : pas de drapeau UP, état DOWN), sa route vers 198.51.100.0/24 a
disparu avec lui ; d'après cette preuve, ni l'instance ni les agents du cloud ne sont en cause ». popek-tiny recorded
raw: C20 ÉCHEC « … ses données sont une image qcow2 (signature b'QFI\xfb' à l'octet 0), pas raw comme Glance l'indique
(disk_format) … ». The bus alarm test: C21 and C31 ÉCHEC as in S1, nothing left behind.
Then (17:20–17:22, flock -x) the two allow-path tests as pytest: 2 passed in 134 s.
Checked and found sound (no test added): the member project's Neutron port quota 0 (a project of hF2's own): C21
IGNORÉ « quota port : limite 0, en usage 0, il en faut 2 de plus … pas une panne du cloud »; the member role removed
right before the boot: C21 RÉUSSI, true (the services still honour the cached token: the server did boot).

Faults at the scenario's own steps are injected by a small pytest plugin given to `popek run` after `--`
(test_faults_dataplane.run_scenarios). They touch only the run's own security groups: a shared hold of the
cloud's lock is enough (`flock -s /tmp/popek-cloud.lock`). The others change the cloud: run them serially (CI) or
under `flock -x /tmp/popek-cloud.lock`.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time

import pytest

from popek import paths
from popek.checks.cloud import connection, ledger
from popek.checks.localcloud import services

from faults import record, slow
from helpers import running_cloud
from test_faults_dataplane import failed_with, pick, run_scenarios, seconds

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="mettre en faute le cloud embarqué")


#: Deletes the SSH rule the scenario has just put back in its group (« je remets la règle SSH »): the scenario's
#: « SSH passe de nouveau » then waits for SSH that no group admits. The group is the scenario's own (its ledger
#: deletes it).
SSH_RULE_PUT_BACK_DELETED = """
def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if step.name == "je remets la règle SSH":
        conn, firewall = request.getfixturevalue("conn"), request.getfixturevalue("firewall")
        for rule in conn.network.security_group_rules(security_group_id=firewall.group.id, direction="ingress"):
            if rule.protocol == "tcp" and rule.port_range_min == 22:
                conn.network.delete_security_group_rule(rule)
"""


@pytest.mark.falsifies("C25", fault="la règle SSH que le scénario vient de remettre supprimée dans son dos (le chemin "
                                    "qui doit laisser passer) : aucun groupe de l'instance n'admet plus SSH")
@slow("faute lente (~90 s : la paire d'instances du run à démarrer)")
def test_ssh_rule_deleted_after_put_back_is_named(state, tmp_path, record_property):
    found = run_scenarios(tmp_path, "bloque_puis", plugin=SSH_RULE_PUT_BACK_DELETED)
    result = pick(found, "C25", "bloque")
    message = failed_with(result, "SSH ne passe pas malgré la règle SSH remise",
                          "aucun groupe de sécurité des ports de l'instance ne laisse entrer tcp 22",
                          "la règle qui l'autorisait n'y est plus")
    assert seconds(result) < 150, f"nommé en {seconds(result):.0f} s"
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")


#: Deletes the SSH rules of the second guest's groups (the run's SSH-only group) right after the scenario moved the
#: floating IP to it; puts SSH_IN back in those groups once the step that judges it has run (the run's other
#: scenarios use that group too).
SECOND_SSH_RULE_DELETED = """
import time

from popek.checks.cloud import secgroups

AGENT_LAG = 10

_gone = set()

def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if step.name == "je déplace l'IP flottante vers la seconde instance":
        conn, second = request.getfixturevalue("conn"), request.getfixturevalue("second")
        for port in conn.network.ports(device_id=second.server.id):
            for group in port.security_group_ids or []:
                for rule in conn.network.security_group_rules(security_group_id=group, direction="ingress"):
                    if rule.protocol == "tcp" and rule.port_range_min == 22:
                        conn.network.delete_security_group_rule(rule)
                        _gone.add(group)
        time.sleep(AGENT_LAG)  # the OVS agent applies the deletion (measured: SSH arrived 0.6 s after it without)
    elif step.name == "SSH sur la même adresse arrive sur la seconde instance":
        _put_back(request)

def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception):
    _put_back(request)

def _put_back(request):
    conn = request.getfixturevalue("conn")
    while _gone:
        conn.network.create_security_group_rule(security_group_id=_gone.pop(), **secgroups.SSH_IN)
"""


@pytest.mark.falsifies("C24", fault="la règle SSH du groupe de la seconde instance supprimée dans son dos juste après "
                                    "le déplacement de l'IP flottante : SSH ne peut plus y arriver")
@slow("faute lente (~90 s : la paire d'instances du run à démarrer)")
def test_second_guests_ssh_rule_deleted_is_named_not_the_move(state, tmp_path, record_property):
    found = run_scenarios(tmp_path, "déplacée_mène", plugin=SECOND_SSH_RULE_DELETED)
    result = pick(found, "C24", "déplacée")
    message = failed_with(result, "n'arrive pas sur",
                          "aucun groupe de sécurité des ports de l'instance ne laisse entrer tcp 22",
                          "la règle qui l'autorisait n'y est plus")
    assert seconds(result) < 150, f"nommé en {seconds(result):.0f} s"
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")


def rabbitmqctl(state, *args: str) -> str:
    """The embedded RabbitMQ's rabbitmqctl, run with the environment its service runs with (node name, epmd port,
    the $HOME of its Erlang cookie): never the host's own broker."""
    svc = next(s for s in services.core_services(state) if s.name == "rabbitmq")
    done = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", *args], env={**os.environ, **svc.env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} : {done.stderr[-500:]}"
    return done.stdout


def everything_alive(admin, timeout: float = 90) -> None:
    """Every Nova service up and every Neutron agent alive within `timeout` s (their heartbeats go over the bus)."""
    deadline, late = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        late = [s.binary for s in admin.compute.services() if s.state != "up"] + \
            [a.binary for a in admin.network.agents() if not a.is_alive]
        if not late:
            return
        time.sleep(5)
    raise AssertionError(f"toujours « down » après la faute : {late}")


def heartbeat_runs(admin) -> set[str]:
    """The run ids of the popek heartbeat groups now in the cloud (popek-<run>-…-heartbeat-<n>)."""
    return {m.group(1) for g in admin.network.security_groups()
            if (m := re.match(r"popek-([0-9a-f]+)-.*heartbeat", g.name or ""))}


def watermark_args(said: str) -> list[str] | None:
    """The arguments of `rabbitmqctl set_vm_memory_high_watermark` that put back the watermark `said` by
    `vm_memory_monitor:get_vm_memory_high_watermark()` ("0.4" on 3.10, "{absolute,1073741824}", "{relative,0.6}");
    None for an answer of another shape."""
    said = said.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", said):
        return [said]
    if found := re.fullmatch(r"\{relative,\s*([0-9]+(?:\.[0-9]+)?)\}", said):
        return [found.group(1)]
    if found := re.fullmatch(r"\{absolute,\s*([0-9]+)\}", said):
        return ["absolute", found.group(1)]
    return None


@contextlib.contextmanager
def bus_memory_alarm(state, admin):
    """The embedded RabbitMQ's memory watermark set to 0.0001 of the host's memory: its memory alarm goes off and it
    blocks every connection that publishes. In the end the watermark is put back to the value read before (not
    RabbitMQ's default, which changed: 0.4 in 3.x, 0.6 in 4.x; nor over a value set at runtime), every Nova service
    and Neutron agent is seen alive again, and what the faulty run could not delete (its heartbeat group, created
    once the alarm cleared) is swept."""
    conf = state.etc("rabbitmq") / "rabbitmq.conf"
    if "vm_memory_high_watermark" in (conf.read_text() if conf.is_file() else ""):
        pytest.skip(f"{conf} fixe vm_memory_high_watermark : ce test ne saurait pas le remettre")
    found = rabbitmqctl(state, "eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    restore = watermark_args(found)
    if restore is None:
        pytest.skip(f"seuil mémoire de RabbitMQ lu sous une forme inconnue ({found.strip()[:80]!r}) : "
                    "ce test ne saurait pas le remettre")
    before = heartbeat_runs(admin)
    rabbitmqctl(state, "set_vm_memory_high_watermark", "0.0001")
    try:
        yield
    finally:
        rabbitmqctl(state, "set_vm_memory_high_watermark", *restore)
        everything_alive(admin)
        member = connection.connect(connection.EMBEDDED_MEMBER, {}, paths.embedded_clouds_yaml()).conn
        for run in heartbeat_runs(admin) - before:
            ledger.sweep(member, None, prefix=f"popek-{run}")


@pytest.fixture(scope="module")
def admin(state):
    return connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn


@pytest.mark.falsifies("C21", "C31", fault="alarme mémoire de RabbitMQ (rabbitmqctl set_vm_memory_high_watermark "
                                           "0.0001) : le bus salue encore mais bloque toute connexion qui publie")
def test_bus_memory_alarm_is_named(state, admin, tmp_path, record_property):
    """~55 s: the two scenarios end within 31 s (Neutron's API times out on its blocked RPC)."""
    from test_faults_api import failed, record as record_claims, run_claims

    with bus_memory_alarm(state, admin):
        found = run_claims(tmp_path, "C21", "C31")
    record_claims(record_property, found, "C21", "C31")
    failed(found, "C21", "le bus RabbitMQ a une alarme de mémoire en cours", "Memory used:")
    failed(found, "C31", "répond à l'accueil AMQP mais ne transmet plus", "alarme de mémoire")


@pytest.mark.falsifies("C21", fault="nova-compute arrêté (SIGTERM), ni gelé ni désactivé : son service passe « down » "
                                    "après service_down_time")
@slow("faute lente (~110 s : nova-compute arrêté puis redémarré, son signe de vie attendu périmé)")
def test_compute_stopped_is_named(state, tmp_path, record_property):
    from test_faults_api import failed, record as record_claims, run_claims, stopped

    with stopped(state, "nova-compute"):
        found = run_claims(tmp_path, "C21")
    record_claims(record_property, found, "C21")
    failed(found, "C21", "reste en BUILD", "nova-compute ne donne plus signe de vie", "state down")


def external_bridges(state) -> list[str]:
    """The embedded cloud's external bridges on this host (its OVS agent's bridge_mappings, e.g. popek-ex)."""
    import configparser

    agent = configparser.ConfigParser(interpolation=None)
    agent.read(state.etc("neutron") / "plugins" / "ml2" / "openvswitch_agent.ini")
    mappings = agent.get("ovs", "bridge_mappings", fallback="")
    return [m.split(":", 1)[1].strip() for m in mappings.split(",") if ":" in m]


@contextlib.contextmanager
def bridge_down(bridge: str):
    """`ip link set BRIDGE down` (the kernel drops its connected route), up again in the end and its route seen back."""
    subprocess.run(["ip", "link", "set", bridge, "down"], check=True, timeout=10)
    try:
        yield bridge
    finally:
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not subprocess.run(["ip", "route", "show", "dev", bridge],
                                                                 capture_output=True, text=True).stdout.strip():
            time.sleep(0.5)
        assert subprocess.run(["ip", "route", "show", "dev", bridge], capture_output=True, text=True).stdout.strip(), \
            f"{bridge} relevé, mais sa route n'est pas revenue"


@pytest.mark.falsifies("C26", "C18", fault="le pont du réseau externe du cloud mis à l'arrêt sur cet hôte (ip link set "
                                           "popek-ex down) : sa route vers les IP flottantes disparaît avec lui")
def test_external_bridge_down_is_named_not_l3(state, tmp_path, record_property):
    bridges = external_bridges(state)
    if not bridges:
        pytest.skip("pas de pont externe dans la configuration de l'agent OVS du cloud embarqué")
    # ~25 s: named from the host's own links as soon as the watch starts (13 s live, 2 s into the watch)
    with bridge_down(bridges[0]):
        found = run_scenarios(tmp_path, "ouvre_linstance")
    result = pick(found, "C26")
    message = failed_with(result, "ce pont est à l'arrêt", bridges[0], "a disparu avec lui")
    assert "L3/NAT" not in message, message
    record(record_property, "ÉCHEC", f"{seconds(result):.0f} s : {message[:400]}")


@pytest.mark.falsifies("C20", fault="la plus petite image (qcow2) enregistrée « raw » dans la base de Glance (disk_format), "
                                    "ses données et leur hachage intacts : Nova la refuse au démarrage")
def test_image_recorded_as_raw_fails_c20(state, admin, tmp_path, record_property):
    """~15 s: one listing scenario, the tiny image read whole."""
    from test_faults_api import failed, record as record_claims, run_claims
    from test_faults_novel import glance_sql

    image = min((i for i in admin.image.images() if i.status == "active" and i.visibility == "public"
                 and (i.size or 0) > 0 and i.disk_format == "qcow2"), key=lambda i: i.size)
    glance_sql(state, "UPDATE images SET disk_format = 'raw' WHERE id = ?", image.id)
    try:
        found = run_claims(tmp_path, "C20", keyword="images_sont")
    finally:
        glance_sql(state, "UPDATE images SET disk_format = 'qcow2' WHERE id = ?", image.id)
    record_claims(record_property, found, "C20")
    failed(found, "C20", image.id, "sont une image qcow2", "pas raw comme Glance l'indique", name_has="images")
