"""Glue for features/cloud/plan_de_donnees.feature -> popek.checks.cloud.traffic (real packets)."""
import json
import secrets
import time

from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import compute, diagnosis, hypervisor, network, secgroups, traffic
from popek.steps.cloud_common import bootable, shared_pair

SSH_BOOT_TIMEOUT = 300      # a guest under QEMU TCG, through nova: boot, DHCP, metadata, dropbear
CLOUD_INIT_TIMEOUT = 600    # a full Debian with cloud-init under TCG
#: A cloud-init first boot under TCG: two vCPUs halve it (importing cloud-init's Python dominates).
CLOUD_INIT_VCPUS = 2
HEARTBEAT = "popek_heartbeat"
#: Seconds a floating IP may keep leading to its old instance after the API moved it (the L3 agent
#: rewrites its NAT within seconds).
MOVE_GRACE = 60  # image property: the prefix of the guest's console heartbeat


@given("la paire de clés du run, importée depuis une clé générée ici", target_fixture="key")
def run_key(shared):
    return shared.access()  # {"private", "public", "keypair", "group": the run's SSH-only group}


@given("un groupe de sécurité qui n'autorise en entrée que SSH", target_fixture="firewall")
def ssh_only_group(conn, ledger):
    group, rule = secgroups.ssh_only_group(conn, ledger)  # keeps its egress rules: DHCP, metadata
    return {"group": group, "ssh_rule": rule}


def _reach(conn, ledger, routed, key, server, image, group, evidence, timeout=SSH_BOOT_TIMEOUT,
           since="ACTIVE", cloud=None):
    """Give `server` a floating IP of this scenario and wait until SSH with the key logs in through it.

    The wait ends as soon as the guest's console (and, on the cloud's network node, a probe of its fixed
    address) shows which component failed: the scenario then fails naming it, with the console and the
    Neutron agents' state as evidence (diagnosis.watch)."""
    fip = network.create_floating_ip(conn, ledger, routed["external"])
    network.associate(conn, fip, network.server_port(conn, server))
    address, user = fip.floating_ip_address, compute.login_user(image)
    started = time.monotonic()
    console = _ConsoleSince(conn, server)
    obs = _observer(conn, server, image, address, user, key["private"], console)
    try:
        try:
            diagnosis.watch(obs, timeout)
        except diagnosis.Unreachable as exc:
            if exc.component != "dhcp" or obs.kind != "tiny" or "neutron-dhcp-agent" in _dead_agents(cloud):
                raise
            # userspace OVS can leave a new tap down (compute.lease_or_reboot says how): one hard reboot
            evidence.text("incident du plan de données (contourné)", f"{exc}\n→ redémarrage forcé de l'instance")
            console.mark()
            conn.compute.reboot_server(server, "HARD")
            compute.wait_active(conn, server)
            diagnosis.watch(obs, timeout)
    except diagnosis.Unreachable as exc:
        evidence.text("console de l'instance (SSH impossible)", console.full())
        _agent_state(cloud, evidence)
        dead = _dead_agents(cloud)
        said = f" ; agents Neutron hors service (API admin) : {', '.join(dead)}" if dead else ""
        raise AssertionError(f"{exc}{said} [constaté {time.monotonic() - started:.0f} s après : {since}]") from None
    evidence.figure(f"{since} → SSH prêt", round(time.monotonic() - started, 1), " s")
    return {"server": server, "fip": fip, "address": address, "user": user, "image": image, "group": group,
            "alive": _liveness(conn, server, image)}


class _ConsoleSince:
    """The server's whole console log, or what it printed since `mark()` (after a reboot)."""

    def __init__(self, conn, server):
        self.conn, self.server, self.offset = conn, server, 0

    def full(self) -> str:
        return compute.console_log(self.conn, self.server, length=None)

    def mark(self) -> None:
        self.offset = len(self.full())

    def __call__(self) -> str:
        return self.full()[self.offset:]


