"""A foreign OpenFlow flow in the embedded cloud's bridges (one no agent wrote: not the OVS agent's cookie) is named
as the failing component, with its text, instead of blaming DHCP, the metadata service or L3/NAT (forged
`ovs-ofctl dump-flows` output and agent log lines, in the formats seen on the live embedded cloud)."""
from popek.checks.cloud import diagnosis

from test_diagnosis import BOOT, LEASE, METADATA, NO_LEASE, READY, Clock

#: neutron-openvswitch-agent's own line (ofswitch.cleanup_flows), as logged on the embedded cloud
LOG = ("2026-12-07 09:42:14.380 19790 INFO neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native.ofswitch "
       "[None req-26ed95c8 - - - - - -] Reserved cookies for popek-int: {16090543154770756775}\n"
       "2026-12-07 09:42:14.409 19790 INFO neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native.ofswitch "
       "[None req-26ed95c8 - - - - - -] Reserved cookies for popek-ex: {2995872833460699515}\n")
#: the agent's cookies of those lines, as ovs-ofctl prints them
INT, EX = "0xdf4d17bf773444a7", "0x29937a781eab017b"
INT_FLOWS = (
    "OFPST_FLOW reply (OF1.3) (xid=0x2):\n"
    f" cookie={INT}, duration=109.190s, table=0, n_packets=0, n_bytes=0, priority=65535,dl_vlan=4095 actions=drop\n"
    f" cookie={INT}, duration=107.208s, table=0, n_packets=3, n_bytes=210, priority=3,in_port=1,"
    "vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4098->vlan_vid,goto_table:58\n"
    f" cookie={INT}, duration=109.190s, table=0, n_packets=80, n_bytes=9000, priority=0 actions=goto_table:58\n"
    f" cookie={INT}, duration=109.100s, table=71, n_packets=0, n_bytes=0, reset_counts priority=0 actions=drop\n")
NORMAL = " cookie=0x0, duration=31.002s, table=0, n_packets=57, n_bytes=5130, priority=65535 actions=NORMAL\n"
#: the dumps when the watch began: the agent's flows only
START = {"popek-int": INT_FLOWS, "popek-ex": ""}
EX_FLOWS = (
    f" cookie={EX}, duration=140.693s, table=0, n_packets=11, n_bytes=930, priority=4,in_port=1,dl_vlan=2 "
    "actions=pop_vlan,NORMAL\n"
    f" cookie={EX}, duration=142.658s, table=0, n_packets=3, n_bytes=210, priority=0 actions=NORMAL\n")


def test_the_agents_cookies_are_read_from_its_own_log_line():
    cookies = diagnosis.agent_cookies(LOG + LOG.replace("16090543154770756775", "7"))
    assert cookies == {"popek-int": {7}, "popek-ex": {2995872833460699515}}  # the last line of each bridge
    assert f"{16090543154770756775:#x}" == INT


def test_the_cookies_of_an_agent_gone_are_not_its_successors():
    newer = LOG.replace(" 19790 ", " 27221 ").replace("16090543154770756775", "7").splitlines()[0] + "\n"
    assert diagnosis.agent_cookies(LOG + newer, alive=lambda pid: pid == 27221) == {"popek-int": {7}}
    assert diagnosis.agent_cookies(LOG + newer, alive=lambda pid: pid == 19790) == {"popek-ex": {2995872833460699515}}


def test_a_dump_is_read_with_the_default_priority_and_without_its_counters():
    flows = diagnosis.parse_flows(INT_FLOWS + " cookie=0x2a, duration=1s, table=3, n_packets=0, n_bytes=0, "
                                              "ip,nw_dst=10.0.0.5 actions=drop\n")
    assert [(f["table"], f["priority"], f["packets"]) for f in flows] == [(0, 65535, 0), (0, 3, 3), (0, 0, 80),
                                                                        (71, 0, 0), (3, 32768, 0)]
    assert flows[1]["match"] == "in_port=1,vlan_tci=0x0000/0x1fff"
    assert flows[3]["text"] == f"cookie={INT}, table=71, priority=0 actions=drop"
    assert flows[4]["match"] == "ip,nw_dst=10.0.0.5" and flows[4]["cookie"] == 42


