"""A host firewall that blocks the traffic between this host and a floating IP is named, not blamed on
Neutron: diagnosis.trace_drops reads `nft monitor trace` (recorded output of nft 1.0.6, this machine's),
and diagnosis.watch says "host-firewall" instead of "l3" when the observer's trace names a dropping chain."""
from popek.checks.cloud import diagnosis

from test_diagnosis import BOOT, LEASE, METADATA, READY, Clock

OWN = "popek-trace-4242"
#: recorded: a TCP SYN to :22 dropped by the owner's output rule, a ping that passed, and a packet of
#: another tracer's (id 11111111) dropped by a policy: only the packets of OWN's marking count
TRACE = f"""trace id 2bbd94ba inet {OWN} out packet: oif "popek-ex" ip saddr 198.51.100.1 ip daddr 198.51.100.42 ip protocol tcp ip length 60 tcp sport 53252 tcp dport 22 tcp flags == syn
trace id 2bbd94ba inet {OWN} out rule ip daddr 198.51.100.42 meta nftrace set 1 (verdict continue)
trace id 2bbd94ba inet {OWN} out policy accept 
trace id 2bbd94ba inet ownerfw output packet: oif "popek-ex" ip saddr 198.51.100.1 ip daddr 198.51.100.42 ip protocol tcp ip length 60 tcp dport 22 tcp flags == syn
trace id 2bbd94ba inet ownerfw output rule ip daddr 198.51.100.0/24 tcp dport 22 drop (verdict drop)
trace id 696b8214 inet {OWN} out packet: oif "popek-ex" ip saddr 198.51.100.1 ip daddr 198.51.100.42 ip protocol icmp icmp type echo-request
trace id 696b8214 inet {OWN} out policy accept 
trace id 696b8214 inet ownerfw output packet: oif "popek-ex" ip protocol icmp icmp type echo-request
trace id 696b8214 inet ownerfw output policy accept 
trace id 11111111 inet someone-else pre packet: iif "eth0" ip protocol udp
trace id 11111111 ip filter INPUT policy drop 
"""


def test_the_owners_dropping_rule_is_read_from_the_trace_and_only_for_popeks_packets():
    drops = diagnosis.trace_drops(TRACE, OWN)
    assert drops == [{"table": "inet ownerfw", "chain": "output",
                      "how": "rule ip daddr 198.51.100.0/24 tcp dport 22 drop (verdict drop)", "packet": "tcp"}]


def test_the_rules_counters_are_left_out_so_that_each_rule_is_named_once():
    text = (f"trace id aa inet {OWN} out packet: oif \"popek-ex\" ip protocol tcp\n"
            "trace id aa inet killswitch output rule ip daddr 198.51.100.0/24 counter packets 49 bytes 2940 drop (verdict drop)\n"
            f"trace id bb inet {OWN} out packet: oif \"popek-ex\" ip protocol icmp\n"
            "trace id bb inet killswitch output rule ip daddr 198.51.100.0/24 counter packets 50 bytes 3024 drop (verdict drop)\n")
    got = diagnosis.trace_drops(text, OWN)
    assert {d["how"] for d in got} == {"rule ip daddr 198.51.100.0/24 counter drop (verdict drop)"}
    assert [d["packet"] for d in got] == ["tcp", "icmp"]


def test_a_policy_drop_on_input_and_an_iptables_nft_reject_are_drops():
    text = (f"trace id aa inet {OWN} pre packet: iif \"popek-ex\" ip saddr 198.51.100.42 ip protocol icmp\n"
            f"trace id aa inet {OWN} pre policy accept \n"
            "trace id aa inet filter input policy drop \n"
            f"trace id bb inet {OWN} pre packet: iif \"popek-ex\" ip saddr 198.51.100.42 ip protocol tcp\n"
            "trace id bb ip filter INPUT rule meta l4proto tcp counter packets 0 bytes 0 reject (verdict reject)\n")
    got = diagnosis.trace_drops(text, OWN)
    assert [(d["table"], d["chain"], d["packet"]) for d in got] == [("inet filter", "input", "icmp"),
                                                                   ("ip filter", "INPUT", "tcp")]
    assert diagnosis.trace_drops(text.replace("drop", "accept").replace("reject", "accept"), OWN) == []


def _watch(host_firewall):
    clock = Clock()
    obs = diagnosis.Observer(ssh=lambda: "no-answer", console=lambda: BOOT + LEASE + METADATA + READY,
                             status=lambda: ("ACTIVE", ""), fixed_answers=lambda: True, address="198.51.100.42",
                             host_firewall=host_firewall)
    try:
        return diagnosis.watch(obs, 600, clock=clock, sleep=clock.sleep)
    except diagnosis.Unreachable as exc:
        return exc


