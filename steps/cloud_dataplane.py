"""Glue for features/cloud/plan_de_donnees.feature -> popek.checks.cloud.guest and .traffic (real packets)."""
import secrets
import time

from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import compute, guest as guests, hypervisor, network, secgroups, traffic
from popek.steps.cloud_common import shared_pair, unbootable_images, uses_pair
from popek.steps.cloud_compute import room

CLOUD_INIT_TIMEOUT = 600    # a full Debian with cloud-init under TCG
#: A cloud-init first boot under TCG: two vCPUs halve it (importing cloud-init's Python dominates).
CLOUD_INIT_VCPUS = 2
#: What the wait for SSH counts from when the server is already ACTIVE (the run's shared pair).
ASSOCIATED = "IP flottante associée"
#: The same through the run's own floating IP, once checked (it leads to the server's port).
RUN_FIP = "IP flottante du run vérifiée"


def attach_to(evidence) -> guests.Attach:
    """guest.Attach for this scenario's evidence: a str as text, anything else as JSON."""
    return lambda title, value: (evidence.text if isinstance(value, str) else evidence.json)(title, value)


def reached(evidence, guest: guests.ReachableGuest, since: str = "ACTIVE") -> guests.ReachableGuest:
    """`guest`, once its time to SSH is kept as a figure of the scenario."""
    evidence.figure(f"{since} → SSH prêt", guest.ready_after, " s")
    return guest


def one_more_fip(conn) -> None:
    """Skip (IGNORÉ, the quota named) when the project's floating-IP quota leaves no floating IP for this
    scenario besides those in use (the run's own one, held for the whole run, among them): room()'s.
    Returns room()'s context manager: Neutron's refusal of the floating IP for lack of quota inside it
    (another scenario took the last one meanwhile) is IGNORÉ too."""
    return room(conn, floating_ips=1)


def run_guest_reached(cloud, conn, ledger, routed, access, server, evidence) -> guests.ReachableGuest:
    """One of the run's shared servers (ACTIVE already), reached through a floating IP of this scenario."""
    with one_more_fip(conn):
        found = guests.reach(conn, ledger, routed.external, access, server, guests.image_of(conn, server), access.group,
                             attach_to(evidence), since=ASSOCIATED, admin=cloud.admin)
    return reached(evidence, found, ASSOCIATED)


def run_fip_reached(cloud, conn, shared, access, server, group, evidence) -> guests.ReachableGuest:
    """The run's first server (ACTIVE already, held by the scenario), reached through the run's own
    floating IP (shared.pair_fip), checked before use: guest.run_fip_guest."""
    with room(conn):    # Neutron's refusal of the run's floating IP for lack of quota: IGNORÉ with it
        fip = shared.pair_fip()
    assert fip is not None, "pas d'IP flottante du run : le cloud n'a pas de réseau externe"
    found = guests.run_fip_guest(conn, fip, access, server, guests.image_of(conn, server), group,
                                 attach_to(evidence), since=RUN_FIP, admin=cloud.admin)
    return reached(evidence, found, RUN_FIP)


@given("la paire de clés du run, importée depuis une clé générée ici", target_fixture="key")
def run_key(shared, conn):
    with room(conn):    # Neutron's refusal of the group for lack of quota: IGNORÉ with it
        return shared.access()  # the run's key and its SSH-only group (shared.Access)


@given("un groupe de sécurité qui n'autorise en entrée que SSH", target_fixture="firewall")
def ssh_only_group(conn, ledger):
    with room(conn), network.quota_room(conn):  # no room for a group or its rule: IGNORÉ with the quota
        return guests.Firewall(*secgroups.ssh_only_group(conn, ledger))  # keeps its egress rules: DHCP, metadata


@given("une instance du run, joignable par SSH sur une IP flottante", target_fixture="guest")
@uses_pair
def run_guest(cloud, conn, ledger, routed, key, shared, evidence):
    first, _ = shared_pair(shared, ledger)  # booted with the run's key, in its SSH-only group
    return run_fip_reached(cloud, conn, shared, key, first, key.group, evidence)


