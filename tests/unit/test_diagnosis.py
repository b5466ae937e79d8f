"""diagnosis.watch names the failing component from recorded consoles, as soon as the evidence is
conclusive, and never fails a guest that is merely slow (forged observations, a fake clock)."""
import pytest

from popek.checks.cloud import diagnosis

BOOT = "[    0.000000] Linux version 6.12.38+deb13-cloud-amd64\n[    1.2] virtio_net virtio0 eth0: renamed\n"
LEASE = "udhcpc: started, v1.37.0\nudhcpc: broadcasting discover\nudhcpc: lease of 10.78.0.23 obtained from 10.78.0.2, lease time 86400\n"
NO_LEASE = "udhcpc: started, v1.37.0\n" + "udhcpc: broadcasting discover\n" * 20
METADATA = "popek-tiny: metadata instance-id 2b1c\n"
READY = "popek-tiny: ready popek-x 10.78.0.23/24\n"
ALIVE = "".join(f"popek-tiny: alive {n}\n" for n in range(5, 60, 3))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(consoles, ssh="no-answer", status="ACTIVE", fixed=None, kind="tiny", timeout=600, health=None,
        dhcp_disabled=None):
    """Watch a guest whose console is consoles(t) at time t; returns (seconds or the Unreachable, t)."""
    clock = Clock()
    obs = diagnosis.Observer(ssh=(lambda: ssh(clock.now)) if callable(ssh) else (lambda: ssh),
                             console=lambda: consoles(clock.now), status=lambda: (status, "No valid host"),
                             fixed_answers=lambda: fixed, kind=kind, address="198.51.100.42",
                             health=lambda: health, dhcp_disabled=lambda: dhcp_disabled)
    try:
        return diagnosis.watch(obs, timeout, clock=clock, sleep=clock.sleep), clock.now
    except diagnosis.Unreachable as exc:
        return exc, clock.now


def test_lease_without_metadata_names_the_metadata_service_within_half_a_minute():
    got, t = run(lambda t: BOOT + LEASE + (ALIVE if t > 10 else ""))
    assert isinstance(got, diagnosis.Unreachable) and got.component == "metadata"
    assert "le service de metadata ne répond pas (169.254.169.254)" in str(got) and "10.78.0.23" in str(got)
    assert t <= diagnosis.METADATA_GRACE["tiny"] + 4


def test_the_guest_giving_up_on_metadata_is_conclusive_at_once():
    got, t = run(lambda t: BOOT + LEASE + "popek-tiny: no metadata service\n")
    assert got.component == "metadata" and t < 5


def test_no_lease_names_dhcp():
    got, t = run(lambda t: BOOT + NO_LEASE)
    assert got.component == "dhcp" and "pas de bail DHCP" in str(got)
    assert t <= diagnosis.DHCP_GRACE["tiny"] + 4


def test_no_lease_with_a_dead_l2_agent_names_the_agent_not_dhcp():
    # neutron-openvswitch-agent killed while the guest boots (its record still alive at binding time): the
    # port stays unwired, no lease; the health records, read when the lease is overdue, name the agent
    dead = ("l'agent neutron-openvswitch-agent ne donne plus signe de vie (openstack network agent list : "
            "alive False), les ports de l'instance ne peuvent être liés : neutron-openvswitch-agent@compute1")
    got, t = run(lambda t: BOOT + NO_LEASE, health=dead)
    assert got.component == "health" and "pas de bail DHCP" in str(got) and "neutron-openvswitch-agent" in str(got)
    assert "agent DHCP ?" not in str(got) and t <= diagnosis.DHCP_GRACE["tiny"] + 4


def test_an_empty_console_names_compute():
    got, t = run(lambda t: "")
    assert got.component == "compute" and "console est vide" in str(got)
    assert t <= diagnosis.BOOT_GRACE + 4


def test_a_server_in_error_names_compute_at_once():
    got, t = run(lambda t: "", status="ERROR")
    assert got.component == "compute" and "No valid host" in str(got) and t == 0


def test_ready_guest_whose_fixed_address_answers_names_l3():
    got, t = run(lambda t: BOOT + LEASE + METADATA + READY, fixed=True)
    assert got.component == "l3" and "L3/NAT" in str(got) and "espace de noms DHCP" in str(got)
    assert t <= diagnosis.SSH_GRACE + 4