def test_a_ready_guest_behind_the_hosts_own_firewall_names_the_host_not_l3():
    said = "le pare-feu de cet hôte (nftables/iptables, pas celui du cloud) jette … table inet ownerfw, chaîne output"
    got = _watch(lambda: said)
    assert got.component == "host-firewall" and "inet ownerfw" in str(got) and "L3" not in str(got)
    assert _watch(lambda: None).component == "l3"  # no dropping chain traced: the evidence of before


class _FakeNft:
    """host_firewall_drops' subprocesses, recorded: `nft -j list tables` lists `tables`, the monitor writes
    `trace` (with OWN as this process's table), every other command succeeds."""

    def __init__(self, trace, tables=()):
        import os
        self.trace, self.tables, self.ran = trace.replace(OWN, f"popek-trace-{os.getpid()}"), tables, []

    def stdout(self, argv, timeout=10):
        import json
        self.ran.append(argv)
        if argv[:3] == ["nft", "-j", "list"]:
            return json.dumps({"nftables": [{"metainfo": {}}] + [{"table": {"family": f, "name": n, "handle": 1}}
                                                                  for f, n in self.tables]})
        return "nftables v1.0.6"

    def run(self, argv, **kw):
        import subprocess
        self.ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    def popen(self, argv, stdout=None, **kw):
        import subprocess
        stdout.write(self.trace)

        class Monitor:
            def terminate(self): pass
            def wait(self, timeout=None): return 0
            def kill(self): pass
        return Monitor() if argv[:2] == ["nft", "monitor"] else subprocess.Popen(argv, stdout=stdout, **kw)


def _traced(monkeypatch, trace, tables=(), **kw):
    import os
    import socket
    nft = _FakeNft(trace, tables)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(diagnosis, "_stdout", nft.stdout)
    monkeypatch.setattr(diagnosis.subprocess, "run", nft.run)
    monkeypatch.setattr(diagnosis.subprocess, "Popen", nft.popen)
    monkeypatch.setattr(diagnosis.time, "sleep", lambda s: None)

    def refused(*a, **k):
        raise OSError("timed out")
    monkeypatch.setattr(socket, "create_connection", refused)
    return diagnosis.host_firewall_drops("198.51.100.42", **kw), nft.ran


def _pkt(tid, proto, table, how):
    return (f"trace id {tid} inet {OWN} out packet: oif \"popek-ex\" ip daddr 198.51.100.42 ip protocol {proto}\n"
            f"trace id {tid} {table} {how}\n")


def test_a_verdict_on_ssh_rests_on_the_owners_tcp_drops_only(monkeypatch):
    icmp_only = _pkt("aa", "icmp", "inet ownerfw output", "rule ip protocol icmp drop (verdict drop)")
    fence = _pkt("bb", "tcp", "inet popek", "input rule ip saddr 198.51.100.0/24 drop (verdict drop)")
    # an owner's icmp drop does not stop SSH; popek's own fence drops unsolicited packets from the cloud
    assert _traced(monkeypatch, icmp_only, packets=("tcp",), owners_only=True)[0] is None
    assert _traced(monkeypatch, fence, packets=("tcp",), owners_only=True)[0] is None
    # all of it still said where every drop is asked for (fip_findings)
    assert "inet ownerfw" in _traced(monkeypatch, icmp_only)[0]
    assert "la clôture de popek" in _traced(monkeypatch, fence)[0]
    got, _ = _traced(monkeypatch, TRACE, packets=("tcp",), owners_only=True)
    assert "inet ownerfw, chaîne output" in got and "(paquet tcp)" in got


def test_a_trace_table_whose_process_is_gone_is_deleted_first(monkeypatch):
    import os
    dead = 2 ** 22 + 1  # above pid_max's default: no such process
    _, ran = _traced(monkeypatch, "", tables=[("inet", f"popek-trace-{dead}"), ("inet", f"popek-trace-{os.getpid()}"),
                                             ("inet", "popek"), ("ip", f"popek-trace-{dead + 1}")])
    deleted = [a[4] for a in ran if a[:3] == ["nft", "delete", "table"]]
    assert deleted[0] == f"popek-trace-{dead}"  # before its own table is made
    assert deleted.count(f"popek-trace-{dead}") == 1 and "popek" not in deleted
    assert deleted[1:] == [f"popek-trace-{os.getpid()}"]  # its own, in finally


def test_the_observer_asks_for_the_tcp_drops_of_the_owners_tables(monkeypatch):
    from types import SimpleNamespace

    from popek.checks.cloud import connection, guest, network
    asked = []
    monkeypatch.setattr(network, "server_port", lambda conn, server: SimpleNamespace(fixed_ips=[], network_id="n"))
    monkeypatch.setattr(connection, "EmbeddedLog", lambda name: None)
    monkeypatch.setattr(diagnosis, "host_firewall_drops", lambda address, **kw: asked.append((address, kw)))
    obs = guest.observer(None, None, SimpleNamespace(properties={}), "198.51.100.42", "u", "k", console=lambda: "")
    obs.host_firewall()
    assert asked == [("198.51.100.42", {"packets": ("tcp",), "owners_only": True})]
