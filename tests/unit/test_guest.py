"""checks/cloud/guest.py without a cloud: what a reach that fails says and keeps, the metadata read once,
the floating IP's move judged from what SSH sees, where a lost ping is located; and the waits of
checks/cloud/traffic.py that go through waits.poll (a negative check waits its grace out)."""
import time
from types import SimpleNamespace

import pytest

from popek.checks.cloud import diagnosis, guest, shared, traffic


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch):
    """The polls' pauses (2–3 s between SSH attempts) shortened: the clock still runs, the tests go fast."""
    real = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: real(min(s, 0.01)))


def _scripted(*answers):
    """A fake traffic.ssh_run that answers each call with the next of `answers` (an exception is raised)."""
    left = iter(answers)

    def ssh_run(*a, **k):
        answer = next(left)
        if isinstance(answer, Exception):
            raise answer
        return answer
    return ssh_run


def _guest(**change):
    values = dict(server=SimpleNamespace(id="s1"), fip=SimpleNamespace(id="f1"), address="203.0.113.5",
                  user="root", image=SimpleNamespace(properties={}), group=SimpleNamespace(id="g1"),
                  alive=lambda: True, key="PRIVATE-KEY")
    values.update(change)
    return guest.ReachableGuest(**values)


def test_the_private_key_is_in_no_repr():
    access = shared.Access(private="PRIVATE-KEY", public="ssh-ed25519 AAAA", keypair=None, group=None)
    assert "PRIVATE-KEY" not in repr(access)
    assert "PRIVATE-KEY" not in repr(_guest())


def test_metadata_are_read_once_from_inside_the_guest(monkeypatch):
    calls = []

    def ssh_run(address, user, key, command, timeout=10.0):
        calls.append((address, user, key))
        return 0, '{"uuid": "s1", "hostname": "h"}'
    monkeypatch.setattr(traffic, "ssh_run", ssh_run)
    g = _guest()
    assert g.meta_data()["uuid"] == "s1" and g.meta_data()["hostname"] == "h"
    assert calls == [("203.0.113.5", "root", "PRIVATE-KEY")]


def test_unreadable_metadata_fail_with_what_the_guest_printed(monkeypatch):
    monkeypatch.setattr(traffic, "ssh_run", lambda *a, **k: (7, "curl: (7) Failed to connect"))
    with pytest.raises(AssertionError, match=r"metadata illisibles depuis l'instance \(statut 7\) : 'curl"):
        _guest().meta_data()


class Agent(SimpleNamespace):
    pass


def _admin(*alive):
    agents = [Agent(agent_type="DHCP agent", binary=f"agent-{i}", host="h", is_alive=a, is_admin_state_up=True,
                    last_heartbeat_at="t") for i, a in enumerate(alive)]
    return SimpleNamespace(network=SimpleNamespace(agents=lambda: agents))


def test_dead_agents_and_their_state_need_admin():
    assert guest.dead_agents(None) == [] and guest.agent_state(None) is None
    assert guest.dead_agents(_admin(True, False)) == ["agent-1"]
    assert [a["vivant"] for a in guest.agent_state(_admin(True, False))] == [True, False]


@pytest.fixture
def fake_cloud(monkeypatch):
    """A cloud where a floating IP is made and associated, and diagnosis.watch answers as scripted."""
    from popek.checks.cloud import compute, network

    port = SimpleNamespace(fixed_ips=[{"ip_address": "10.78.0.5"}], network_id="n1", mac_address="fa:16:3e:00:00:01")
    monkeypatch.setattr(network, "create_floating_ip", lambda conn, ledger, ext: SimpleNamespace(
        id="f1", floating_ip_address="203.0.113.5"))
    monkeypatch.setattr(network, "associate", lambda conn, fip, port: None)
    monkeypatch.setattr(network, "server_port", lambda conn, server: port)
    monkeypatch.setattr(compute, "console_log", lambda conn, server, length=200: "popek-tiny: booting\n")
    monkeypatch.setattr(compute, "wait_active", lambda conn, server: server)
    reboots = []
    conn = SimpleNamespace(compute=SimpleNamespace(reboot_server=lambda s, kind: reboots.append(kind),
                                                   get_server=lambda _id: SimpleNamespace(status="ACTIVE")))
    watched = []

    def script(*outcomes):
        def watch(obs, timeout):
            watched.append(obs.kind)
            outcome = outcomes[len(watched) - 1]
            if outcome is not None:
                raise outcome
        monkeypatch.setattr(diagnosis, "watch", watch)
    return SimpleNamespace(conn=conn, reboots=reboots, watched=watched, script=script)