def test_a_normal_flow_in_table_0_is_named_with_its_text():
    said = diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + NORMAL, "popek-ex": EX_FLOWS},
                                           diagnosis.agent_cookies(LOG), before=START)
    assert not isinstance(said, diagnosis.Suspect)
    assert ("un flux OpenFlow étranger (cookie 0x0, table 0, priorité 65535, tout paquet, actions=NORMAL, "
            "57 paquet(s) pris) dans popek-int, écrit par aucun agent") in said
    assert "« cookie=0x0, table=0, priority=65535 actions=NORMAL »" in said
    assert f"popek-int : {INT}" in said and "popek-ex" not in said  # the agent's cookie of that bridge only


def test_the_agents_own_flows_are_not_foreign():
    assert diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS, "popek-ex": EX_FLOWS},
                                           diagnosis.agent_cookies(LOG)) is None


#: what Neutron's OVS firewall left with the cookie of a rewrite (update_cookie_context), seen live at 09:54
FIREWALL_UPDATE = (" cookie=0x41b9534ee9c82d25, duration=71.884s, table=82, n_packets=4, n_bytes=0, priority=73,"
                   "ct_state=+est-rel-rpl,ip,reg6=0x3,nw_src=10.78.0.83 actions=conjunction(38,1/2)\n")


def test_the_firewalls_cookie_of_a_rewrite_is_not_foreign_in_its_tables_only():
    cookies = diagnosis.agent_cookies(LOG)
    assert diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + FIREWALL_UPDATE}, cookies, "popek-int") is None
    elsewhere = FIREWALL_UPDATE.replace("table=82", "table=0")
    assert "cookie 0x41b9534ee9c82d25, table 0" in diagnosis.foreign_flow_findings(
        {"popek-int": INT_FLOWS + elsewhere}, cookies, "popek-int")
    unstamped = FIREWALL_UPDATE.replace("0x41b9534ee9c82d25", "0x0")  # no agent writes cookie 0, even there
    assert "cookie 0x0, table 82" in diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + unstamped}, cookies,
                                                                      "popek-int")


def test_nothing_is_told_when_the_agent_restarted_since_its_log_line():
    # a new agent reserved new cookies and has not logged them yet: none of the dump's flows carries the logged
    # ones, and every flow would look foreign
    restarted = INT_FLOWS.replace(INT, "0xc0466e2ee34c9218")
    assert diagnosis.foreign_flows(restarted, diagnosis.agent_cookies(LOG)["popek-int"]) is None
    assert diagnosis.foreign_flow_findings({"popek-int": restarted + NORMAL}, diagnosis.agent_cookies(LOG)) is None
    assert diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + NORMAL}, {}) is None
    assert diagnosis.foreign_flow_findings({"popek-int": None}, diagnosis.agent_cookies(LOG)) is None


def test_a_foreign_flow_that_took_no_packet_is_only_a_note():
    idle = NORMAL.replace("n_packets=57", "n_packets=0").replace("table=0", "table=0").replace(
        "priority=65535", "priority=1,ip,nw_dst=203.0.113.9")
    said = diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + idle}, diagnosis.agent_cookies(LOG))
    assert isinstance(said, diagnosis.Suspect) and "sans paquet pris" in said and "nw_dst=203.0.113.9" in said


def test_a_drop_in_popek_ex_is_named_in_its_bridge():
    drop = " cookie=0x0, duration=9.1s, table=0, n_packets=12, n_bytes=840, priority=65535 actions=drop\n"
    said = diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS, "popek-ex": EX_FLOWS + drop},
                                           diagnosis.agent_cookies(LOG), before=START)
    assert not isinstance(said, diagnosis.Suspect)
    assert "(cookie 0x0, table 0, priorité 65535, tout paquet, actions=drop, 12 paquet(s) pris) dans popek-ex" in said


def watch(consoles, flows, fixed=True, health=None):
    clock = Clock()
    obs = diagnosis.Observer(ssh=lambda: "no-answer", console=lambda: consoles(clock.now),
                             status=lambda: ("ACTIVE", ""), fixed_answers=lambda: fixed, address="198.51.100.42",
                             health=lambda: health, foreign_flows=lambda: flows)
    try:
        diagnosis.watch(obs, 600, clock=clock, sleep=clock.sleep)
    except diagnosis.Unreachable as exc:
        return exc, clock.now
    raise AssertionError("SSH never answers: watch must conclude")


