"""A server stuck in BUILD names the dead component from the cloud's health records (stuck.py), as soon as
they are conclusive, and never blames a stale record; compute.wait_active raises with it (fake connections).
The records are the shapes the embedded cloud's admin API gave with nova-conductor killed (2026-12-06)."""
from types import SimpleNamespace as NS

import pytest
from keystoneauth1 import exceptions as ks

from popek.checks.cloud import compute, stuck

H = stuck.Health
HEALTHY = [H("nova-conductor", "compute1", True), H("nova-scheduler", "compute1", True),
           H("nova-compute", "compute1", True)]
AGENTS = [H("neutron-openvswitch-agent", "compute1", True), H("neutron-dhcp-agent", "compute1", True)]
#: nova-conductor killed: its heartbeat stops, and nova-compute's too (it reports through the conductor).
CONDUCTOR_DEAD = [H("nova-conductor", "compute1", False, updated="2026-12-06T09:52:01"),
                  H("nova-scheduler", "compute1", True),
                  H("nova-compute", "compute1", False, updated="2026-12-06T09:52:03")]


def test_a_dead_conductor_is_named_before_the_computes_it_silences():
    said = stuck.dead_component(None, CONDUCTOR_DEAD, AGENTS)
    assert said.startswith("nova-conductor ne donne plus signe de vie")
    assert "09:52:01" in said and "son signe de vie passe par nova-conductor" in said


def test_a_dead_compute_of_the_servers_host_is_named():
    services = HEALTHY[:2] + [H("nova-compute", "compute1", False), H("nova-compute", "old", True)]
    assert stuck.dead_component("compute1", services, AGENTS).startswith("nova-compute ne donne")


def test_a_stale_record_beside_a_live_service_is_not_blamed():
    services = HEALTHY + [H("nova-scheduler", "gone-host", False), H("nova-compute", "gone-host", False)]
    assert stuck.dead_component("compute1", services, AGENTS) is None
    disabled = HEALTHY[:2] + [H("nova-compute", "compute1", True), H("nova-compute", "x", False, enabled=False)]
    assert stuck.dead_component(None, disabled, AGENTS) is None


def test_a_dead_l2_agent_on_the_host_is_named_and_the_dhcp_agent_is_not_needed_to_bind():
    agents = [H("neutron-openvswitch-agent", "compute1", False), H("neutron-dhcp-agent", "compute1", True)]
    assert "neutron-openvswitch-agent" in stuck.dead_component("compute1", HEALTHY, agents)
    assert stuck.dead_component("compute1", HEALTHY, [H("neutron-dhcp-agent", "compute1", False)]) is None


def test_nothing_is_concluded_within_the_grace_or_without_admin():
    assert stuck.stuck_finding("s", stuck.GRACE - 1, "scheduling", None, CONDUCTOR_DEAD, AGENTS) is None
    assert stuck.stuck_finding("s", 300, "scheduling", None, None, None) is None
    said = stuck.stuck_finding("s", 64, "scheduling", None, CONDUCTOR_DEAD, AGENTS)
    assert said.startswith("l'instance s reste en BUILD (étape scheduling) depuis 64 s : nova-conductor")


def test_the_timeout_message_says_the_step_and_what_it_waits_for():
    said = stuck.timeout_message("s", 300, "BUILD", "scheduling", "pas d'identifiants admin")
    assert "étape scheduling" in said and "nova-scheduler" in said and "pas d'identifiants admin" in said
    assert "tous en vie" in stuck.timeout_message("s", 300, "BUILD", "spawning")


class FakeCompute:
    def __init__(self, states, services=()):
        self.states, self.calls, self._services = list(states), 0, list(services)

    def get_server(self, _id):
        self.calls += 1
        status, task = self.states[min(self.calls, len(self.states)) - 1]
        return NS(id="i", name="popek-x-server", status=status, task_state=task, compute_host=None,
                  fault={"message": "No valid host was found. "} if status == "ERROR" else None)

    def services(self):
        return self._services


def conn(states, services=()):
    return NS(compute=FakeCompute(states, services), network=NS(agents=lambda: []))


def service(binary, state):
    return NS(binary=binary, host="compute1", state=state, status="enabled", updated_at="2026-12-06T09:52:01")


@pytest.fixture
def no_grace(monkeypatch):
    monkeypatch.setattr(stuck, "GRACE", 0.0)