TINY = SimpleNamespace(properties={guest.compute.TINY_MARKER: "popek-tiny: ready", guest.HEARTBEAT: "popek-tiny: alive"},
                       name="popek-tiny")
ACCESS = shared.Access(private="PRIVATE-KEY", public="pub", keypair=SimpleNamespace(name="k"),
                       group=SimpleNamespace(id="g1", name="sg"))


def test_an_unreachable_guest_fails_naming_the_component_and_the_dead_agents(fake_cloud):
    fake_cloud.script(diagnosis.Unreachable("metadata", "le service de metadata ne répond pas (169.254.169.254)"))
    kept = {}
    with pytest.raises(AssertionError) as failed:
        guest.reach(fake_cloud.conn, None, "ext", ACCESS, SimpleNamespace(id="s1"), TINY, ACCESS.group,
                    kept.__setitem__, since="IP flottante associée", admin=_admin(True, False))
    message = str(failed.value)
    assert message.startswith("le service de metadata ne répond pas (169.254.169.254) ; "
                              "agents Neutron hors service (API admin) : agent-1 [constaté ")
    assert message.endswith(" s après : IP flottante associée]")
    assert set(kept) == {"console de l'instance (SSH impossible)", "agents Neutron (état vu par l'API admin)"}
    assert fake_cloud.reboots == []


def test_a_tiny_guest_without_lease_is_rebooted_once_unless_the_dhcp_agent_is_dead(fake_cloud, monkeypatch):
    monkeypatch.setattr(traffic.Liveness, "_beat", lambda self: 3)
    fake_cloud.script(diagnosis.Unreachable("dhcp", "pas de bail DHCP"), None)
    kept = {}
    reached = guest.reach(fake_cloud.conn, None, "ext", ACCESS, SimpleNamespace(id="s1"), TINY, ACCESS.group,
                          kept.__setitem__, admin=_admin(True))
    assert fake_cloud.reboots == ["HARD"] and fake_cloud.watched == ["tiny", "tiny"]
    assert kept["incident du plan de données (contourné)"] == "pas de bail DHCP\n→ redémarrage forcé de l'instance"
    assert (reached.address, reached.user, reached.key, reached.fip.id) == ("203.0.113.5", "root", "PRIVATE-KEY", "f1")
    assert reached.alive.marker == "popek-tiny: alive"

    fake_cloud.reboots.clear()
    fake_cloud.watched.clear()
    fake_cloud.script(diagnosis.Unreachable("dhcp", "pas de bail DHCP"))
    dead = _admin(False)
    dead.network.agents()[0].binary = "neutron-dhcp-agent"
    with pytest.raises(AssertionError, match="^pas de bail DHCP ; agents Neutron hors service .*neutron-dhcp-agent"):
        guest.reach(fake_cloud.conn, None, "ext", ACCESS, SimpleNamespace(id="s1"), TINY, ACCESS.group,
                    kept.__setitem__, admin=dead)
    assert fake_cloud.reboots == []


def test_the_moved_floating_ip_lands_on_the_target(monkeypatch):
    monkeypatch.setattr(traffic, "ssh_run", _scripted(OSError("refused"), (0, "2: eth0    inet 10.78.0.9/24 brd")))
    arrived, seen = guest.lands_on(_guest(), "10.78.0.9", timeout=10)
    assert arrived and seen[0] == "OSError" and "10.78.0.9/" in seen[-1]