def _observer(conn, server, image, address, user, private, console) -> diagnosis.Observer:
    port = network.server_port(conn, server)
    fixed = port.fixed_ips[0]["ip_address"] if port.fixed_ips else None

    def status():
        now = conn.compute.get_server(server.id)
        return now.status, (getattr(now, "fault", None) or {}).get("message", "")

    return diagnosis.Observer(
        ssh=lambda: traffic.ssh_attempt(address, user, private),
        console=console, status=status,
        # on the cloud's network node: does the guest answer from Neutron's DHCP namespace of its network?
        fixed_answers=lambda: diagnosis.netns_tcp(f"qdhcp-{port.network_id}", fixed) if fixed else None,
        kind="tiny" if (image.properties or {}).get(compute.TINY_MARKER) else "cloud-init", address=address)


def _dead_agents(cloud) -> list[str]:
    """The binaries of the Neutron agents the admin API shows as not alive ([] without admin)."""
    admin = getattr(cloud, "admin", None)
    if admin is None:
        return []
    try:
        return sorted({a.binary for a in admin.network.agents() if not a.is_alive})
    except Exception:  # evidence only
        return []


def _agent_state(cloud, evidence) -> None:
    """The Neutron agents as the admin API shows them (alive or not), when popek has admin credentials."""
    admin = getattr(cloud, "admin", None)
    if admin is None:
        return
    try:
        agents = [{"agent": a.agent_type, "binaire": a.binary, "hôte": a.host, "vivant": a.is_alive,
                   "activé": a.is_admin_state_up, "dernier signe": a.last_heartbeat_at}
                  for a in admin.network.agents()]
    except Exception as exc:  # evidence only: never hide the scenario's own failure
        agents = [{"erreur": f"{type(exc).__name__}: {exc}"}]
    evidence.json("agents Neutron (état vu par l'API admin)", agents)


def _boot_reachable(conn, ledger, routed, key, group, evidence, image=None, user_data=None,
                    timeout=SSH_BOOT_TIMEOUT, min_ram=0, vcpus=1, cloud=None):
    image, flavor = ((image, compute.pick_flavor(conn, image, min_ram, vcpus)) if image
                     else bootable(conn, min_ram=min_ram))
    server = compute.boot(conn, ledger, "guest", image, flavor, routed["network"],
                          key_name=key["keypair"].name, user_data=user_data, security_groups=[group.name])
    return _reach(conn, ledger, routed, key, server, image, group, evidence, timeout, cloud=cloud)


def _lease(conn, server, image, evidence) -> None:
    """The tiny image says when it got (or missed) its DHCP lease: one hard reboot when it missed it."""
    marker = (image.properties or {}).get(compute.TINY_MARKER)
    note = compute.lease_or_reboot(conn, server, marker) if marker else None
    if note:
        evidence.text("incident du plan de données (contourné)", note)


def _liveness(conn, server, image) -> traffic.Liveness:
    return traffic.Liveness(conn, server, (image.properties or {}).get(HEARTBEAT))


def _image(conn, server):
    return conn.image.get_image((server.image or {})["id"])


@given("une instance du run, joignable par SSH sur une IP flottante", target_fixture="guest")
def run_guest(cloud, conn, ledger, routed, key, shared, evidence):
    first, _ = shared_pair(shared)  # booted with the run's key, in its SSH-only group
    return _reach(conn, ledger, routed, key, first, _image(conn, first), key["group"], evidence,
                  since="IP flottante associée", cloud=cloud)


@given("une instance de ce groupe, joignable par SSH sur son IP flottante", target_fixture="guest")
def group_guest(cloud, conn, ledger, routed, key, firewall, evidence):
    return _boot_reachable(conn, ledger, routed, key, firewall["group"], evidence, cloud=cloud)


@then("une autre clé est refusée par le même serveur SSH")
def other_key_refused(guest):
    other_private, _ = compute.ssh_keypair()
    what = traffic.ssh_refused(guest["address"], guest["user"], other_private)
    assert what is None, f"autre clé : {what}"


