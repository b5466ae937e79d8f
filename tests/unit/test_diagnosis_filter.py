"""Why traffic a security group should refuse gets in (secgroups.filter_findings): a port whose security is off,
or a rule of its groups that admits the probe. Pure logic on the shapes Neutron's API shows."""
import types

from popek.checks.cloud import secgroups


def rule(**fields):
    base = {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None, "description": "", "id": "r"}
    return {**base, **fields}


EGRESS = [rule(direction="egress", id="e4"), rule(direction="egress", ethertype="IPv6", id="e6")]


def test_a_port_without_security_is_named():
    ports = [{"id": "p1", "port_security_enabled": False, "security_group_ids": []}]
    found = secgroups.filter_findings(ports, lambda g: [], "tcp", 22)
    assert found == ["la sécurité de port est désactivée sur le port p1 de l'instance (port_security_enabled=False) : "
                     "aucun groupe de sécurité ne le filtre"]


def test_a_group_with_only_egress_admits_nothing():
    ports = [{"id": "p1", "port_security_enabled": True, "security_group_ids": ["g"]}]
    assert secgroups.filter_findings(ports, lambda g: EGRESS, "tcp", 22) == []
    assert secgroups.filter_findings(ports, lambda g: EGRESS, "icmp") == []


def test_an_allow_all_rule_admits_ssh_and_ping():
    ports = [{"id": "p1", "port_security_enabled": True, "security_group_ids": ["g"]}]
    rules = EGRESS + [rule(remote_ip_prefix="0.0.0.0/0", id="all")]
    assert len(secgroups.filter_findings(ports, lambda g: rules, "tcp", 22)) == 1
    found = secgroups.filter_findings(ports, lambda g: rules, "icmp")
    assert found and "règle all" in found[0] and "tout protocole" in found[0] and "0.0.0.0/0" in found[0]


def test_rules_that_do_not_match_the_probe_are_left_out():
    rules = [rule(protocol="tcp", port_range_min=80, port_range_max=80, id="web"),
             rule(protocol="udp", id="udp"),
             rule(protocol="tcp", ethertype="IPv6", id="v6"),
             rule(protocol="icmp", id="icmp")]
    assert [r["id"] for r in secgroups.admitting_rules(rules, "tcp", 22)] == []
    assert [r["id"] for r in secgroups.admitting_rules(rules, "icmp")] == ["icmp"]
    assert [r["id"] for r in secgroups.admitting_rules([rule(protocol="6", port_range_min=20, port_range_max=30,
                                                             id="n")], "tcp", 22)] == ["n"]


def test_a_remote_group_rule_admits_only_its_members():
    rules = [rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id="first", id="rg")]
    assert secgroups.admitting_rules(rules, "tcp", 22) == []
    assert secgroups.admitting_rules(rules, "tcp", 22, ["other"]) == []
    found = secgroups.admitting_rules(rules, "tcp", 22, ["first"])
    assert [r["id"] for r in found] == ["rg"]
    assert "les membres du groupe first" in secgroups.rule_said(found[0])


class _Network:
    def __init__(self, ports, rules, fail=False):
        self._ports, self._rules, self.fail = ports, rules, fail

    def ports(self, device_id):
        if self.fail:
            raise RuntimeError("neutron down")
        return self._ports.get(device_id, [])

    def security_group_rules(self, security_group_id):
        return self._rules.get(security_group_id, [])


def _port(pid, enabled, groups):
    return types.SimpleNamespace(id=pid, is_port_security_enabled=enabled, security_group_ids=groups)


def _rule(**fields):
    r = rule(**fields)
    return types.SimpleNamespace(ether_type=r["ethertype"], remote_group_id=r["remote_group_id"], id=r["id"],
                                 **{k: r[k] for k in ("direction", "protocol", "port_range_min", "port_range_max",
                                                       "remote_ip_prefix", "description")})


def test_filter_note_reads_the_ports_and_the_sources_groups():
    net = _Network({"srv2": [_port("p2", True, ["g2"])], "srv1": [_port("p1", True, ["first"])]},
                   {"g2": [_rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_group_id="first",
                                 id="rg")]})
    conn = types.SimpleNamespace(network=net)
    assert secgroups.filter_note(conn, types.SimpleNamespace(id="srv2"), "tcp", 22) == ""
    note = secgroups.filter_note(conn, types.SimpleNamespace(id="srv2"), "tcp", 22, types.SimpleNamespace(id="srv1"))
    assert note.startswith(" ; le port p2 est dans le groupe g2") and "(règle rg)" in note


