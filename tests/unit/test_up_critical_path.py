"""The warm `up`'s critical path (issue #17): nova-compute starts once nova-conductor consumes its RabbitMQ
queue (lifecycle.wait_consumers and the cloud-venv helper rpcready.py), not 5 s later when conductor's first
heartbeat says "up". Or, since EARLY_QUEUES, it starts beside them: their topic queues are declared by the
helper first, as oslo.messaging declares them (the live proof that a cast then waits for its server:
tests/integration/test_rpc_early_queues_live.py)."""
import io
import json
import sys
import types

import pytest

from popek.checks.localcloud import lifecycle, rpcready
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState


def fake_amqp(answers, connect_error=None, calls=None, refuse=()):
    """A stand-in for py-amqp: answers[queue] is the list of successive passive declares' results, None for
    a queue not declared yet (the broker's 404), else its consumer count; the last one repeats. `calls`
    records the declarations and bindings; a queue of `refuse` exists with other properties (406)."""
    calls = [] if calls is None else calls

    class AMQPError(Exception):
        pass

    class NotFound(AMQPError):
        pass

    class PreconditionFailed(AMQPError):
        pass

    class Channel:
        is_open = True

        def exchange_declare(self, exchange, type, durable, auto_delete):
            calls.append(("exchange", exchange, type, durable, auto_delete))

        def queue_bind(self, queue, exchange, routing_key):
            calls.append(("bind", queue, exchange, routing_key))

        def queue_declare(self, queue, passive=False, durable=None, auto_delete=None):
            if not passive:
                if queue in refuse:
                    raise PreconditionFailed(f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{queue}'")
                calls.append(("queue", queue, durable, auto_delete))
                return types.SimpleNamespace(consumer_count=0)
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
        NotFound=NotFound, AMQPError=AMQPError, PreconditionFailed=PreconditionFailed))


def run_helper(monkeypatch, capsys, answers, timeout=5.0, connect_error=None, declare=None, calls=None, refuse=()):
    monkeypatch.setitem(sys.modules, "amqp", fake_amqp(answers, connect_error, calls, refuse))
    monkeypatch.setattr(rpcready.time, "sleep", lambda s: None)
    request = {"host": "127.0.0.1", "port": 5672, "user": "u", "password": "p", "vhost": "v",
               "queues": list(answers), "timeout": timeout, "declare": declare or {}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request)))
    rc = rpcready.main()
    return rc, json.loads(capsys.readouterr().out)


def test_the_helper_waits_until_every_queue_is_declared_and_consumed(monkeypatch, capsys):
    calls = []
    rc, out = run_helper(monkeypatch, capsys, {"conductor": [None, None, 0, 1], "scheduler": [None, 1]}, calls=calls)
    assert rc == 0 and out["pending"] == [] and out["declared"] == []
    assert calls == []  # asked for no declaration: it declares nothing


def test_the_helper_declares_topic_queues_as_oslo_messaging_does(monkeypatch, capsys):
    calls = []
    rc, out = run_helper(monkeypatch, capsys, {"q-plugin": [1]}, calls=calls,
                         declare={"nova": ["conductor", "scheduler"]})
    assert rc == 0 and out == {"pending": [], "error": "", "declared": ["conductor", "scheduler"]}
    assert calls == [("exchange", "nova", "topic", False, False),
                     ("queue", "conductor", False, False), ("bind", "conductor", "nova", "conductor"),
                     ("queue", "scheduler", False, False), ("bind", "scheduler", "nova", "scheduler")]


def test_a_queue_of_other_properties_is_refused_and_named(monkeypatch, capsys):
    rc, out = run_helper(monkeypatch, capsys, {}, declare={"nova": ["conductor"]}, refuse=("conductor",))
    assert rc == 1 and out["declared"] == [] and "PRECONDITION_FAILED" in out["error"]


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



def test_wait_consumers_raises_when_a_queue_could_not_be_declared(state):
    lifecycle.RPCREADY_SCRIPT.write_text(
        "import json, sys\n"
        "req = json.loads(sys.stdin.read())\n"
        "assert req['declare'] == {'nova': ['conductor', 'scheduler']}\n"
        "print(json.dumps({'pending': [], 'error': 'PreconditionFailed: 406', 'declared': ['conductor']}))\n"
        "sys.exit(1)\n")
    with pytest.raises(CloudError) as exc:
        lifecycle.wait_consumers(state, {}, timeout=3, declare={"nova": ["conductor", "scheduler"]})
    assert "files RabbitMQ scheduler non déclarées" in str(exc.value) and "406" in str(exc.value)
