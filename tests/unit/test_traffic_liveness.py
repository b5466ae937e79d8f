"""No false pass in the traffic checks: "blocked" is concluded only for a guest proven alive before and
after the probes (checks/cloud/traffic.blocked, Liveness), with fakes for the probe and the compute API."""
from types import SimpleNamespace

import pytest

from popek.checks.cloud import traffic
from popek.checks.cloud.traffic import GuestNotAlive, Liveness


def test_blocked_when_the_probe_fails_and_the_guest_lives():
    assert traffic.blocked(lambda: False, lambda: True, grace=1) is True


def test_not_blocked_when_the_probe_keeps_answering():
    assert traffic.blocked(lambda: True, lambda: True, grace=0.2) is False


def test_a_dead_guest_is_never_blocked():
    with pytest.raises(GuestNotAlive):
        traffic.blocked(lambda: False, lambda: False, grace=1)


def test_a_guest_that_dies_during_the_probes_is_never_blocked():
    answers = iter([True, False])  # alive before, not after
    with pytest.raises(GuestNotAlive):
        traffic.blocked(lambda: False, lambda: next(answers), grace=1)


def test_probes_of_one_guest_run_side_by_side_each_with_its_own_verdict():
    import threading
    import time

    running, peak, lock = [0], [0], threading.Lock()

    def probe(answer):
        def run():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return answer
        return run

    verdict = traffic.blocked_each({"ssh": probe(False), "ping": probe(True)}, lambda: True, grace=0.5)
    assert verdict == {"ssh": True, "ping": False}
    assert peak[0] == 2


def test_one_probe_blocked_on_a_dead_guest_is_never_a_pass():
    answers = iter([True, False])
    with pytest.raises(GuestNotAlive):
        traffic.blocked_each({"ssh": lambda: False, "ping": lambda: True}, lambda: next(answers), grace=0.3)


class FakeCompute:
    def __init__(self, status="ACTIVE", consoles=()):
        self.status, self.consoles = status, list(consoles)

    def get_server(self, _id):
        return SimpleNamespace(status=self.status)

    def get_server_console_output(self, _server, length=40):
        return {"output": self.consoles.pop(0) if len(self.consoles) > 1 else self.consoles[0]}


def _liveness(compute, marker="popek-tiny: alive"):
    return Liveness(SimpleNamespace(compute=compute), SimpleNamespace(id="s1"), marker, period=0.1)


def test_liveness_needs_a_newer_heartbeat():
    beats = ["popek-tiny: alive 10\n", "popek-tiny: alive 10\npopek-tiny: alive 13\n"]
    assert _liveness(FakeCompute(consoles=beats))() is True


def test_a_frozen_heartbeat_is_not_alive():
    assert _liveness(FakeCompute(consoles=["popek-tiny: alive 10\n"]))() is False


def test_a_stopped_server_is_not_alive():
    assert _liveness(FakeCompute(status="SHUTOFF", consoles=["popek-tiny: alive 99\n"]))() is False


def test_without_heartbeat_active_is_all_the_api_says():
    assert _liveness(FakeCompute(consoles=[""]), marker=None)() is True
