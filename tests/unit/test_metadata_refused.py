"""A guest whose metadata requests nova refuses (HTTP 403: the shared secret of Neutron's metadata agent and of
nova differ) is named at once from the agent's own log lines, instead of "the metadata service does not answer"
25 s after the lease (it answers: it refuses). The log line is neutron-metadata-agent's own (proxy_base.py)."""
from __future__ import annotations

from popek.checks.cloud import connection, diagnosis

BOOT = "[    0.000000] Linux version 6.12\n"
LEASE = "udhcpc: lease of 10.78.0.23 obtained from 10.78.0.2, lease time 86400\n"
REFUSED = ("2026-12-07 01:40:02.123 4242 WARNING neutron.agent.metadata.proxy_base [-] The remote metadata server "
           "responded with Forbidden. This response usually occurs when shared secrets do not match.")


def observer(refusals):
    return diagnosis.Observer(ssh=lambda: "no-answer", console=lambda: BOOT + LEASE, status=lambda: ("ACTIVE", ""),
                              address="198.51.100.42", metadata_refusals=lambda: list(refusals))


def test_refusals_of_nova_name_the_shared_secret_at_once():
    seen = diagnosis.read_console(BOOT + LEASE)
    got = diagnosis.judge(observer([REFUSED] * 3), seen, 5.0, 5.0, 1.0, None, "no-answer")
    assert got.component == "metadata"
    assert "refuse les requêtes (HTTP 403)" in str(got) and "3 refus" in str(got) and "secret partagé" in str(got)
    assert "ne répond pas" not in str(got)


def test_fewer_refusals_or_no_lease_wait():
    seen = diagnosis.read_console(BOOT + LEASE)
    assert diagnosis.judge(observer([REFUSED] * 2), seen, 5.0, 5.0, 1.0, None, "no-answer") is None
    assert diagnosis.judge(observer([REFUSED] * 5), diagnosis.read_console(BOOT), 5.0, 5.0, None, None,
                           "no-answer") is None


def test_the_embedded_log_gives_only_what_was_written_after(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    (tmp_path / "log").mkdir()
    log = tmp_path / "log" / "neutron-metadata-agent.log"
    log.write_text(REFUSED + "\n")
    monkeypatch.setattr(connection, "EMBEDDED_CONFIGS", {etc})
    since = connection.EmbeddedLog("neutron-metadata-agent")
    assert since.lines(diagnosis.METADATA_FORBIDDEN) == []
    with open(log, "a") as f:
        f.write("INFO something else\n" + REFUSED + "\n")
    assert since.lines(diagnosis.METADATA_FORBIDDEN) == [REFUSED]
    monkeypatch.setattr(connection, "EMBEDDED_CONFIGS", set())  # no embedded cloud: nothing, no error
    assert connection.EmbeddedLog("neutron-metadata-agent").lines("x") == []