def test_ready_guest_that_answers_nowhere_is_not_blamed_on_l3():
    got, _ = run(lambda t: BOOT + LEASE + METADATA + READY, fixed=False)
    assert got.component == "network"


def test_a_refused_key_is_named():
    got, _ = run(lambda t: BOOT + LEASE + METADATA + READY, ssh="key-refused")
    assert got.component == "keypair" and "clé de la paire est refusée" in str(got)


def test_a_slow_but_healthy_guest_is_waited_for():
    """Each step comes late, but within its grace: no verdict, SSH works at 150 s."""
    def console(t):
        out = BOOT if t > 60 else ""
        out += LEASE if t > 60 + diagnosis.DHCP_GRACE["tiny"] - 10 else ""
        out += METADATA + READY if t > 60 + diagnosis.DHCP_GRACE["tiny"] + 10 else ""
        return out
    got, t = run(console, ssh=lambda t: "ok" if t > 150 else "no-answer")
    assert got == pytest.approx(t) and t > 150


def test_cloud_init_console_with_metadata_warnings_names_metadata():
    console = BOOT + ("[   40.1] cloud-init[512]: 2026-12-06 06:00:01,000 - url_helper.py[WARNING]: Calling "
                      "'http://169.254.169.254/openstack' failed [10/-1s]: request error [HTTPConnectionPool("
                      "host='169.254.169.254', port=80): Read timed out. (read timeout=10.0)]\n")
    got, t = run(lambda t: console, kind="cloud-init")
    assert got.component == "metadata" and "Read timed out" in str(got) and t < 5


def test_cloud_init_network_unreachable_is_not_a_metadata_failure():
    console = BOOT + ("cloud-init[512]: url_helper.py[WARNING]: Calling 'http://169.254.169.254/openstack' failed "
                      "[0/-1s]: request error [Failed to establish a new connection: [Errno 101] Network is unreachable]\n")
    got, _ = run(lambda t: console, kind="cloud-init")
    assert got.component == "dhcp"


def _http_errors(n: int) -> str:
    return "".join(f"[   {36 + i}.4] cloud-init[383]: 2026-12-06 07:41:56,954 - url_helper.py[WARNING]: Endpoint "
                   "returned a 503 error. HTTP endpoint is overloaded. Retrying.\n" for i in range(n))


def test_cloud_init_answered_503_again_and_again_names_metadata():
    # measured: nova-metadata stopped, Debian 13's init-local stage gets only 503s from Neutron's proxy and
    # prints no address nor URL (was misnamed "pas de bail DHCP" after 171 s)
    console = BOOT + _http_errors(diagnosis.MD_HTTP_ERRORS)
    got, t = run(lambda t: console, kind="cloud-init")
    assert got.component == "metadata" and "HTTP 503" in str(got) and t < 5


def test_a_few_transient_503_are_not_a_failure():
    seen = diagnosis.read_console(BOOT + _http_errors(diagnosis.MD_HTTP_ERRORS - 1))
    assert seen.metadata_failed is None


def test_the_heartbeat_is_proof_of_boot_not_of_a_lease():
    seen = diagnosis.read_console(ALIVE)
    assert seen.booted and seen.lease is None and not seen.ready


def test_cloud_init_falling_back_to_no_datasource_names_metadata():
    console = BOOT + ("[   61.2] cloud-init[640]: 2026-12-06 06:40:01,000 - util.py[WARNING]: Used fallback datasource\n"
                      "ci-info: |  ens3  | True |  10.78.0.31 | 255.255.255.0 | global | fa:16:3e:00:00:01 |\n")
    got, t = run(lambda t: console, kind="cloud-init")
    assert got.component == "metadata" and "fallback" in str(got) and t < 5


def test_cloud_init_finished_with_its_datasource_is_ready():
    console = BOOT + ("ci-info: |  ens3  | True |  10.78.0.31 | 255.255.255.0 | global | fa:16:3e:00:00:01 |\n"
                      "cloud-init[700]: Cloud-init v. 25.1 finished at Sun, 06 Dec 2026 06:41:00 +0000. "
                      "Datasource DataSourceOpenStackLocal [net,ver=2].  Up 95.10 seconds\n")
    seen = diagnosis.read_console(console)
    assert seen.ready and seen.metadata_ok and seen.lease == "10.78.0.31"