def test_wait_active_names_the_dead_conductor_at_once_instead_of_timing_out(no_grace):
    admin = conn([], [service("nova-conductor", "down"), service("nova-compute", "down")])
    member = conn([("BUILD", "scheduling")])
    with pytest.raises(AssertionError, match="nova-conductor ne donne plus signe de vie"):
        compute.wait_active(member, NS(id="i", name="popek-x-server"), timeout=60, admin=admin)
    assert member.compute.calls == 1


def test_wait_active_returns_the_active_server_and_reports_error_faults(no_grace):
    healthy = conn([], [service("nova-conductor", "up"), service("nova-compute", "up")])
    got = compute.wait_active(conn([("BUILD", "spawning"), ("ACTIVE", None)]), NS(id="i", name="x"),
                              timeout=30, admin=healthy)
    assert got.status == "ACTIVE"
    with pytest.raises(AssertionError, match="ERROR : No valid host"):
        compute.wait_active(conn([("ERROR", None)]), NS(id="i", name="x"), timeout=30)


def test_wait_active_times_out_in_french_with_the_step(no_grace):
    with pytest.raises(AssertionError, match=r"pas ACTIVE après \d+ s \(statut BUILD, étape scheduling\)"):
        compute.wait_active(conn([("BUILD", "scheduling")]), NS(id="i", name="x"), timeout=0.5,
                            admin_reason="pas d'identifiants admin")


class Placement:
    """What probe_placement reads of a connection: the catalog's URL of Placement, then GET of it. openstacksdk's
    own `placement` proxy raises NotSupported when its version discovery gets no answer (seen live)."""

    def __init__(self, answer, url="http://127.0.0.1:8778/"):
        self.answer, self.url = answer, url

    def endpoint_for(self, service_type):
        if isinstance(self.answer, ks.EndpointNotFound):
            raise self.answer
        return self.url

    def get(self, url, authenticated=True, raise_exc=True, timeout=None):
        assert url == self.url and not authenticated
        if isinstance(self.answer, Exception):
            raise self.answer
        return NS(status_code=self.answer)

    def conn(self):
        from openstack import exceptions as sdk_exc

        def discovery(*_):
            raise sdk_exc.NotSupported("The placement service for popek:RegionOne exists but does not have any "
                                       "supported versions.")
        return NS(endpoint_for=self.endpoint_for, session=NS(get=self.get),
                  placement=NS(get=discovery))


def test_no_valid_host_names_placement_when_it_does_not_answer():
    from keystoneauth1 import exceptions as ks

    # placement-api killed (live, 2026-12-06): the SDK's discovery raised NotSupported and Placement went unnamed
    problem = stuck.probe_placement(Placement(ks.ConnectFailure("http://127.0.0.1:8778/: refused")).conn())
    assert problem == "Placement ne répond pas (ConnectFailure : http://127.0.0.1:8778/)"
    assert stuck.probe_placement(Placement(503).conn()) == "Placement répond HTTP 503 à GET http://127.0.0.1:8778/"
    assert stuck.probe_placement(Placement(200).conn()) is None
    assert stuck.probe_placement(Placement(ks.EndpointNotFound()).conn()) is None
    said = stuck.error_cause(problem, HEALTHY, AGENTS)
    assert "Placement ne répond pas" in said and "aucun hôte candidat" in said


def test_no_valid_host_with_everything_alive_keeps_novas_word():
    assert stuck.error_cause(None, HEALTHY, AGENTS) is None
    assert stuck.error_cause(None, None, None) is None
    assert stuck.error_cause(None, HEALTHY[:2] + [H("nova-compute", "compute1", False)], AGENTS)\
        .startswith("nova-compute ne donne plus")


def test_wait_active_adds_the_dead_placement_to_novas_error_cause():
    from keystoneauth1 import exceptions as ks

    member = conn([("ERROR", None)])
    dead = Placement(ks.ConnectFailure("http://127.0.0.1:8778/: refused")).conn()
    member.endpoint_for, member.session = dead.endpoint_for, dead.session
    with pytest.raises(AssertionError, match="No valid host was found. — Placement ne répond pas"):
        compute.wait_active(member, NS(id="i", name="x"), timeout=30)


