"""diagnosis.host_firewall_drops, for real: the firewall of the machine that sends traffic to a floating IP
(nftables, the owner's own tables) is traced, and the chains that drop that traffic are named — an output
rule that drops SSH, an input policy that drops the replies — while the owner's tables are only read.

The "host" is a throwaway network namespace with a veth to a second one (the "floating IP", which answers
ping and resets TCP/22), so the machine's own firewall is never touched; both go at the end. Root only, ~8 s.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

pytestmark = [pytest.mark.integration]

OWNER_TABLES = """table inet ownerfw {
  chain output {
    type filter hook output priority filter; policy accept;
    ip daddr 10.231.0.2 tcp dport 22 drop
  }
}
table ip ownerfilter {
  chain INPUT {
    type filter hook input priority filter; policy drop;
  }
}
"""
TRACE = "from popek.checks.cloud import diagnosis; print(repr(diagnosis.host_firewall_drops('10.231.0.2')))"


def _ns(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def host_and_fip():
    if os.geteuid() != 0 or subprocess.run(["nft", "--version"], capture_output=True).returncode != 0:
        pytest.skip("il faut être root avec nft (espaces de noms réseau, traçage netfilter)")
    tag = uuid.uuid4().hex[:6]
    host, far = f"hfw-host-{tag}", f"hfw-fip-{tag}"
    try:
        for ns in (host, far):
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
            _ns(ns, "ip", "link", "set", "lo", "up")
        _ns(host, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", far)
        _ns(host, "ip", "addr", "add", "10.231.0.1/24", "dev", "v0")
        _ns(far, "ip", "addr", "add", "10.231.0.2/24", "dev", "v1")
        _ns(host, "ip", "link", "set", "v0", "up")
        _ns(far, "ip", "link", "set", "v1", "up")
        assert _ns(host, "ping", "-c", "1", "-W", "2", "10.231.0.2").returncode == 0
        yield host
    finally:
        for ns in (host, far):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def test_the_owners_output_rule_and_input_policy_are_named_and_left_as_they_were(host_and_fip):
    host = host_and_fip
    assert _ns(host, "nft", "-f", "-", input=OWNER_TABLES).returncode == 0
    before = _ns(host, "nft", "list", "ruleset").stdout
    said = _ns(host, sys.executable, "-c", TRACE)
    assert said.returncode == 0, said.stderr
    text = said.stdout
    assert "pare-feu de cet hôte" in text
    assert "table inet ownerfw, chaîne output" in text and "tcp dport 22 drop" in text and "paquet tcp" in text
    assert "table ip ownerfilter, chaîne INPUT : policy drop (paquet icmp)" in text
    assert _ns(host, "nft", "list", "ruleset").stdout == before  # the owner's tables as they were, ours gone


def test_a_host_whose_firewall_lets_the_traffic_through_is_not_blamed(host_and_fip):
    host = host_and_fip
    said = _ns(host, sys.executable, "-c", TRACE)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "None"
    assert _ns(host, "nft", "list", "tables").stdout.strip() == ""  # the trace table is gone


def test_an_icmp_only_drop_does_not_explain_ssh_and_a_dead_tracers_table_is_swept(host_and_fip):
    host = host_and_fip
    dead = 2 ** 22 + 1  # above the largest pid_max: no such process (a tracer SIGKILLed before its finally)
    icmp_only = f"table inet ownericmp {{\n  chain output {{\n    type filter hook output priority filter;\n" \
                f"    ip protocol icmp drop\n  }}\n}}\ntable inet popek-trace-{dead} {{\n}}\n"
    assert _ns(host, "nft", "-f", "-", input=icmp_only).returncode == 0
    ssh_only = TRACE.replace("('10.231.0.2')", "('10.231.0.2', packets=('tcp',), owners_only=True)")
    said = _ns(host, sys.executable, "-c", ssh_only)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "None"  # the ping was dropped, SSH was not: not this host's block of SSH
    assert _ns(host, "nft", "list", "tables").stdout.split() == ["table", "inet", "ownericmp"]


def test_an_iptables_legacy_drop_that_nftables_cannot_see_is_named_from_its_counters(host_and_fip):
    """A host whose firewall is iptables-legacy (x_tables: neither listed nor traced by nft) dropping SSH to the
    floating IP: the rule is named with the packets it dropped during the attempt, so the verdict is this
    host's firewall, not Neutron's L3; an ICMP-only legacy drop does not explain SSH. The rules stay as they were."""
    host = host_and_fip
    if subprocess.run(["iptables-legacy-save", "--version"], capture_output=True).returncode != 0:
        pytest.skip("iptables-legacy absent")
    rules = [["-A", "OUTPUT", "-d", "10.231.0.2/32", "-p", "tcp", "--dport", "22", "-j", "DROP"],
             ["-A", "OUTPUT", "-d", "10.231.0.0/24", "-p", "icmp", "-j", "DROP"]]
    for rule in rules:
        assert _ns(host, "iptables-legacy", *rule).returncode == 0
    before = _ns(host, "iptables-legacy-save").stdout
    assert _ns(host, "nft", "list", "ruleset").stdout.strip() == ""  # nftables sees nothing of it
    ssh_only = TRACE.replace("('10.231.0.2')", "('10.231.0.2', packets=('tcp',), owners_only=True)")
    said = _ns(host, sys.executable, "-c", ssh_only)
    assert said.returncode == 0, said.stderr
    text = said.stdout
    assert "pare-feu iptables-legacy de cet hôte" in text, text
    assert "table filter (iptables-legacy), chaîne OUTPUT : -A OUTPUT -d 10.231.0.2/32 -p tcp" in text, text
    assert "paquet(s) jeté(s) pendant l'essai" in text and "-p icmp" not in text, text
    strip = lambda t: [l for l in t.splitlines() if not l.startswith("#")]  # noqa: E731
    assert strip(_ns(host, "iptables-legacy-save").stdout) == strip(before)
    _ns(host, "iptables-legacy", "-D", *rules[0][1:])
    said = _ns(host, sys.executable, "-c", ssh_only)
    assert said.stdout.strip() == "None", said.stdout  # the ICMP drop alone: no SSH verdict on this host