def test_a_floating_ip_still_on_the_old_guest_after_the_grace_fails_at_once(monkeypatch):
    monkeypatch.setattr(guest, "MOVE_GRACE", 0.05)
    monkeypatch.setattr(traffic, "ssh_run", lambda *a, **k: (0, "2: eth0    inet 10.78.0.5/24 brd"))
    with pytest.raises(AssertionError, match=r"arrive toujours, 0.05 s après le déplacement, sur une autre instance "
                                             r"que la seconde \(10.78.0.9\)"):
        guest.lands_on(_guest(), "10.78.0.9", timeout=30)


def test_a_ping_lost_on_the_way_to_the_floating_ip_is_located(monkeypatch):
    from popek.checks.cloud import compute, network, secgroups

    port = SimpleNamespace(fixed_ips=[{"ip_address": "10.78.0.5"}], network_id="n1", mac_address="fa:16:3e:00:00:01")
    monkeypatch.setattr(network, "server_port", lambda conn, server: port)
    monkeypatch.setattr(secgroups, "rules_of", lambda conn, group: [{"direction": "ingress", "protocol": "icmp"}])
    monkeypatch.setattr(compute, "console_log", lambda conn, server, length=200: "console")
    monkeypatch.setattr(diagnosis, "netns_ping", lambda ns, address: ns == "qdhcp-n1" and address == "10.78.0.5")
    monkeypatch.setattr(diagnosis, "fip_path", lambda fip, fixed, mac, router: {"router": router})
    monkeypatch.setattr(diagnosis, "fip_findings", lambda facts: [f"routeur {facts['router']}"])
    # a cloud without popek's userspace OVS (else the live switch of this host would be read: not hermetic)
    monkeypatch.setattr(diagnosis, "ovs_facts", lambda ctl, fixed: {})
    conn = SimpleNamespace(network=SimpleNamespace(get_ip=lambda _id: SimpleNamespace(router_id="r1")))
    kept = {}
    said = guest.why_no_ping(conn, None, _guest(), kept.__setitem__)
    assert said == ("règle ICMP en entrée dans le groupe : oui ; instance vivante (battement de cœur récent) ; "
                    "son adresse fixe 10.78.0.5 répond au ping depuis l'espace de noms DHCP : le groupe laisse "
                    "passer, c'est le chemin vers l'IP flottante 203.0.113.5 qui perd le ping (L3/NAT) ; routeur r1")
    assert kept["chemin vers l'IP flottante"] == {"router": "r1"}
    monkeypatch.setattr(diagnosis, "netns_ping", lambda ns, address: False)
    said = guest.why_no_ping(conn, None, _guest(alive=lambda: False), kept.__setitem__)
    assert said.endswith("instance NON prouvée vivante ; son adresse fixe 10.78.0.5 ne répond pas non plus depuis "
                         "l'espace de noms DHCP")


def test_cloud_init_user_data_write_the_token_where_the_check_reads_it(monkeypatch):
    assert "path: /run/popek-cloud-init" in guest.cloud_init_user_data("abc") and '"abc\\n"' in \
        guest.cloud_init_user_data("abc")
    monkeypatch.setattr(traffic, "ssh_run", _scripted((0, ""), (0, "abc\n")))
    assert guest.wrote_token(_guest(token="abc"), timeout=10)


# --- traffic's waits through waits.poll -----------------------------------------------------------

def test_wait_ssh_retries_until_the_guest_answers(monkeypatch):
    import paramiko

    monkeypatch.setattr(traffic, "ssh_run", _scripted(OSError("no route"), paramiko.AuthenticationException("not yet"),
                                                      (0, "ok")))
    assert traffic.wait_ssh("203.0.113.5", "root", "k", timeout=30) == (0, "ok")


def test_wait_ssh_says_the_last_error_when_the_time_is_up(monkeypatch):
    def ssh_run(*a, **k):
        raise ConnectionRefusedError("refused")
    monkeypatch.setattr(traffic, "ssh_run", ssh_run)
    with pytest.raises(TimeoutError, match=r"SSH vers 203.0.113.5 impossible en 0 s \(ConnectionRefusedError: refused\)"):
        traffic.wait_ssh("203.0.113.5", "root", "k", timeout=0.05)
    with pytest.raises(TimeoutError, match=r"\(TimeoutError: jamais tenté\)"):
        traffic.wait_ssh("203.0.113.5", "root", "k", timeout=0)