def test_filter_note_off_port_and_unreadable_neutron():
    conn = types.SimpleNamespace(network=_Network({"s": [_port("p", False, [])]}, {}))
    assert "sécurité de port est désactivée sur le port p" in secgroups.filter_note(conn, types.SimpleNamespace(id="s"), "icmp")
    assert secgroups.filter_note(types.SimpleNamespace(network=_Network({}, {}, fail=True)), types.SimpleNamespace(id="s"), "tcp", 22) == ""
    assert secgroups.filter_note(None, None, "tcp", 22) == ""


def test_a_prefix_rule_is_named_only_when_its_prefix_holds_the_source():
    # F6: tcp 22 from 192.0.2.0/24 does not admit this host (172.24.4.1 toward the floating IP)
    ports = [{"id": "p1", "port_security_enabled": True, "security_group_ids": ["g"]}]
    rules = EGRESS + [rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="192.0.2.0/24",
                           id="lab")]
    assert secgroups.filter_findings(ports, lambda g: rules, "tcp", 22, sources=["172.24.4.1"]) == []
    found = secgroups.filter_findings(ports, lambda g: rules, "tcp", 22, sources=["192.0.2.7"])
    assert len(found) == 1 and "depuis 192.0.2.0/24 (règle lab)" in found[0]
    # the source unknown (a NAT between): the rule is kept, as before
    assert len(secgroups.filter_findings(ports, lambda g: rules, "tcp", 22)) == 1
    # anywhere, a bare address, a prefix written without its mask
    assert [r["id"] for r in secgroups.admitting_rules(
        [rule(remote_ip_prefix="0.0.0.0/0", id="all"), rule(remote_ip_prefix="172.24.4.1", id="one"),
         rule(remote_ip_prefix="172.24.4.9/32", id="other"), rule(remote_ip_prefix="172.24.0.0/16", id="wide")],
        "tcp", 22, sources=["172.24.4.1"])] == ["all", "one", "wide"]


class _FipNetwork(_Network):
    def __init__(self, ports, rules, fips):
        super().__init__(ports, rules)
        self._fips = fips

    def ips(self, port_id):
        return [types.SimpleNamespace(floating_ip_address=a) for a in self._fips.get(port_id, [])]


def _fixed_port(pid, groups, *addresses):
    p = _port(pid, True, groups)
    p.fixed_ips = [{"subnet_id": "s", "ip_address": a} for a in addresses]
    return p


def test_filter_note_takes_the_hosts_address_toward_the_floating_ip(monkeypatch):
    rules = {"g": [_rule(protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="192.0.2.0/24",
                         id="lab"), _rule(protocol="icmp", remote_ip_prefix="172.24.4.0/24", id="ping")]}
    net = _FipNetwork({"srv": [_fixed_port("p", ["g"], "10.0.0.5")]}, rules, {"p": ["172.24.4.50"]})
    asked = []
    monkeypatch.setattr(secgroups, "_local_address_toward", lambda a: asked.append(a) or "172.24.4.1")
    conn = types.SimpleNamespace(network=net)
    assert secgroups.filter_note(conn, types.SimpleNamespace(id="srv"), "tcp", 22) == ""
    assert "(règle ping)" in secgroups.filter_note(conn, types.SimpleNamespace(id="srv"), "icmp")
    assert asked[0] == "172.24.4.50"


def test_the_source_is_unknown_behind_a_nat_and_a_servers_fixed_addresses_otherwise():
    server_ports = [_fixed_port("p", ["g"], "10.0.0.5")]
    public = types.SimpleNamespace(network=_FipNetwork({}, {}, {"p": ["151.101.0.50"]}))
    assert secgroups.source_addresses(public, server_ports, local_toward=lambda a: "192.168.1.10") == []
    assert secgroups.source_addresses(public, server_ports, local_toward=lambda a: "151.101.9.9") == ["151.101.9.9"]
    assert secgroups.source_addresses(public, server_ports, local_toward=lambda a: None) == []
    no_fip = types.SimpleNamespace(network=_FipNetwork({}, {}, {}))
    assert secgroups.source_addresses(no_fip, server_ports, local_toward=lambda a: a.replace(".5", ".1")) == ["10.0.0.1"]
    assert secgroups.source_addresses(no_fip, server_ports, [_fixed_port("q", [], "10.0.0.7")]) == ["10.0.0.7"]
