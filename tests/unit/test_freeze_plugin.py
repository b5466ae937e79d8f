"""faults.freeze_at_step: the fault plugin's text freezes the service's process group only before the named
step, after the given wait, and thaws it at the session's end (the plugin run for real by the live fault
tests test_faults_adversary / test_faults_dataplane; here its logic, with the pid and the signals faked)."""
import os
import signal
from types import SimpleNamespace

import faults


def load(text: str, calls: list, monkeypatch) -> dict:
    space: dict = {}
    exec(compile(text, "popek_fault_plugin.py", "exec"), space)
    space["_pid"] = lambda: 4242
    monkeypatch.setattr(os, "killpg", lambda pid, sig: calls.append((pid, sig)))
    return space


def test_frozen_before_the_named_step_only_and_thawed_at_the_end(monkeypatch):
    calls: list = []
    plugin = load(faults.freeze_at_step("nova-compute", "je supprime l'instance"), calls, monkeypatch)
    hook = plugin["pytest_bdd_before_step"]
    hook(None, None, None, SimpleNamespace(name="une instance démarre"), None)
    assert calls == []
    hook(None, None, None, SimpleNamespace(name="je supprime l'instance"), None)
    assert calls == [(4242, signal.SIGSTOP)]
    plugin["pytest_sessionfinish"](None)
    assert calls == [(4242, signal.SIGSTOP), (4242, signal.SIGCONT)]


def test_the_wait_runs_first_with_the_request(monkeypatch):
    calls: list = []
    wait = """
        calls.append(("waited", request.getfixturevalue("conn")))
    """
    plugin = load(faults.freeze_at_step("neutron-l3-agent", "une IP flottante", wait=wait), calls, monkeypatch)
    plugin["calls"] = calls
    request = SimpleNamespace(getfixturevalue=lambda name: f"<{name}>")
    plugin["pytest_bdd_before_step"](request, None, None, SimpleNamespace(name="une IP flottante"), None)
    assert calls == [("waited", "<conn>"), (4242, signal.SIGSTOP)]
    assert "'neutron-l3-agent'" in faults.freeze_at_step("neutron-l3-agent", "x")