def _meta_data(guest, key) -> dict:
    """The instance's OpenStack metadata (openstack/latest/meta_data.json), fetched from inside it."""
    if "meta_data" not in guest:
        cmd = compute.METADATA_GET.format(path="openstack/latest/meta_data.json")
        status, out = traffic.ssh_run(guest["address"], guest["user"], key["private"], cmd)
        try:
            guest["meta_data"] = json.loads(out)
        except ValueError:
            raise AssertionError(f"metadata illisibles depuis l'instance (statut {status}) : {out[:300]!r}") from None
    return guest["meta_data"]


@then("depuis l'instance, http://169.254.169.254 donne l'identifiant de l'instance")
def metadata_from_guest(guest, key, evidence):
    md = _meta_data(guest, key)
    evidence.json("metadata lues dans l'instance (openstack/latest/meta_data.json)",
                  {k: md.get(k) for k in ("uuid", "name", "hostname", "availability_zone")})
    assert md.get("uuid") == guest["server"].id, f"metadata : uuid {md.get('uuid')!r}, attendu {guest['server'].id}"


@then("les metadata donnent aussi à l'instance son nom d'hôte et la clé publique de la paire")
def metadata_hostname_and_key(guest, key, evidence):
    md = _meta_data(guest, key)
    _, own = traffic.ssh_run(guest["address"], guest["user"], key["private"], "hostname")
    evidence.text("nom d'hôte de l'instance (commande hostname)", own)
    expected = compute.metadata_hostname(guest["server"])
    hostname = str(md.get("hostname", ""))
    assert hostname.split(".")[0].lower() == expected, f"hostname des metadata : {hostname!r}, attendu {expected!r}"
    assert own.strip().split(".")[0].lower() == expected, f"l'instance s'appelle {own.strip()!r}, pas {expected!r}"
    keys = [k.split()[:2] for k in (md.get("public_keys") or {}).values()]
    assert key["public"].split()[:2] in keys, "la clé publique de la paire n'est pas dans les metadata"


@when("je retire du groupe la règle SSH")
def drop_ssh(conn, firewall):
    conn.network.delete_security_group_rule(firewall["ssh_rule"].id, ignore_missing=True)


@then(parsers.parse("SSH et ping vers l'instance sont bloqués (délai {timeout:d} s)"))
def both_blocked(guest, timeout):
    address = guest["address"]
    verdict = traffic.blocked_each({"ssh": lambda: traffic.tcp_open(address, 22, timeout),
                                    "ping": lambda: traffic.ping(address, timeout)}, guest["alive"])
    assert verdict["ssh"], "SSH passe toujours"
    assert verdict["ping"], "le ping passe sans règle ICMP"


@when("j'ajoute au groupe une règle ICMP")
def allow_icmp(conn, ledger, firewall):
    secgroups.add_rule(conn, ledger, firewall["group"], direction="ingress", ether_type="IPv4", protocol="icmp",
                       remote_ip_prefix="0.0.0.0/0")


@then(parsers.parse("le ping passe mais SSH reste bloqué (délai {timeout:d} s)"))
def ping_only(conn, firewall, guest, timeout, evidence):
    address = guest["address"]
    if not traffic.wait_until(lambda: traffic.ping(address, timeout), 60):
        raise AssertionError("le ping reste bloqué malgré la règle ICMP (60 s) ; "
                             + _why_no_ping(conn, firewall["group"], guest, evidence))
    assert traffic.blocked(lambda: traffic.tcp_open(address, 22, timeout), guest["alive"]), "SSH passe sans règle SSH"