@given("une instance de ce groupe, joignable par SSH sur son IP flottante", target_fixture="guest")
@uses_pair
def group_guest(cloud, conn, ledger, routed, key, shared, firewall, evidence):
    # the run's first server, a member of this group alone until the scenario ends (no boot of its own).
    # Its first SSH reach may still pass under the groups the port had (the agent applies the change
    # while we connect); the checks that follow cannot: SSH and ping both blocked once SSH's rule is gone,
    # then the ping passes only with this group's ICMP rule (the groups the port had before have none)
    first, _ = shared_pair(shared, ledger)
    guests.join_only(conn, ledger, first, firewall.group)
    return run_fip_reached(cloud, conn, shared, key, first, firewall.group, evidence)


@then("une autre clé est refusée par le même serveur SSH")
def other_key_refused(guest):
    other_private, _ = compute.ssh_keypair()
    what = traffic.ssh_refused(guest.address, guest.user, other_private)
    assert what is None, f"autre clé : {what}"


@then("depuis l'instance, http://169.254.169.254 donne l'identifiant de l'instance")
def metadata_from_guest(guest, evidence):
    md = guest.meta_data()
    evidence.json("metadata lues dans l'instance (openstack/latest/meta_data.json)",
                  {k: md.get(k) for k in ("uuid", "name", "hostname", "availability_zone")})
    assert md.get("uuid") == guest.server.id, f"metadata : uuid {md.get('uuid')!r}, attendu {guest.server.id}"


@then("les metadata donnent aussi à l'instance son nom d'hôte et la clé publique de la paire")
def metadata_hostname_and_key(guest, key, evidence):
    md = guest.meta_data()
    _, own = guest.run("hostname")
    evidence.text("nom d'hôte de l'instance (commande hostname)", own)
    expected = compute.metadata_hostname(guest.server)
    hostname = str(md.get("hostname", ""))
    assert hostname.split(".")[0].lower() == expected, f"hostname des metadata : {hostname!r}, attendu {expected!r}"
    assert own.strip().split(".")[0].lower() == expected, f"l'instance s'appelle {own.strip()!r}, pas {expected!r}"
    keys = [k.split()[:2] for k in (md.get("public_keys") or {}).values()]
    assert key.public.split()[:2] in keys, "la clé publique de la paire n'est pas dans les metadata"


@when("je retire du groupe la règle SSH")
def drop_ssh(conn, firewall):
    conn.network.delete_security_group_rule(firewall.ssh_rule.id, ignore_missing=True)


@then(parsers.parse("SSH et ping vers l'instance sont bloqués (délai {timeout:d} s)"))
def both_blocked(conn, guest, timeout):
    address = guest.address
    before = guests.embedded_flow_dumps()  # a foreign flow is named when it takes packets during these probes
    verdict = traffic.blocked_each({"ssh": lambda: traffic.tcp_open(address, 22, timeout),
                                    "ping": lambda: traffic.ping(address, timeout)}, guest.alive)
    path = guests.flow_path(conn, guest.server, address)
    assert verdict["ssh"], "SSH passe toujours" + secgroups.filter_note(conn, guest.server, "tcp", 22) \
        + guests.foreign_flows_note(before, path)
    assert verdict["ping"], "le ping passe sans règle ICMP" + secgroups.filter_note(conn, guest.server, "icmp") \
        + guests.foreign_flows_note(before, path)


@when("j'ajoute au groupe une règle ICMP")
def allow_icmp(conn, ledger, firewall):
    secgroups.add_rule(conn, ledger, firewall.group, direction="ingress", ether_type="IPv4", protocol="icmp",
                       remote_ip_prefix="0.0.0.0/0")


