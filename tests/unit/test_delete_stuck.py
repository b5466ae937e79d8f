"""A server that stays after Nova accepted its deletion (nova-compute frozen: task_state « deleting » forever) is
an ÉCHEC of the scenario that deletes it, naming what the deletion waits for — not an error « Leftover … toujours
là après 60 s » without a cause (live, nova-compute frozen at C21's « je supprime l'instance »: broken, no cause)."""
import pytest

from popek.checks.cloud import connection, ledger, stuck


class _Server:
    def __init__(self, status="ACTIVE", task_state="deleting"):
        self.id, self.status, self.task_state = "5e1", status, task_state


class _Compute:
    def __init__(self):
        self.deleted = []

    def delete_server(self, server_id, ignore_missing=True):
        self.deleted.append(server_id)

    def get_server(self, server_id):
        return _Server()


class _Conn:
    def __init__(self):
        self.compute = _Compute()


def test_a_server_left_deleting_fails_the_step_naming_the_frozen_compute(monkeypatch):
    frozen = "nova-compute est gelé (processus 4242 à l'état T : arrêté par un signal)"
    monkeypatch.setattr(connection, "embedded_trouble", lambda: [frozen])
    book = ledger.Ledger(_Conn(), "popek-0123abcd-main", timeout=1)
    entry = book.record("server", "popek-0123abcd-main-server-1")
    entry.id = "5e1"
    with pytest.raises(AssertionError) as info:   # an ÉCHEC of the scenario's step, not an error
        book.delete("5e1")
    said = str(info.value)
    assert isinstance(info.value, ledger.Leftover)  # the run's cleanup still counts it as a leftover
    assert "popek-0123abcd-main-server-1 est toujours là" in said and "étape deleting" in said
    assert "nova-compute n'a pas exécuté la suppression" in said and frozen in said


def test_the_message_without_trouble_says_the_step_only():
    said = stuck.delete_finding("s", 60, "ACTIVE", None)
    assert "étape aucune" in said and "nova-compute n'a pas" not in said and "cloud embarqué" not in said
