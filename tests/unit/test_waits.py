"""checks/cloud/waits.poll: openstacksdk's iterate_timeout, returning the last value seen (faked polled
function, real clock with small intervals)."""
import time

from popek.checks.cloud.waits import poll


class Counter:
    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self):
        self.calls += 1
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def test_returns_the_first_ready_value_without_waiting_longer():
    fetch = Counter([0, 0, 3, 4])
    assert poll(fetch, lambda v: v > 0, timeout=5, wait=0.01) == 3
    assert fetch.calls == 3


def test_on_timeout_returns_the_last_value_seen():
    fetch = Counter([[], []])
    assert poll(fetch, bool, timeout=0.1, wait=0.02) == []
    assert fetch.calls >= 2


def test_final_look_polls_once_more_after_the_deadline():
    stamps = []

    def fetch():
        stamps.append(time.monotonic())
        return len(stamps)

    start = time.monotonic()
    assert poll(fetch, lambda n: False, timeout=0.1, wait=0.02, final_look=True) == len(stamps)
    assert stamps[-1] >= start + 0.1 > stamps[-2] - 0.01  # the last look is after the deadline, the one before not
    stamps.clear()
    start = time.monotonic()
    assert poll(fetch, lambda n: False, timeout=0.1, wait=0.02) == len(stamps)
    assert stamps[-1] < start + 0.11  # without it, the last look is the one before the last sleep
    last = Counter([0])
    poll(last, bool, timeout=0, wait=0.01, final_look=True)
    assert last.calls == 1  # no time at all: still one look, as `check, then test the deadline` did


def test_no_time_and_no_final_look_means_no_call():
    fetch = Counter([1])
    assert poll(fetch, bool, timeout=0, wait=0.01) is None and fetch.calls == 0