FOUND = diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + NORMAL}, diagnosis.agent_cookies(LOG), before=START)


def test_ssh_lost_behind_a_normal_flow_is_not_blamed_on_l3():
    exc, t = watch(lambda t: BOOT + LEASE + METADATA + READY, FOUND)
    assert exc.component == "ovs-flow" and "L3/NAT" not in str(exc), str(exc)
    assert str(exc).startswith("l'IP flottante 198.51.100.42 ne répond pas en SSH : un flux OpenFlow étranger "
                               "(cookie 0x0, table 0, priorité 65535")
    assert t <= diagnosis.SSH_GRACE + 5


def test_an_idle_foreign_flow_is_a_note_on_the_l3_verdict():
    idle = diagnosis.Suspect("un flux OpenFlow étranger (…) (sans paquet pris)")
    exc, _ = watch(lambda t: BOOT + LEASE + METADATA + READY, idle)
    assert exc.component == "l3" and str(exc).endswith("peut-être aussi : " + idle), str(exc)


def test_no_lease_behind_a_foreign_flow_is_not_blamed_on_dhcp():
    exc, _ = watch(lambda t: BOOT + NO_LEASE, FOUND)
    assert exc.component == "ovs-flow" and "agent DHCP" not in str(exc)
    assert str(exc).startswith("pas de bail DHCP : l'instance a démarré")
    exc, _ = watch(lambda t: BOOT + NO_LEASE, FOUND, health="neutron-openvswitch-agent hors service")
    assert exc.component == "health"  # a dead agent named by the health records comes first


def test_no_metadata_behind_a_foreign_flow_is_not_blamed_on_the_metadata_service():
    exc, _ = watch(lambda t: BOOT + LEASE, FOUND)
    assert exc.component == "ovs-flow" and "le service de metadata ne répond pas" not in str(exc), str(exc)


def test_the_live_reader_takes_the_cookies_from_the_agents_log(tmp_path, monkeypatch):
    log = tmp_path / "neutron-openvswitch-agent.log"
    log.write_text("x" * 1000 + "\n" + LOG)
    asked = []

    def dump(argv, timeout=10):
        asked.append(argv)
        return {"unix:/s/popek-int.mgmt": INT_FLOWS + NORMAL, "unix:/s/popek-ex.mgmt": EX_FLOWS}[argv[-1]]

    monkeypatch.setattr(diagnosis, "_stdout", dump)
    bridges = {"popek-int": "/s/popek-int.mgmt", "popek-ex": "/s/popek-ex.mgmt"}
    said = diagnosis.ovs_foreign_flows(bridges, str(log), "popek-int", alive=lambda pid: True)
    assert "dans popek-int, écrit par aucun agent" in said
    assert [a[:4] for a in asked] == [["ovs-ofctl", "-O", "OpenFlow13", "dump-flows"]] * 2
    assert diagnosis.ovs_foreign_flows(bridges, str(log), limit=len(LOG) // 2,  # popek-int's line cut off
                                       alive=lambda pid: True) is None
    assert diagnosis.ovs_foreign_flows(bridges, str(log), alive=lambda pid: False) is None  # that agent is gone
    assert diagnosis.ovs_foreign_flows(bridges, str(tmp_path / "absent.log")) is None
    assert diagnosis.ovs_foreign_flows({}, str(log)) is None


class _Guest:
    address, alive, server = "198.51.100.42", staticmethod(lambda: True), None


def test_ssh_that_passes_without_its_rule_names_a_foreign_flow(monkeypatch):
    from faults import scenario_verdict
    from popek.checks.cloud import guest, traffic
    from popek.steps import cloud_dataplane

    monkeypatch.setattr(traffic, "blocked_each", lambda probes, alive: {"ssh": False, "ping": True})
    monkeypatch.setattr(guest, "embedded_flow_dumps", lambda: START)
    asked = []
    monkeypatch.setattr(guest, "embedded_foreign_flows", lambda before, path: asked.append(before) or FOUND)
    verdict, message = scenario_verdict(lambda: cloud_dataplane.both_blocked(None, _Guest(), 3))
    assert verdict == "ÉCHEC", message
    assert message.startswith("SSH passe toujours ; un flux OpenFlow étranger (cookie 0x0"), message
    assert asked == [START]  # the counters read before the probes
    monkeypatch.setattr(guest, "embedded_foreign_flows", lambda before, path: None)  # none (or not the embedded cloud): as before
    assert scenario_verdict(lambda: cloud_dataplane.both_blocked(None, _Guest(), 3)) == ("ÉCHEC", "SSH passe toujours")
    idle = diagnosis.Suspect("un flux OpenFlow étranger (…) (sans paquet pris)")
    monkeypatch.setattr(guest, "embedded_foreign_flows", lambda before, path: idle)
    said = scenario_verdict(lambda: cloud_dataplane.both_blocked(None, _Guest(), 3))[1]
    assert said == f"SSH passe toujours ; peut-être : {idle}"


