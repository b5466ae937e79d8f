"""Run-wide shared resources: made once on first use, a failure remembered (pure logic, no cloud)."""
import pytest

from popek.checks.cloud.shared import Shared


def test_a_resource_is_made_once_and_then_reused():
    made = []
    shared = Shared(conn=None, ledger=None)
    assert shared.get("x", lambda: made.append(1) or "net") == "net"
    assert shared.get("x", lambda: made.append(1) or "other") == "net"
    assert made == [1]


def test_a_failed_making_is_not_tried_again_and_each_caller_gets_the_reason():
    calls = []

    def make():
        calls.append(1)
        raise TimeoutError("server ERROR: No valid host")

    shared = Shared(conn=None, ledger=None)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="« pair » indisponible : server ERROR: No valid host"):
            shared.get("pair", make)
    assert calls == [1]


def test_nothing_to_boot_stays_a_lookup_error_so_the_scenario_skips():
    def make():
        raise LookupError("aucune image active")

    shared = Shared(conn=None, ledger=None)
    with pytest.raises(LookupError, match="aucune image active"):
        shared.get("pair", make)


def test_a_resource_made_from_another_one_does_not_deadlock():
    shared = Shared(conn=None, ledger=None)
    assert shared.get("pair", lambda: ("on", shared.get("routed", lambda: "routed"))) == ("on", "routed")