def test_every_agent_silent_names_the_rpc_server_and_the_bus_when_compute_is_silent_too():
    silent = [H("neutron-openvswitch-agent", "compute1", False), H("neutron-dhcp-agent", "compute1", False),
              H("neutron-l3-agent", "compute1", False)]
    assert "neutron-rpc-server" in stuck.dead_component("compute1", HEALTHY, silent)
    bus = HEALTHY[:2] + [H("nova-compute", "compute1", False)]
    assert stuck.dead_component("compute1", bus, silent).startswith("le bus RabbitMQ ne transmet plus")
    # the conductor dead too: the conductor is named (the bus would not explain its own silence)
    assert stuck.dead_component("compute1", CONDUCTOR_DEAD, silent).startswith("nova-conductor")


def test_health_word_reads_the_admin_records_and_says_nothing_without_admin():
    admin = conn([], [service("nova-conductor", "up"), service("nova-compute", "up")])
    admin.network = NS(agents=lambda: [NS(binary="neutron-openvswitch-agent", host="compute1", is_alive=False,
                                          is_admin_state_up=True, last_heartbeat_at="2026-12-06 09:58:01")])
    assert "neutron-openvswitch-agent" in stuck.health_word(admin, "compute1")
    assert stuck.health_word(None) is None


#: What components.stalled_services says of ovs-vswitchd frozen (SIGSTOP): every Nova service and Neutron
#: agent stays alive in the health records, and os-vif waits for the switch (120 s per OVS transaction).
#: Live (2026-12-06): "l'instance popek-…-server-… reste en BUILD (étape spawning) depuis 60 s ; sur le cloud
#: embarqué : ovs-vswitchd est gelé (processus 16256 à l'état T : arrêté par un signal)", C21 and C25 ÉCHEC
#: 63 and 64 s into their scenarios, C17 RÉUSSI (was: the bare 300 s timeout).
VSWITCHD_FROZEN = ["ovs-vswitchd est gelé (processus 16256 à l'état T : arrêté par un signal)"]


@pytest.fixture
def frozen_switch(monkeypatch, no_grace):
    from popek.checks.cloud import connection

    monkeypatch.setattr(stuck, "EMBEDDED_GRACE", 0.0)
    monkeypatch.setattr(connection, "embedded_trouble", lambda: list(VSWITCHD_FROZEN))
    return conn([], [service("nova-conductor", "up"), service("nova-scheduler", "up"), service("nova-compute", "up")])


def test_a_boot_stuck_while_every_record_is_alive_names_the_frozen_embedded_service(frozen_switch):
    member = conn([("BUILD", "spawning")])
    with pytest.raises(AssertionError, match=r"reste en BUILD \(étape spawning\) depuis \d+ s ; sur le cloud "
                                             r"embarqué : ovs-vswitchd est gelé \(processus 16256"):
        compute.wait_active(member, NS(id="i", name="popek-x-server"), timeout=60, admin=frozen_switch)
    assert member.compute.calls == 1
    # no admin role: the host's own evidence still counts
    with pytest.raises(AssertionError, match="ovs-vswitchd est gelé"):
        compute.wait_active(conn([("BUILD", "spawning")]), NS(id="i", name="x"), timeout=60,
                            admin_reason="pas d'identifiants admin")


def test_the_embedded_trouble_waits_its_grace_and_is_added_to_error_and_timeout(frozen_switch, monkeypatch):
    assert stuck.stalled_finding("s", 59, "spawning", VSWITCHD_FROZEN) is not None  # grace patched to 0
    monkeypatch.setattr(stuck, "EMBEDDED_GRACE", 60.0)
    assert stuck.stalled_finding("s", 59, "spawning", VSWITCHD_FROZEN) is None
    assert stuck.stalled_finding("s", 61, "spawning", []) is None
    with pytest.raises(AssertionError, match=r"pas ACTIVE après .* tous en vie ; sur le cloud embarqué : ovs-vswitchd"):
        compute.wait_active(conn([("BUILD", "spawning")]), NS(id="i", name="x"), timeout=0.5, admin=frozen_switch)
    member = conn([("ERROR", None)])
    member.compute.get_server = lambda _id: NS(id="i", name="x", status="ERROR", task_state=None,
                                               fault={"message": "Exceeded maximum number of retries."})
    with pytest.raises(AssertionError, match=r"Exceeded maximum number of retries. — sur le cloud embarqué : "
                                             r"ovs-vswitchd est gelé"):
        compute.wait_active(member, NS(id="i", name="x"), timeout=30, admin=frozen_switch)
