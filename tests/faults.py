"""Helpers for fault tests (tests/conftest.py describes the convention): run a scenario's steps on a
world where its claim is false and get the verdict the scenario would give.

Steps are plain functions (pytest-bdd's decorators return them unchanged): a fault test calls them with
the fixtures' values a real run would pass, after putting the fault in place (a real faulty world where
the host allows it, else recorded or forged observations).
"""
from __future__ import annotations

import os
import textwrap

import pytest

#: the environment variable that lets the opt-in slow tests run (CI's budget leaves them out)
SLOW_ENV = "POPEK_SLOW_FAULTS"


def slow(what: str, then: str = "") -> pytest.MarkDecorator:
    """The mark of an opt-in test outside CI's budget: skipped unless POPEK_SLOW_FAULTS=1, with a reason made
    of `what` (French: what the test costs and why) and how to run it, then `then` (e.g. " (sous flock -x)")."""
    return pytest.mark.skipif(os.environ.get(SLOW_ENV) != "1",
                              reason=f"{what} hors du budget CI : {SLOW_ENV}=1 pour le lancer{then}")


class Evidence:
    """Stands for the plugin's `evidence` fixture: keeps what the steps report, attaches nothing."""

    def __init__(self):
        self.figures: dict = {}
        self.attachments: dict = {}

    def figure(self, key, value, unit=""):
        self.figures[key] = f"{value}{unit}"

    def json(self, name, obj):
        self.attachments[name] = obj

    def text(self, name, text):
        self.attachments[name] = text

    terminal = text

    def svg(self, name, svg):
        self.attachments[name] = svg


def scenario_verdict(*steps) -> tuple[str, str]:
    """Run `steps` (callables without arguments) in order, as pytest-bdd runs a scenario's steps.

    Returns ("ÉCHEC", the assertion's message) at the first failed assertion, ("IGNORÉ", reason) at a
    skip, else ("RÉUSSI", ""). Any other exception propagates: a fault test that breaks is an error,
    not a verdict.
    """
    try:
        for step in steps:
            step()
    except AssertionError as exc:  # the step's message, without pytest's rewritten "assert …" explanation
        return "ÉCHEC", str(exc).split("\nassert ", 1)[0]
    except pytest.skip.Exception as exc:
        return "IGNORÉ", str(exc.msg)
    return "RÉUSSI", ""


def record(record_property, verdict: str, measure: str) -> None:
    """Record the verdict obtained and its message (tests/conftest.py's table shows them)."""
    record_property("verdict", verdict)
    record_property("measure", measure)



def freeze_at_step(service: str, step: str, wait: str = "") -> str:
    """The text of a pytest plugin (test_faults_dataplane.run_scenarios' `plugin`) that freezes the embedded
    cloud's service `service` (SIGSTOP to its process group) right before the scenario's step named `step`,
    once `wait` has run (code of the hook's body, with `request` in scope, e.g. a wait for the guests), and
    thaws it (SIGCONT) at the session's end."""
    wait = textwrap.indent(textwrap.dedent(wait).strip("\n"), "    ") + "\n" if wait.strip() else ""
    return _FREEZE_HEAD.format(service=service, step=step) + wait + _FREEZE_TAIL


_FREEZE_HEAD = """
import os, signal, time

def _pid():
    from popek import paths
    from popek.checks.localcloud import services
    from popek.checks.localcloud.state import CloudState
    return services.read_pid(CloudState(paths.embedded_cloud_dir()), {service!r})

def pytest_bdd_before_step(request, feature, scenario, step, step_func):
    if step.name != {step!r}:
        return
"""
_FREEZE_TAIL = """    os.killpg(_pid(), signal.SIGSTOP)

def pytest_sessionfinish(session):
    pid = _pid()
    if pid:
        os.killpg(pid, signal.SIGCONT)
"""


def freeze_then(service: str, first: str, step: str, wait: str, then: str, restored: str, inject: list[str]) -> str:
    """The text of a fault plugin for ONE `popek run` that proves two faults one after the other on the same
    guests, each alone in the cloud while its scenario runs:

    - the scenario whose test name holds `first` runs first (the plugin sorts it ahead); `service` is frozen
      (SIGSTOP to its process group) right before its step named `step`, once `wait` has run (code of the
      hook's body, `request` in scope), and thawed (SIGCONT) as soon as that scenario ends;
    - before the scenario whose test name holds `then` begins, `restored` runs (code, `request` in scope,
      that asserts the first fault is gone: an AssertionError there is that scenario's failure, never a
      pass), then `inject` (an argv run with check=True) puts the second fault in place. The caller removes
      that one after the run.

    The service is thawed at the session's end too, whatever happens."""
    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") + "\n" if code.strip() else ""

    return (_THEN_HEAD.format(service=service, first=first, step=step) + body(wait) + _THEN_MIDDLE.format(
        first=first, then=then) + body(restored) + _THEN_TAIL.format(inject=list(inject)))


_THEN_HEAD = """
import os, signal, subprocess, time

import pytest

_FROZEN = {{"pid": None, "thawed": False, "injected": False}}

def _pid():
    from popek import paths
    from popek.checks.localcloud import services
    from popek.checks.localcloud.state import CloudState
    return services.read_pid(CloudState(paths.embedded_cloud_dir()), {service!r})

def _thaw():
    if _FROZEN["pid"] is not None and not _FROZEN["thawed"]:
        _FROZEN["thawed"] = True
        try:
            os.killpg(_FROZEN["pid"], signal.SIGCONT)
        except ProcessLookupError:
            pass

def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: {first!r} not in item.name)

def pytest_bdd_before_step(request, feature, scenario, step, step_func):
    if step.name != {step!r} or {first!r} not in request.node.name or _FROZEN["pid"] is not None:
        return
"""
_THEN_MIDDLE = """    _FROZEN["pid"] = _pid()
    os.killpg(_FROZEN["pid"], signal.SIGSTOP)

def pytest_bdd_after_scenario(request, feature, scenario):
    if {first!r} in request.node.name:
        _thaw()

@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request, feature, scenario):
    if {then!r} not in request.node.name or _FROZEN["injected"]:
        return
    assert _FROZEN["thawed"], "faute suivante non posée : le scénario de la première faute n'a pas tourné avant"
"""
_THEN_TAIL = """    subprocess.run({inject!r}, check=True, timeout=30)
    _FROZEN["injected"] = True

def pytest_sessionfinish(session):
    _thaw()
"""