# F4: a foreign flow is conclusive only when it took packets during the watch and can take the guest's packets

#: the guest's way (guest.flow_path): its port's MAC and IP, its floating IP, the metadata address, the OpenFlow
#: numbers of its tap and router ports on popek-int and their local VLAN
PATH = {"mac": {"fa:16:3e:00:00:01", "fa:16:3e:00:00:fe"}, "ip": {"10.78.0.5", "10.78.0.1", "198.51.100.42",
                                                                  "169.254.169.254"},
        "port": {"popek-int": {"6", "8"}}, "vlan": {1}}
OTHER_MAC = " cookie=0x0, duration=3600s, table=0, n_packets=3, n_bytes=210, priority=10,dl_dst=fa:16:3e:00:00:99 actions=drop\n"


def findings(now, start, path=PATH):
    return diagnosis.foreign_flow_findings({"popek-int": now}, diagnosis.agent_cookies(LOG), "popek-int",
                                           before={"popek-int": start}, path=lambda: path)


def test_a_flow_for_another_mac_is_only_a_note_even_when_it_takes_packets():
    said = findings(INT_FLOWS + OTHER_MAC, INT_FLOWS)  # added during the watch, 3 packets since: not this guest's
    assert isinstance(said, diagnosis.Suspect), said
    assert "dl_dst=fa:16:3e:00:00:99" in said and "ne vise pas le chemin de cette instance" in said
    assert "ne sont pas en cause" not in said
    mine = OTHER_MAC.replace(":99", ":01")  # the same flow for the guest's own MAC
    said = findings(INT_FLOWS + mine, INT_FLOWS)
    assert not isinstance(said, diagnosis.Suspect) and "les agents du cloud ne sont pas en cause" in said, said


def test_a_flow_whose_packets_did_not_grow_during_the_watch_is_only_a_note():
    said = findings(INT_FLOWS + NORMAL, INT_FLOWS + NORMAL)  # 57 packets at the start, 57 at the verdict
    assert isinstance(said, diagnosis.Suspect) and "aucun paquet pris pendant l'observation" in said, said
    grew = findings(INT_FLOWS + NORMAL, INT_FLOWS + NORMAL.replace("n_packets=57", "n_packets=50"))
    assert not isinstance(grew, diagnosis.Suspect), grew
    unknown = diagnosis.foreign_flow_findings({"popek-int": INT_FLOWS + NORMAL}, diagnosis.agent_cookies(LOG))
    assert isinstance(unknown, diagnosis.Suspect) and "sans relevé au début de l'observation" in unknown
    assert isinstance(findings(INT_FLOWS + NORMAL, None), diagnosis.Suspect)  # the start's dump unreadable


def flow(match):
    return {"match": match}


def test_what_names_the_guests_way():
    assert diagnosis.on_path(flow(""), None, "popek-int")  # every packet: this guest's too, whatever its way
    assert diagnosis.on_path(flow("tcp,tp_dst=22"), None, "popek-int")  # every guest's SSH
    assert not diagnosis.on_path(flow("ip,nw_dst=10.78.0.9"), PATH, "popek-int")
    assert diagnosis.on_path(flow("ip,nw_dst=10.78.0.0/24"), PATH, "popek-int")
    assert diagnosis.on_path(flow("ip,nw_dst=169.254.169.254,tp_dst=80"), PATH, "popek-int")
    assert diagnosis.on_path(flow("in_port=6"), PATH, "popek-int")
    assert not diagnosis.on_path(flow("in_port=6"), PATH, "popek-ex")  # another bridge's port 6
    assert diagnosis.on_path(flow("reg5=0x8,ip"), PATH, "popek-int")
    assert diagnosis.on_path(flow("dl_vlan=1"), PATH, "popek-ex") and diagnosis.on_path(flow("reg6=0x1"), PATH, "x")
    assert not diagnosis.on_path(flow("vlan_vid=0x1002/0x1fff"), PATH, "popek-int")  # VLAN 2: another network
    assert not diagnosis.on_path(flow("dl_dst=fa:16:3e:00:00:01"), None, "popek-int")  # unknown way: not proven