def _why_no_ping(conn, group, guest, evidence) -> str:
    """Where a ping that a rule allows is lost: the guest itself (not alive), the group (its rules as the
    API has them), or the way to its floating IP (the fixed address answers from the DHCP namespace)."""
    rules = secgroups.rules_of(conn, group)
    evidence.json("règles du groupe au moment de l'échec", rules)
    icmp = [r for r in rules if r["direction"] == "ingress" and r["protocol"] in ("icmp", "1")]
    port = network.server_port(conn, guest["server"])
    fixed = port.fixed_ips[0]["ip_address"]
    inside = diagnosis.netns_ping(f"qdhcp-{port.network_id}", fixed)
    evidence.text("console de l'instance", compute.console_log(conn, guest["server"], length=60))
    alive = guest["alive"]()
    said = [f"règle ICMP en entrée dans le groupe : {'oui' if icmp else 'NON'}",
            f"instance {'vivante (battement de cœur récent)' if alive else 'NON prouvée vivante'}"]
    if inside is True:
        said.append(f"son adresse fixe {fixed} répond au ping depuis l'espace de noms DHCP : le groupe laisse passer, "
                    f"c'est le chemin vers l'IP flottante {guest['address']} qui perd le ping (L3/NAT)")
        fip = conn.network.get_ip(guest["fip"].id)
        facts = diagnosis.fip_path(guest["address"], fixed, port.mac_address, fip.router_id or "")
        if facts:
            evidence.json("chemin vers l'IP flottante", facts)
            said.extend(diagnosis.fip_findings(facts))
    elif inside is False:
        said.append(f"son adresse fixe {fixed} ne répond pas non plus depuis l'espace de noms DHCP")
    return " ; ".join(said)


@when("je remets la règle SSH")
def allow_ssh(conn, ledger, firewall):
    secgroups.add_rule(conn, ledger, firewall["group"], **secgroups.SSH_IN)


@then("SSH passe de nouveau")
def ssh_again(guest, key):
    status, _ = traffic.wait_ssh(guest["address"], guest["user"], key["private"], timeout=60)
    assert status == 0


@given("la seconde instance du run, sur le même réseau", target_fixture="second")
def run_second(conn, shared, guest, evidence):
    _, second = shared_pair(shared)
    _lease(conn, second, guest["image"], evidence)
    return {"server": second, "fixed": network.server_port(conn, second).fixed_ips[0]["ip_address"]}


@given("une seconde instance dont le groupe n'accepte SSH que des membres du groupe de la première",
       target_fixture="second")
def second_guest_remote_group(conn, ledger, routed, key, guest, evidence):
    group = secgroups.create_group(conn, ledger, "sg-distant")  # egress kept: DHCP, metadata
    rule = secgroups.add_rule(conn, ledger, group, **secgroups.ssh_in(remote_group_id=guest["group"].id))
    server = compute.boot(conn, ledger, "guest", guest["image"], compute.pick_flavor(conn, guest["image"]),
                          routed["network"], key_name=key["keypair"].name, security_groups=[group.name])
    _lease(conn, server, guest["image"], evidence)
    return {"server": server, "group": group, "rule": rule, "alive": _liveness(conn, server, guest["image"]),
            "fixed": network.server_port(conn, server).fixed_ips[0]["ip_address"]}


def _first_reaches_second(guest, key, second, timeout: float) -> bool:
    return traffic.tcp_from_guest(guest["address"], guest["user"], key["private"], second["fixed"], timeout)


@then("la première instance atteint le port SSH de la seconde")
def first_reaches_second(guest, key, second):
    # Also the proof that the second guest is up: its "blocked" below can then be believed.
    assert traffic.wait_until(lambda: _first_reaches_second(guest, key, second, 3), SSH_BOOT_TIMEOUT, interval=2), \
        f"la première instance n'atteint pas {second['fixed']}:22 malgré la règle à groupe distant"


@when("la règle de la seconde désigne un autre groupe, dont la première n'est pas membre")
def remote_group_elsewhere(conn, ledger, second):
    other = secgroups.create_group(conn, ledger, "sg-autre")
    secgroups.add_rule(conn, ledger, second["group"], **secgroups.ssh_in(remote_group_id=other.id))
    conn.network.delete_security_group_rule(second["rule"].id, ignore_missing=True)


