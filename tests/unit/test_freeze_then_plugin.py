"""faults.freeze_then: the plugin of one `popek run` that proves two faults one after the other on the same
guests (test_faults_dataplane's L3 freeze, then a foreign OpenFlow flow). Its logic, with the pid, the
signals and the injection faked: the first fault's scenario is sorted first, the service is frozen only
before the named step of that scenario and thawed as soon as it ends, the second fault is injected only
after the restoration check passed, and never when the first scenario did not run (the plugin itself is run
for real by the live test)."""
import os
import signal
import subprocess
from types import SimpleNamespace

import pytest

import faults

STEP = "une instance du run, joignable par SSH sur une IP flottante"


def plugin(monkeypatch, calls: list, restored: str = "calls.append(('restored', request.node.name))") -> dict:
    text = faults.freeze_then("neutron-l3-agent", "déplacée_mène", STEP,
                              wait="calls.append(('waited', request.getfixturevalue('conn')))",
                              then="bloque_puis", restored=restored, inject=["ovs-ofctl", "add-flow", "x"])
    space: dict = {}
    exec(compile(text, "popek_fault_plugin.py", "exec"), space)
    space["_pid"] = lambda: 4242
    space["calls"] = calls
    monkeypatch.setattr(os, "killpg", lambda pid, sig: calls.append((pid, sig)))
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: calls.append(("run", argv, kw.get("check"))))
    return space


def request(name: str):
    return SimpleNamespace(node=SimpleNamespace(name=name), getfixturevalue=lambda fixture: f"<{fixture}>")


L3 = request("test_lip_flottante_déplacée_mène_ssh_sur_lautre_instance")
FLOW = request("test_le_groupe_de_sécurité_bloque_puis_laisse_passer")


def test_the_first_faults_scenario_runs_first(monkeypatch):
    space = plugin(monkeypatch, [])
    items = [SimpleNamespace(name=FLOW.node.name), SimpleNamespace(name="test_autre"), SimpleNamespace(name=L3.node.name)]
    space["pytest_collection_modifyitems"](None, None, items)
    assert [i.name for i in items] == [L3.node.name, FLOW.node.name, "test_autre"]


def test_frozen_before_the_step_thawed_at_the_scenarios_end_then_restored_then_injected(monkeypatch):
    calls: list = []
    space = plugin(monkeypatch, calls)
    before_step = space["pytest_bdd_before_step"]
    before_step(L3, None, None, SimpleNamespace(name="la paire de clés du run"), None)
    before_step(FLOW, None, None, SimpleNamespace(name=STEP), None)     # the step, in another scenario
    assert calls == []
    before_step(L3, None, None, SimpleNamespace(name=STEP), None)
    assert calls == [("waited", "<conn>"), (4242, signal.SIGSTOP)]
    before_step(L3, None, None, SimpleNamespace(name=STEP), None)        # frozen once only
    assert len(calls) == 2
    space["pytest_bdd_after_scenario"](FLOW, None, None)                 # another scenario's end: still frozen
    assert len(calls) == 2
    space["pytest_bdd_after_scenario"](L3, None, None)
    assert calls[2:] == [(4242, signal.SIGCONT)]
    space["pytest_bdd_before_scenario"](L3, None, None)                  # not the second fault's scenario
    assert len(calls) == 3
    space["pytest_bdd_before_scenario"](FLOW, None, None)
    assert calls[3:] == [("restored", FLOW.node.name), ("run", ["ovs-ofctl", "add-flow", "x"], True)]
    space["pytest_sessionfinish"](None)                                  # thawed already: no second SIGCONT
    assert len(calls) == 5


def test_no_injection_when_the_restoration_check_fails(monkeypatch):
    calls: list = []
    space = plugin(monkeypatch, calls, restored="assert False, 'IP flottante du run toujours muette'")
    space["pytest_bdd_before_step"](L3, None, None, SimpleNamespace(name=STEP), None)
    space["pytest_bdd_after_scenario"](L3, None, None)
    with pytest.raises(AssertionError, match="toujours muette"):
        space["pytest_bdd_before_scenario"](FLOW, None, None)
    assert not [c for c in calls if c[0] == "run"]


def test_no_injection_when_the_first_fault_never_ran(monkeypatch):
    calls: list = []
    space = plugin(monkeypatch, calls)
    with pytest.raises(AssertionError, match="n'a pas tourné avant"):
        space["pytest_bdd_before_scenario"](FLOW, None, None)
    assert calls == []
    space["pytest_sessionfinish"](None)                                  # nothing frozen: nothing to thaw
    assert calls == []


def test_thawed_at_the_sessions_end_when_the_scenario_did_not_end(monkeypatch):
    calls: list = []
    space = plugin(monkeypatch, calls)
    space["pytest_bdd_before_step"](L3, None, None, SimpleNamespace(name=STEP), None)
    space["pytest_sessionfinish"](None)
    assert calls[-1] == (4242, signal.SIGCONT)