def test_a_probe_that_keeps_answering_is_asked_until_the_grace_is_over():
    calls, start = [], time.monotonic()
    verdict = traffic.blocked_each({"ssh": lambda: calls.append(1) or True, "ping": lambda: False},
                                   lambda: True, grace=0.5)
    assert verdict == {"ssh": False, "ping": True}
    assert time.monotonic() - start >= 0.5 and len(calls) >= 3


def test_a_missing_icmp_rule_flow_is_blamed_on_the_agent_only_when_the_group_has_the_rule(monkeypatch):
    from popek.checks.cloud import compute, connection, network, secgroups

    port = SimpleNamespace(id="ca850a11-2453", fixed_ips=[{"ip_address": "10.78.0.5"}], network_id="n1",
                           mac_address="fa:16:3e:00:00:01")
    monkeypatch.setattr(network, "server_port", lambda conn, server: port)
    monkeypatch.setattr(compute, "console_log", lambda conn, server, length=200: "console")
    monkeypatch.setattr(diagnosis, "netns_ping", lambda ns, address: False)
    monkeypatch.setattr(connection, "embedded_ovs_ctl", lambda: "/c/ovs/ovs-vswitchd.ctl")
    monkeypatch.setattr(connection, "embedded_int_bridge", lambda: "/c/ovs/popek-int.mgmt")
    monkeypatch.setattr(diagnosis, "ovs_facts", lambda ctl, fixed: {"ovs_fixed": fixed, "ovs_conntrack": [],
                                                                    "ovs_icmp_flows": []})
    monkeypatch.setattr(diagnosis, "port_icmp_flows", lambda mgmt, port_id: [])
    rules = []
    monkeypatch.setattr(secgroups, "rules_of", lambda conn, group: rules)
    said = guest.why_no_ping(None, None, _guest(), {}.__setitem__)
    assert said.startswith("règle ICMP en entrée dans le groupe : NON") and "aucun flux OpenFlow" not in said
    rules.append({"direction": "ingress", "protocol": "icmp"})
    said = guest.why_no_ping(None, None, _guest(), {}.__setitem__)
    assert "aucun flux OpenFlow de règle ICMP pour le port de 10.78.0.5" in said


class _PortNet:
    """A network proxy with one port, its security groups changed by update_port."""

    def __init__(self, groups):
        self.port = SimpleNamespace(id="port-1", name="", security_group_ids=list(groups), network_id="n1",
                                    fixed_ips=[{"ip_address": "10.78.0.7"}])

    def ports(self, device_id=None):
        return [self.port]

    def update_port(self, port, security_group_ids):
        self.port.security_group_ids = list(security_group_ids)


def test_a_shared_server_joins_a_scenario_group_alone_and_the_ledger_keeps_its_groups():
    from popek.checks.cloud.ledger import Ledger
    conn = SimpleNamespace(network=_PortNet(["sg-ssh"]))
    book = Ledger(conn, "popek-0123abcd-gw0")
    guest.join_only(conn, book, SimpleNamespace(id="s2", name="shared"), SimpleNamespace(id="sg-scenario"))
    assert conn.network.port.security_group_ids == ["sg-scenario"]
    [entry] = book.entries
    assert (entry.kind, entry.id, entry.extra) == ("port_security_groups", "port-1", {"groups": ["sg-ssh"]})
    assert book.cleanup() == [] and conn.network.port.security_group_ids == ["sg-ssh"]