@then(parsers.parse("le ping passe mais SSH reste bloqué (délai {timeout:d} s)"))
def ping_only(conn, firewall, guest, timeout, evidence):
    lost = guests.ping_lost(conn, firewall.group, guest, attach_to(evidence), timeout, within=60)
    assert lost is None, "le ping reste bloqué malgré la règle ICMP (60 s) ; " + str(lost)
    before = guests.embedded_flow_dumps()
    assert traffic.blocked(lambda: traffic.tcp_open(guest.address, 22, timeout), guest.alive), \
        "SSH passe sans règle SSH" + secgroups.filter_note(conn, guest.server, "tcp", 22) \
        + guests.foreign_flows_note(before, guests.flow_path(conn, guest.server, guest.address))


@when("je remets la règle SSH")
def allow_ssh(conn, ledger, firewall):
    secgroups.add_rule(conn, ledger, firewall.group, **secgroups.SSH_IN)


@then("SSH passe de nouveau")
def ssh_again(conn, guest):
    # groups that no longer admit SSH (the rule put back, then deleted behind the scenario's back) are said after
    # one short try, not after the whole wait (a cloud that applies no group would still let SSH in)
    refused = secgroups.refused_by_groups(conn, guest.server, "tcp", 22)
    try:
        status, _ = traffic.wait_ssh(guest.address, guest.user, guest.key, timeout=20 if refused else 60)
    except TimeoutError as exc:
        refused = refused or secgroups.refused_by_groups(conn, guest.server, "tcp", 22)
        raise AssertionError(f"SSH ne passe pas malgré la règle SSH remise : {exc}"
                             + (f" ; {refused}" if refused else "")) from None
    assert status == 0, f"SSH passe mais la commande « true » rend {status}"


@given("la seconde instance du run, sur le même réseau", target_fixture="second")
@uses_pair
def run_second(conn, ledger, shared, guest, evidence):
    _, second = shared_pair(shared, ledger)
    return guests.neighbour(conn, second, guest.image, attach_to(evidence))


@given("une seconde instance dont le groupe n'accepte SSH que des membres du groupe de la première",
       target_fixture="second")
@uses_pair
def second_guest_remote_group(conn, ledger, shared, guest, evidence):
    _, second = shared_pair(shared, ledger)  # the run's second server, in this scenario's group alone until it ends
    return guests.behind_remote_group(conn, ledger, second, guest, attach_to(evidence))


@then("la première instance atteint le port SSH de la seconde")
def first_reaches_second(conn, guest, second):
    # Also the proof that the second guest is up: its "blocked" below can then be believed.
    # Groups that no longer admit the first (its rule deleted behind the scenario's back): said after a short try
    refused = secgroups.refused_by_groups(conn, second.server, "tcp", 22, guest.server)
    reached = traffic.wait_until(lambda: guest.reaches(second.fixed, 3), 20 if refused else guests.SSH_BOOT_TIMEOUT,
                                 interval=2)
    refused = None if reached else refused or secgroups.refused_by_groups(conn, second.server, "tcp", 22, guest.server)
    assert reached, f"la première instance n'atteint pas {second.fixed}:22 malgré la règle à groupe distant" \
        + (f" ; {refused}" if refused else "")


@when("la règle de la seconde désigne un autre groupe, dont la première n'est pas membre")
def remote_group_elsewhere(conn, ledger, second):
    other = secgroups.create_group(conn, ledger, "sg-autre")
    secgroups.add_rule(conn, ledger, second.group, **secgroups.ssh_in(remote_group_id=other.id))
    conn.network.delete_security_group_rule(second.rule.id, ignore_missing=True)


@then(parsers.parse("la première instance n'atteint plus le port SSH de la seconde (délai {timeout:d} s)"))
def first_blocked_from_second(conn, guest, second, timeout):
    assert traffic.blocked(lambda: guest.reaches(second.fixed, timeout), second.alive), \
        f"la première instance atteint toujours {second.fixed}:22 sans être membre du groupe distant" \
        + secgroups.filter_note(conn, second.server, "tcp", 22, guest.server)


@when("je déplace l'IP flottante vers la seconde instance")
def move_fip(conn, ledger, guest, second):
    # the run's floating IP: given back to the first instance when the scenario ends (ledger)
    network.move(conn, ledger, guest.fip, network.server_port(conn, second.server))