#: `ovs-ofctl show` and the OVS firewall's table-60 flows of popek-int, as read on the embedded cloud at 11:07
SHOW = (" 1(int-popek-ex): addr:22:89:cb:ee:37:1c\n 6(tapa619501f-56): addr:00:00:00:00:00:00\n"
        " 7(tap6210b318-3d): addr:00:00:00:00:00:00\n 8(qr-3bda8674-1a): addr:00:00:00:00:00:00\n")
TABLE_60 = (" cookie=0xc2047a7510971c37, duration=281.937s, table=60, n_packets=19, n_bytes=2852, priority=100,in_port=6 "
            "actions=set_field:0x6->reg5,set_field:0x1->reg6,resubmit(,73)\n"
            " cookie=0xc2047a7510971c37, duration=281.937s, table=60, n_packets=0, n_bytes=0, priority=100,in_port=7 "
            "actions=set_field:0x7->reg5,set_field:0x2->reg6,resubmit(,73)\n")


def test_the_ports_and_local_vlans_of_the_way_are_read_from_the_switch():
    ports = diagnosis.ofports(SHOW, ["a619501f-5678-4abc", "3bda8674-1a00-4def", "ffffffff-0000"])
    assert ports == {"6", "8"}
    assert diagnosis.local_vlans(TABLE_60, ports) == {1}
    assert diagnosis.local_vlans(INT_FLOWS, {"1"}) == {2}  # the patch port's flow: set_field:4098->vlan_vid


def test_no_metadata_with_a_dead_metadata_agent_names_the_agent_not_a_foreign_flow():
    dead = "neutron-metadata-agent hors service"
    exc, _ = watch(lambda t: BOOT + LEASE, FOUND, health=dead)
    assert exc.component == "health" and dead in str(exc), str(exc)
    assert str(exc).startswith("le service de metadata ne répond pas (169.254.169.254)")
    idle = findings(INT_FLOWS + OTHER_MAC, INT_FLOWS)  # another MAC's flow: a note on the metadata verdict
    exc, _ = watch(lambda t: BOOT + LEASE, idle)
    assert exc.component == "metadata" and "peut-être aussi : un flux OpenFlow étranger" in str(exc), str(exc)


def test_the_guests_way_is_read_from_neutron_when_asked(monkeypatch):
    from types import SimpleNamespace as NS

    from popek.checks.cloud import guest, network

    port = NS(id="a619501f-5678", mac_address="fa:16:3e:00:00:01", fixed_ips=[{"ip_address": "10.78.0.5"}],
              network_id="n1", device_owner="compute:nova", device_id="s")
    router = NS(id="3bda8674-1a00", mac_address="fa:16:3e:00:00:fe", fixed_ips=[{"ip_address": "10.78.0.1"}],
                network_id="n1", device_owner="network:router_interface", device_id="r1")
    gateway = NS(id="28906940-c5", mac_address="fa:16:3e:00:00:aa", fixed_ips=[{"ip_address": "198.51.100.2"}],
                 network_id="ext", device_owner="network:router_gateway", device_id="r1")
    asked = []

    def ports(**query):
        asked.append(query)
        return [gateway] if "device_id" in query else [port, router]

    conn = NS(network=NS(ports=ports))
    monkeypatch.setattr(network, "server_port", lambda conn, server: port)
    monkeypatch.setattr(guest, "_embedded_bridges", lambda: ({}, None, None))
    read = guest.flow_path(conn, None, "198.51.100.42")
    assert asked == []  # nothing asked until a foreign flow took packets
    path = read()
    assert path["mac"] == {"fa:16:3e:00:00:01", "fa:16:3e:00:00:fe", "fa:16:3e:00:00:aa"}
    assert path["ip"] == {"10.78.0.5", "10.78.0.1", "198.51.100.2", "198.51.100.42", "169.254.169.254"}
    assert asked == [{"network_id": "n1"}, {"device_id": "r1", "device_owner": "network:router_gateway"}]