def test_the_remote_group_rule_comes_only_once_the_second_is_refused_under_its_new_group(monkeypatch):
    from popek.checks.cloud import secgroups
    from popek.checks.cloud.ledger import Ledger
    made = []
    monkeypatch.setattr(secgroups, "create_group", lambda conn, ledger, what: SimpleNamespace(id="sg-distant"))
    monkeypatch.setattr(secgroups, "add_rule", lambda conn, ledger, group, **rule: made.append(rule) or "rule")
    monkeypatch.setattr(guest, "lease", lambda *a: None)
    monkeypatch.setattr(guest, "liveness", lambda *a: (lambda: True))
    first = _guest(group=SimpleNamespace(id="sg-ssh"))
    conn = SimpleNamespace(network=_PortNet(["sg-ssh"]))

    # one probe decides here (traffic.blocked's own waits are tested above)
    monkeypatch.setattr(traffic, "blocked", lambda probe, alive: not probe())
    # the port still answers after joining a group without ingress rules: the group is not applied
    monkeypatch.setattr(traffic, "tcp_from_guest", lambda *a: True)
    with pytest.raises(AssertionError, match="reste joignable sur le port 22 .* n'est pas appliqué"):
        guest.behind_remote_group(conn, Ledger(conn, "popek-0123abcd-gw0"), SimpleNamespace(id="s2"), first, None)
    assert made == []

    monkeypatch.setattr(traffic, "tcp_from_guest", lambda *a: False)
    second = guest.behind_remote_group(conn, Ledger(conn, "popek-0123abcd-gw0"), SimpleNamespace(id="s2"), first, None)
    assert conn.network.port.security_group_ids == ["sg-distant"] and second.fixed == "10.78.0.7"
    assert made == [secgroups.ssh_in(remote_group_id="sg-ssh")] and second.rule == "rule"


class _Ledger:
    """A fake ledger: what was deleted through it."""

    def __init__(self):
        self.deleted = []

    def delete(self, resource_id):
        self.deleted.append(resource_id)


def _panicked():
    panic = diagnosis.Panic(panic="Kernel panic - not syncing: Fatal exception in interrupt",
                            oops="Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
    return diagnosis.Unreachable("guest-panic", diagnosis.panic_message(panic), panic)


def _boot_reachable(fake_cloud, monkeypatch, ledger, kept):
    booted = []

    def boot(conn, ledger, what, image, flavor, network, **kw):
        booted.append(SimpleNamespace(id=f"s{len(booted) + 1}"))
        return booted[-1]
    monkeypatch.setattr(guest.compute, "boot", boot)
    routed = SimpleNamespace(network="n1", external="ext")
    found = guest.boot_reachable(fake_cloud.conn, ledger, routed, ACCESS, ACCESS.group, kept.__setitem__,
                                 SimpleNamespace(properties={}, name="debian-13"), "flavor")
    return found, booted


def test_a_guest_kernel_panic_replaces_the_server_once(fake_cloud, monkeypatch):
    monkeypatch.setattr(traffic.Liveness, "_beat", lambda self: 3)
    fake_cloud.script(_panicked(), None)
    ledger, kept = _Ledger(), {}
    found, booted = _boot_reachable(fake_cloud, monkeypatch, ledger, kept)
    assert [s.id for s in booted] == ["s1", "s2"] and ledger.deleted == ["s1"] and found.server.id == "s2"
    note = kept["incident de l'invité (contourné)"]
    assert note.startswith("le noyau de l'invité a paniqué au démarrage (Oops: int3: 0000 [#1] PREEMPT SMP NOPTI ; ")
    assert note.endswith("défaut de l'émulateur QEMU TCG sans KVM ; instance remplacée une fois")


def test_a_second_guest_kernel_panic_fails_at_once_naming_it(fake_cloud, monkeypatch):
    fake_cloud.script(_panicked(), _panicked())
    ledger, kept = _Ledger(), {}
    with pytest.raises(AssertionError) as failed:
        _boot_reachable(fake_cloud, monkeypatch, ledger, kept)
    message = str(failed.value)
    assert message.startswith("le noyau de l'invité a paniqué au démarrage (Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
    assert "les services du cloud ne sont pas en cause" in message and message.endswith("sur l'instance de remplacement")
    assert ledger.deleted == ["s1"] and fake_cloud.watched == ["cloud-init", "cloud-init"]


def test_any_other_failure_is_not_retried(fake_cloud, monkeypatch):
    fake_cloud.script(diagnosis.Unreachable("metadata", "le service de metadata ne répond pas"))
    ledger = _Ledger()
    with pytest.raises(AssertionError, match="^le service de metadata ne répond pas"):
        _boot_reachable(fake_cloud, monkeypatch, ledger, {})
    assert ledger.deleted == []