def test_a_quiet_kernel_with_only_udhcpc_lines_has_booted():
    """Seen with nova-metadata frozen: the tiny image's console held udhcpc's four lines and nothing else
    (its kernel is quiet; its own lines come once the metadata loop ends)."""
    got, t = run(lambda t: LEASE)
    assert got.component == "metadata" and t <= diagnosis.METADATA_GRACE["tiny"] + 4


def _fip_facts(**over):
    facts = {"fip": "198.51.100.6", "fixed": "10.78.0.9", "port_mac": "fa:16:3e:00:00:09",
             "router": "qrouter-a", "holders": {"qrouter-a": {"dev": "qg-1", "mac": "fa:16:3e:aa:aa:aa"}},
             "host_neighbour": [{"dev": "popek-ex", "lladdr": "fa:16:3e:aa:aa:aa", "state": "REACHABLE"}],
             "dnat": True, "router_neighbour": [{"dev": "qr-1", "lladdr": "fa:16:3e:00:00:09", "state": "PERMANENT"}],
             "router_pings_fixed": True}
    facts.update(over)
    return facts


def test_a_floating_ip_held_by_two_routers_and_a_stale_host_entry_are_named():
    facts = _fip_facts(holders={"qrouter-a": {"dev": "qg-1", "mac": "fa:16:3e:aa:aa:aa"},
                                "qrouter-b": {"dev": "qg-2", "mac": "fa:16:3e:bb:bb:bb"}},
                       host_neighbour=[{"dev": "popek-ex", "lladdr": "fa:16:3e:bb:bb:bb", "state": "STALE"}])
    said = diagnosis.fip_findings(facts)
    assert "aussi portée par qrouter-b" in said[0]
    assert "fa:16:3e:bb:bb:bb (qrouter-b)" in said[1] and "périmée" in said[1]


def test_a_missing_dnat_and_a_stale_router_entry_are_named():
    said = diagnosis.fip_findings(_fip_facts(dnat=False, router_pings_fixed=False,
                                             router_neighbour=[{"lladdr": "fa:16:3e:00:00:01"}]))
    assert any("DNAT" in s for s in said)
    assert any("entrée ARP du routeur périmée" in s for s in said)
    assert any("ne répond pas au ping depuis le routeur" in s for s in said)


def test_a_sound_path_says_where_the_loss_is_left():
    said = diagnosis.fip_findings(_fip_facts())
    assert said == ["10.78.0.9 répond au ping depuis le routeur, qui porte l'IP flottante et sa règle DNAT : "
                    "la perte est entre cet hôte et la passerelle du routeur"]
    assert diagnosis.fip_findings({}) == []


# recorded on the embedded cloud (ovs-appctl dpctl/dump-conntrack): a ping -e 4242 that kept running while the
# ICMP rule was removed and added again (marked 1, dropped while it ran), and a ping that passed
OVS_MARKED = ("icmp,orig=(src=198.51.100.1,dst=10.99.7.23,id=4242,type=8,code=0),reply=(src=10.99.7.23,"
              "dst=198.51.100.1,id=4242,type=0,code=0),id=0,zone=2,status=0,mark=1")
OVS_PASSED = ("icmp,orig=(src=198.51.100.1,dst=10.99.7.23,id=24280,type=8,code=0),reply=(src=10.99.7.23,"
              "dst=198.51.100.1,id=24280,type=0,code=0),id=0,zone=2,status=0")


def test_ovs_findings_name_a_marked_icmp_connection_and_a_dropping_flow():
    facts = {"ovs_fixed": "10.99.7.23", "ovs_conntrack": [OVS_MARKED, OVS_PASSED],
             "ovs_icmp_flows": ["recirc_id(0x3),in_port(5),eth_type(0x0800),ipv4(src=198.51.100.1,dst=10.99.7.23,"
                                "proto=1,frag=no), packets:12, bytes:1176, used:0.4s, actions:drop"]}
    said = diagnosis.ovs_findings(facts, "198.51.100.1")
    assert len(said) == 2
    assert "garde 1 connexion(s) ICMP vers 10.99.7.23 marquée(s) invalide(s)" in said[0] and "4242" in said[0]
    assert "conntrack du noyau" in said[0]
    assert said[1] == ("le datapath d'Open vSwitch a 1 flux ICMP vers 10.99.7.23 qui jette(nt) les paquets "
                       "(dernier usage : 0.4s)")
    assert diagnosis.ovs_findings(facts, "192.0.2.9") == [said[1]]  # another source's marks are not ours
    assert diagnosis.ovs_findings({"ovs_fixed": "10.99.7.23", "ovs_conntrack": [OVS_PASSED], "ovs_icmp_flows": []}) == []
    assert diagnosis.ovs_findings({}) == []