@then(parsers.parse("la première instance n'atteint plus le port SSH de la seconde (délai {timeout:d} s)"))
def first_blocked_from_second(guest, key, second, timeout):
    assert traffic.blocked(lambda: _first_reaches_second(guest, key, second, timeout), second["alive"]), \
        f"la première instance atteint toujours {second['fixed']}:22 sans être membre du groupe distant"


@when("je déplace l'IP flottante vers la seconde instance")
def move_fip(conn, guest, second):
    network.associate(conn, guest["fip"], network.server_port(conn, second["server"]))


@then("SSH sur la même adresse arrive sur la seconde instance")
def lands_on_second(guest, second, key, evidence):
    seen, elsewhere = [], []

    def on_second():
        try:
            _, out = traffic.ssh_run(guest["address"], guest["user"], key["private"], "ip -4 -o addr show", timeout=5)
        except Exception as exc:  # the second guest may still be booting
            seen.append(type(exc).__name__)
            return False
        seen.append(out)
        if f" {second['fixed']}/" in out:
            return True
        elsewhere.append(time.monotonic())  # SSH answers, from another guest: the move did not happen
        if elsewhere[-1] - elsewhere[0] > MOVE_GRACE:
            raise AssertionError(f"SSH via {guest['address']} arrive toujours, {MOVE_GRACE} s après le déplacement, "
                                 f"sur une autre instance que la seconde ({second['fixed']}) : {out.strip()[:300]}")
        return False
    assert traffic.wait_until(on_second, SSH_BOOT_TIMEOUT, interval=2), \
        f"SSH via {guest['address']} n'arrive pas sur {second['fixed']} (dernier vu : {seen[-1:]})"
    evidence.text("adresses vues par SSH après le déplacement", seen[-1])


@given("une instance d'une image avec cloud-init, démarrée avec des user data qui écrivent un fichier",
       target_fixture="guest")
def cloud_init_guest(cloud, conn, ledger, routed, key, evidence):
    import pytest
    try:
        image = compute.pick_image(conn, cloud_init=True)
    except LookupError:
        pytest.skip("aucune image avec cloud-init dans ce cloud")
    token = secrets.token_hex(8)
    user_data = f"#cloud-config\nwrite_files:\n  - path: /run/popek-cloud-init\n    content: \"{token}\\n\"\n"
    guest = _boot_reachable(conn, ledger, routed, key, key["group"], evidence, image=image, user_data=user_data,
                            timeout=CLOUD_INIT_TIMEOUT, min_ram=512, vcpus=CLOUD_INIT_VCPUS, cloud=cloud)
    guest["token"] = token
    return guest


@then("le fichier écrit par cloud-init est dans l'instance, avec le contenu attendu")
def cloud_init_file(guest, key):
    def read():
        _, out = traffic.ssh_run(guest["address"], guest["user"], key["private"], "cat /run/popek-cloud-init")
        return out.strip() == guest["token"]
    assert traffic.wait_until(read, 120, interval=3), "cloud-init n'a pas écrit le fichier des user data"


@when("je lis dans l'instance la signature CPUID de son hyperviseur (feuilles 0x40000000 et 0x40000100)",
      target_fixture="cpuid")
def guest_cpuid(guest, key, evidence):
    status, out = traffic.ssh_run(guest["address"], guest["user"], key["private"], hypervisor.guest_command())
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
        diag = cloud.admin.compute.get_server_diagnostics(guest["server"].id)
        announced = diag.hypervisor
        evidence.json("diagnostics Nova de l'instance (admin)", {"driver": diag.driver, "hypervisor": diag.hypervisor})
    status, reason = hypervisor.verdict(cpuid, announced)
    evidence.text("verdict C14", reason)
    if status == "skipped":
        pytest.skip(reason)
    assert status == "passed", reason
