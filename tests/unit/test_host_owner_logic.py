"""The pure logic of tests/integration/test_host_owner.py (the owner's hardened workstation): which tables of the
host its `flush ruleset` would lose, the owner's ruleset it loads, and which snapshot differences count."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import test_host_owner as owner  # noqa: E402


def test_a_host_table_other_than_popeks_fence_stops_the_test_before_its_flush():
    listing = "table inet popek\ntable inet filter\ntable ip nat\n"
    assert owner.other_tables(listing) == ["table inet filter", "table ip nat"]
    assert owner.other_tables("table inet popek\n") == [] and owner.other_tables("") == []
    assert owner.other_tables("table ip popek\n") == ["table ip popek"]  # only popek's inet table is the fence


def test_the_owners_ruleset_flushes_everything_then_drops_input_and_forward():
    text = owner.owner_ruleset()
    assert text.index("flush ruleset") < text.index("table inet filter")
    assert "counter drop" in text and "policy drop" in text and "hook forward" in text


def test_only_a_process_popek_could_have_touched_is_a_difference():
    diff = {"processes": ["+ 41 9 /bin/bash -l", "- 7 3 /usr/sbin/ovsdb-server /etc/openvswitch/conf.db"],
            "links": [], "sysctls": ["~ net.ipv4.conf.all.rp_filter: 1 -> 0"]}
    assert owner.popeks_differences(diff) == {
        "processes": ["- 7 3 /usr/sbin/ovsdb-server /etc/openvswitch/conf.db"],
        "sysctls": ["~ net.ipv4.conf.all.rp_filter: 1 -> 0"]}
    assert owner.popeks_differences({"processes": ["+ 41 9 /bin/bash -l"]}) == {}


def test_a_missing_fence_is_said_with_its_likely_cause_and_the_repair(monkeypatch):
    from popek.checks.localcloud import fence

    monkeypatch.setattr(fence, "available", lambda: True)
    monkeypatch.setattr(fence, "reading", lambda: fence.ABSENT)   # nft said: no such table (root)
    said = fence.status()
    assert said.startswith("clôture des instances ABSENTE : pas de table nftables inet popek")
    assert "flush ruleset" in said and "`popek cloud up` la remet" in said