def test_ovs_facts_keep_the_fixed_address_entries_only(monkeypatch):
    other = OVS_PASSED.replace("10.99.7.23", "10.99.7.40")
    outputs = {"dpctl/dump-conntrack": "\n".join([OVS_MARKED, other]),
               "dpctl/dump-flows": "ipv4(src=198.51.100.1,dst=10.99.7.23,proto=1,frag=no), actions:3\n"
                                   "ipv4(src=198.51.100.1,dst=10.99.7.23,proto=6,frag=no), actions:3\n"
                                   "ipv4(src=198.51.100.1,dst=10.99.7.230,proto=1,frag=no), actions:drop"}
    monkeypatch.setattr(diagnosis.subprocess, "run", lambda argv, **kw: diagnosis.subprocess.CompletedProcess(
        argv, 0, outputs[argv[-1]], ""))
    facts = diagnosis.ovs_facts("/x/ovs-vswitchd.ctl", "10.99.7.23")
    assert facts["ovs_conntrack"] == [OVS_MARKED] and len(facts["ovs_icmp_flows"]) == 1
    assert diagnosis.ovs_facts(None, "10.99.7.23") == {}


def test_an_icmp_rule_not_yet_in_the_ports_flows_is_named_first():
    facts = {"ovs_fixed": "10.99.7.23", "ovs_conntrack": [OVS_MARKED], "ovs_icmp_flows": [],
             "ovs_port_icmp_rule_flows": []}
    said = diagnosis.ovs_findings(facts)
    assert said[0].startswith("aucun flux OpenFlow de règle ICMP pour le port de 10.99.7.23 (table 82")
    assert "n'avait pas (encore) appliqué la règle ICMP" in said[0] and "ct_mark=1" in said[1]
    facts["ovs_port_icmp_rule_flows"] = ["priority=77,ct_state=+new-est,icmp,reg5=0x12 actions=ct(commit)"]
    assert not any("aucun flux" in s for s in diagnosis.ovs_findings(facts))


def test_port_icmp_flows_reads_the_ports_rule_table(monkeypatch):
    # recorded: `ovs-ofctl -O OpenFlow13 show` and `dump-flows table=82,reg5=18` on the embedded cloud
    show = " 18(tapca850a11-24): addr:fe:16:3e:b1:54:58\n 19(tapffffffff-00): addr:fe:16:3e:00:00:01\n"
    flows = ("OFPST_FLOW reply (OF1.3) (xid=0x6):\n"
             " cookie=0x6c, duration=17.6s, table=82, n_packets=1, n_bytes=98, priority=77,ct_state=+new-est,icmp,"
             "reg5=0x12 actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:18,resubmit(,92)\n"
             " cookie=0x6c, duration=17.6s, table=82, n_packets=0, n_bytes=0, priority=77,ct_state=+new-est,tcp,"
             "reg5=0x12,tp_dst=22 actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:18,resubmit(,92)\n")
    seen = []

    def ofctl(argv, **kw):
        seen.append(argv)
        return diagnosis.subprocess.CompletedProcess(argv, 0, show if "show" in argv else flows, "")
    monkeypatch.setattr(diagnosis.subprocess, "run", ofctl)
    got = diagnosis.port_icmp_flows("/c/ovs/popek-int.mgmt", "ca850a11-2453-46ff-8430-bd213c9142a2")
    assert len(got) == 1 and ",icmp," in got[0]
    assert seen[-1][-1] == "table=82,reg5=18"
    assert diagnosis.port_icmp_flows("/c/ovs/popek-int.mgmt", "0000aaaa-0000") is None  # not a port of this switch
    assert diagnosis.port_icmp_flows(None, "ca850a11") is None


PANIC_CONSOLE = (__import__("pathlib").Path(__file__).parent / "data" / "console_tcg_panic.txt").read_text()