@then("SSH sur la même adresse arrive sur la seconde instance")
def lands_on_second(conn, guest, second, evidence):
    # groups that no longer admit SSH to the second (its rule deleted behind the scenario's back): said after a
    # short try, not after the whole boot-long wait
    refused = secgroups.refused_by_groups(conn, second.server, "tcp", 22)
    arrived, seen = guests.lands_on(guest, second.fixed, **({"timeout": 20} if refused else {}))
    refused = None if arrived else refused or secgroups.refused_by_groups(conn, second.server, "tcp", 22)
    assert arrived, f"SSH via {guest.address} n'arrive pas sur {second.fixed} (dernier vu : {seen[-1:]})" \
        + (f" ; {refused}" if refused else "")
    evidence.text("adresses vues par SSH après le déplacement", seen[-1])


@given("une instance d'une image avec cloud-init, démarrée avec des user data qui écrivent un fichier",
       target_fixture="guest")
def cloud_init_guest(cloud, conn, ledger, routed, key, evidence):
    import pytest
    try:    # not an image the dataplane probe found not booting (its finding is C20's)
        image = compute.pick_image(conn, cloud_init=True, avoid=unbootable_images(cloud))
    except LookupError:
        pytest.skip("aucune image avec cloud-init dans ce cloud")
    token = secrets.token_hex(8)
    flavor = compute.pick_flavor(conn, image, 512, CLOUD_INIT_VCPUS)
    # the project's quota: a server of this flavor and one more floating IP, or IGNORÉ with it
    with room(conn, floating_ips=1, neutron={"port": 1}, **compute.server_needs(flavor)):
        asked = time.monotonic()
        found = guests.boot_reachable(conn, ledger, routed, key, key.group, attach_to(evidence), image, flavor,
                                      user_data=guests.cloud_init_user_data(token), timeout=CLOUD_INIT_TIMEOUT,
                                      admin=cloud.admin)
    found.token = token
    # the figure: from asking Nova (the replacement of a panicked guest included) to the SSH login
    evidence.figure("création → SSH prêt", round(time.monotonic() - asked, 1), " s")
    return reached(evidence, found)


@then("le fichier écrit par cloud-init est dans l'instance, avec le contenu attendu")
def cloud_init_file(guest):
    assert guests.wrote_token(guest, 120), "cloud-init n'a pas écrit le fichier des user data"


@when("je lis dans l'instance la signature CPUID de son hyperviseur (feuilles 0x40000000 et 0x40000100)",
      target_fixture="cpuid")
def guest_cpuid(guest, evidence):
    status, out = guest.run(hypervisor.guest_command())
    evidence.text("sonde CPUID dans l'instance (od -tx1 : 0x40000000, 0x40000100, ECX de la feuille 1)", out)
    measured = hypervisor.parse_output(out)
    evidence.json("hyperviseur mesuré dans l'instance",
                  {"signature 0x40000000": measured.signature, "signature 0x40000100": measured.signature_100,
                   "bit hyperviseur (CPUID.1:ECX[31])": measured.hypervisor_bit, "hyperviseur": measured.hypervisor})
    return measured


@then("l'instance tourne sous QEMU/KVM, et sous ce que Nova annonce quand on peut le lui demander")
def runs_under_kvm(cloud, guest, cpuid, evidence):
    import pytest

    announced = None
    if cloud.admin is not None:  # Nova's own account: the server's diagnostics (admin, microversion 2.48)
        diag = cloud.admin.compute.get_server_diagnostics(guest.server.id)
        announced = diag.hypervisor
        evidence.json("diagnostics Nova de l'instance (admin)", {"driver": diag.driver, "hypervisor": diag.hypervisor})
    status, reason = hypervisor.verdict(cpuid, announced)
    evidence.text("verdict C14", reason)
    if status == "skipped":
        pytest.skip(reason)
    assert status == "passed", reason
