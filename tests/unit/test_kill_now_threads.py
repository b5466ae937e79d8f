"""services.kill_now returns once a killed service's threads are all gone, not when its leader turns "Z": a
multi-threaded process's other threads hold its listening socket a little longer (real small processes)."""
from __future__ import annotations

import socket
import sys

import pytest

from popek.checks.localcloud import services
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

# A listener with 30 threads that each touched some memory (as an eventlet agent with its thread pool): its
# exit takes a while after the leader's.
CHILD = r'''
import socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(8)
blobs = []
def work():
    blobs.append(bytearray(16 * 1024 * 1024))
    while True: time.sleep(0.01)
for _ in range(30): threading.Thread(target=work, daemon=True).start()
time.sleep(0.5)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True: time.sleep(1)
'''


@pytest.fixture
def state(tmp_path):
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    yield state
    services.sweep(state)


def _wait_port(path, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the listener never started")


def test_a_killed_threaded_listeners_port_is_free_when_kill_now_returns(state, tmp_path):
    for i in range(4):
        out = tmp_path / f"port{i}"
        services.start(state, Service("listener", [sys.executable, "-c", CHILD, str(out)],
                                      log=str(state.log("listener")), cwd=str(state.root)))
        port = _wait_port(out)
        assert services.kill_now(state, ["listener"]) == []
        with socket.socket() as s:  # as a service restarted at once (a repair) or a student's server binds it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))  # EADDRINUSE if the dying threads still held it
            s.listen(1)