def test_a_kernel_panic_is_found_with_its_oops_line_in_a_real_console():
    """The console of a Debian 13 guest under QEMU 7.2 TCG (2 vCPUs) that panicked 12 s into its boot."""
    panic = diagnosis.kernel_panic(PANIC_CONSOLE)
    assert panic == diagnosis.Panic(panic="Kernel panic - not syncing: Fatal exception in interrupt",
                                    oops="Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
    assert panic.emulator()
    message = diagnosis.panic_message(panic)
    assert "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI" in message and "QEMU TCG sans KVM" in message
    assert "les services du cloud ne sont pas en cause" in message


def test_only_the_exact_panic_line_counts():
    assert diagnosis.kernel_panic(BOOT + LEASE + METADATA + READY) is None
    oops_only = "\n".join(line for line in PANIC_CONSOLE.splitlines() if "Kernel panic" not in line)
    assert diagnosis.kernel_panic(oops_only) is None  # an Oops the kernel survives is no panic
    bare = diagnosis.kernel_panic("[    3.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    assert bare.oops is None and not bare.emulator()
    assert "QEMU" not in diagnosis.panic_message(bare)


def test_a_panicked_guest_stops_the_wait_at_once():
    got, t = run(lambda t: BOOT + (PANIC_CONSOLE if t > 10 else ""), kind="cloud-init")
    assert isinstance(got, diagnosis.Unreachable) and got.component == "guest-panic"
    assert got.panic.oops == "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI" and t <= 14


def test_no_lease_on_a_subnet_whose_dhcp_is_off_names_the_subnet_not_the_agent():
    # the run's subnet updated to enable_dhcp False (API) before the guests boot: no DHCP server answers by design;
    # "agent DHCP ?" blamed a healthy agent, and the tiny image's hard reboot (component "dhcp") cost a second wait
    off = "DHCP désactivé dans Neutron sur le sous-réseau popek-x-subnet (10.78.0.0/24) de l'instance"
    got, t = run(lambda t: BOOT + NO_LEASE, dhcp_disabled=off, health="nova-compute ne donne plus signe de vie")
    assert got.component == "subnet-dhcp" and off in str(got) and "pas de bail DHCP" in str(got)
    assert "agent DHCP ?" not in str(got)
    assert t <= diagnosis.DHCP_GRACE["tiny"] + 4


def test_a_lease_on_a_subnet_said_without_dhcp_is_not_blamed_on_it():
    # a guest that has its address (static, config drive) is past the DHCP step: the subnet's flag says nothing
    got, t = run(lambda t: BOOT + LEASE + METADATA + READY, ssh=lambda t: "ok" if t > 30 else "no-answer",
                 dhcp_disabled="DHCP désactivé")
    assert not isinstance(got, diagnosis.Unreachable)


class _Subnet:
    def __init__(self, name, cidr, dhcp, version=4):
        self.id, self.name, self.cidr, self.is_dhcp_enabled, self.ip_version = name + "-id", name, cidr, dhcp, version


class _Net:
    def __init__(self, subnets, fail=False):
        self.subnets, self.fail = subnets, fail

    def get_subnet(self, subnet_id):
        if self.fail:
            raise RuntimeError("403")
        return self.subnets[subnet_id]


class _Conn:
    def __init__(self, subnets, fail=False):
        self.network = _Net(subnets, fail)


class _Port:
    def __init__(self, *subnet_ids):
        self.fixed_ips = [{"subnet_id": s, "ip_address": "10.78.0.9"} for s in subnet_ids]


def test_subnets_without_dhcp_says_which_subnet_has_it_off():
    subnets = {"a": _Subnet("popek-x-subnet", "10.78.0.0/24", False), "b": _Subnet("v6", "fd00::/64", False, 6)}
    said = diagnosis.subnets_without_dhcp(_Conn(subnets), _Port("a", "b"))
    assert "popek-x-subnet (10.78.0.0/24)" in said and "fd00" not in said and "enable_dhcp False" in said
    assert diagnosis.subnets_without_dhcp(_Conn({"a": _Subnet("s", "10.0.0.0/24", True)}), _Port("a")) is None
    assert diagnosis.subnets_without_dhcp(_Conn(subnets, fail=True), _Port("a")) is None
    assert diagnosis.subnets_without_dhcp(_Conn(subnets), _Port()) is None
