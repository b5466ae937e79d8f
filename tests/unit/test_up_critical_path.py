"""The warm `up`'s critical path (issue #17): nova-compute starts once nova-conductor consumes its RabbitMQ
queue (lifecycle.wait_consumers and the cloud-venv helper rpcready.py), not 5 s later when conductor's first
heartbeat says "up"."""
import io
import json
import sys
import types

import pytest

from popek.checks.localcloud import lifecycle, rpcready
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState


def fake_amqp(answers, connect_error=None):
    """A stand-in for py-amqp: answers[queue] is the list of successive passive declares' results, None for
    a queue not declared yet (the broker's 404), else its consumer count; the last one repeats."""
    class NotFound(Exception):
        pass

    class AMQPError(Exception):
        pass

    class Channel:
        def queue_declare(self, queue, passive):
            assert passive, "the helper must never declare a queue itself"
            seq = answers[queue]
            result = seq.pop(0) if len(seq) > 1 else seq[0]
            if result is None:
                raise NotFound(queue)
            return types.SimpleNamespace(consumer_count=result)

        def close(self):
            pass

    class Connection:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def connect(self):
            if connect_error:
                raise connect_error

        def channel(self):
            return Channel()

    return types.SimpleNamespace(Connection=Connection, exceptions=types.SimpleNamespace(
        NotFound=NotFound, AMQPError=AMQPError))


def run_helper(monkeypatch, capsys, answers, timeout=5.0, connect_error=None):
    monkeypatch.setitem(sys.modules, "amqp", fake_amqp(answers, connect_error))
    monkeypatch.setattr(rpcready.time, "sleep", lambda s: None)
    request = {"host": "127.0.0.1", "port": 5672, "user": "u", "password": "p", "vhost": "v",
               "queues": list(answers), "timeout": timeout}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request)))
    rc = rpcready.main()
    return rc, json.loads(capsys.readouterr().out)


def test_the_helper_waits_until_every_queue_is_declared_and_consumed(monkeypatch, capsys):
    rc, out = run_helper(monkeypatch, capsys, {"conductor": [None, None, 0, 1], "scheduler": [None, 1]})
    assert rc == 0 and out["pending"] == []


def test_a_queue_declared_but_never_consumed_is_named_at_the_timeout(monkeypatch, capsys):
    rc, out = run_helper(monkeypatch, capsys, {"conductor": [1], "scheduler": [0]}, timeout=0.2)
    assert rc == 1 and out["pending"] == ["scheduler"]


def test_a_broker_that_refuses_is_named_at_the_timeout(monkeypatch, capsys):
    rc, out = run_helper(monkeypatch, capsys, {"conductor": [1]}, timeout=0.2,
                         connect_error=ConnectionRefusedError(111, "Connection refused"))
    assert rc == 1 and out["pending"] == ["conductor"] and "ConnectionRefusedError" in out["error"]


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A cloud state whose venv python is this interpreter, and a helper script written by the test."""
    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    (st.venv / "bin").mkdir(parents=True)
    (st.venv / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.setattr(lifecycle, "RPCREADY_SCRIPT", tmp_path / "helper.py")
    return st


def test_wait_consumers_names_the_service_whose_queue_stays_unconsumed(state):
    secret = state.passwords()["rabbitmq"]
    lifecycle.RPCREADY_SCRIPT.write_text(
        "import json, sys\n"
        "req = json.loads(sys.stdin.read())\n"
        f"assert {secret!r} not in ' '.join(sys.argv) and req['password'] == {secret!r}\n"
        "print(json.dumps({'pending': req['queues'][1:], 'error': ''}))\n"
        "sys.exit(1)\n")
    with pytest.raises(CloudError) as exc:
        lifecycle.wait_consumers(state, {"conductor": ("nova-conductor", lambda: True),
                                         "scheduler": ("nova-scheduler", lambda: True)}, timeout=3)
    assert "nova-scheduler n'écoute pas sa file RabbitMQ « scheduler » après 3 s" in str(exc.value)
    assert "nova-scheduler.log" in str(exc.value)


def test_wait_consumers_stops_at_once_when_the_service_dies(state):
    lifecycle.RPCREADY_SCRIPT.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(CloudError) as exc:
        lifecycle.wait_consumers(state, {"conductor": ("nova-conductor", lambda: False)}, timeout=30)
    assert "nova-conductor s'est arrêté au démarrage" in str(exc.value)


def test_wait_consumers_returns_when_none_is_pending(state):
    lifecycle.RPCREADY_SCRIPT.write_text(
        "import json, sys\nsys.stdin.read()\nprint(json.dumps({'pending': [], 'error': ''}))\n")
    lifecycle.wait_consumers(state, {"conductor": ("nova-conductor", lambda: True)}, timeout=3)

