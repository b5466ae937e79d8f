"""SIGTERM to a `popek run -n 2`'s process group (CI cancelling the job), or to its controller alone (`kill
PID`): each xdist worker gets the interruption once, from the controller, and finishes its session's
teardown (where popek's cloud cleanup runs) before the controller ends it. Without the relay, xdist ends
its workers (each interrupts itself 5 s later) and kills them at 10 s. Real processes and signals, no
cloud: a session fixture that takes 6 s to tear down stands for a worker deleting its servers. SIGTERM to
the controller alone takes the same path (its workers are not in its process group: asserted here)."""
import contextlib
import os
import signal
import subprocess
import sys
import time

TOY = """
import os, pathlib, time

import pytest

OUT = pathlib.Path(os.environ["TOY_OUT"])

@pytest.fixture(scope="session")
def cloud_resources():
    wid = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (OUT / f"started-{wid}").write_text(str(os.getpgid(0)))
    yield
    time.sleep(6)               # xdist alone: SIGINT to the worker 5 s after it ends the run, SIGKILL at 10 s
    (OUT / f"cleaned-{wid}").write_text("ok")

@pytest.mark.parametrize("i", range(4))
def test_busy(cloud_resources, i):
    time.sleep(60)
"""


def test_an_interrupted_controller_lets_every_worker_finish_its_cleanup(tmp_path):
    (tmp_path / "test_toy.py").write_text(TOY)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "TOY_OUT": str(out)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-q",
                             "--popek-results", str(tmp_path / "r"), "test_toy.py"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("started-*"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        started = sorted(p.name for p in out.glob("started-*"))
        assert started == ["started-gw0", "started-gw1"], proc.communicate(timeout=5)[0] if proc.poll() else started
        # each worker leads its own process group: a signal to the run's group reaches the controller alone
        assert {int(p.read_text()) for p in out.glob("started-*")}.isdisjoint({proc.pid})
        os.killpg(proc.pid, signal.SIGTERM)
        text, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for started in out.glob("started-*"):      # a worker left running by a failure: its own group
            pgid = int(started.read_text())
            with contextlib.suppress(OSError):
                if "exec(eval(" in open(f"/proc/{pgid}/cmdline").read():
                    os.killpg(pgid, signal.SIGKILL)
    assert proc.returncode == 2, text           # pytest's "interrupted", not killed by the signal
    assert "popek : interrompu ; 2 worker(s) nettoient" in text, text
    assert sorted(p.name for p in out.glob("cleaned-*")) == ["cleaned-gw0", "cleaned-gw1"], text
