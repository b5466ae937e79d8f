"""Fault test of the warm `up`'s early RPC queues (lifecycle.EARLY_QUEUES, rpcready.declare): on the running
embedded cloud's RabbitMQ, with the cloud venv's own oslo.messaging, a cast sent to a topic before its server
consumes is delivered once the server starts when the topic's queue was declared first as rpcready declares
it, and lost when it was not (the fault: the state nova-compute's first calls were in when it started before
nova-conductor consumed). The server declaring the queue again proves its properties are oslo.messaging's
(else the broker refuses it: 406). Each run uses its own exchange and topic, deleted at the end."""
import json
import secrets
import subprocess
from pathlib import Path

import pytest

from popek import paths
from popek.checks.localcloud import config, lifecycle
from popek.checks.localcloud.state import HOST, RABBIT_USER, RABBIT_VHOST, CloudState

pytestmark = pytest.mark.integration

STATE = CloudState(paths.embedded_cloud_dir())
PROBE = f"""
import json, sys, time
sys.path.insert(0, {str(Path(lifecycle.RPCREADY_SCRIPT).parent)!r})
import amqp
import rpcready
from oslo_config import cfg
import oslo_messaging as om

req = json.loads(sys.stdin.read())
exchange, topic = req["exchange"], req["topic"]
amqp_conn = amqp.Connection(host=req["host"], userid=req["user"], password=req["password"],
                            virtual_host=req["vhost"], connect_timeout=5)
amqp_conn.connect()
got, out = [], {{}}
server = None
try:
    if req["declare"]:
        out["declared"] = rpcready.declare(amqp_conn, {{exchange: [topic]}})
    conf = cfg.CONF  # oslo.messaging registers its tracing options there only, as a service's
    conf([], project="popek-probe", default_config_files=[])
    om.set_transport_defaults(control_exchange=exchange)
    transport = om.get_rpc_transport(conf, url=req["url"])
    conf.set_override("rabbit_transient_queues_ttl", 1, group="oslo_messaging_rabbit")  # its fanout queue goes
    om.get_rpc_client(transport, om.Target(topic=topic)).cast({{}}, "ping", text="popek")  # before any server

    class Endpoint:
        def ping(self, ctxt, text):
            got.append(text)

    server = om.get_rpc_server(transport, om.Target(topic=topic, server="probe"), [Endpoint()], executor="threading")
    server.start()
    deadline = time.monotonic() + float(req["wait"])
    while not got and time.monotonic() < deadline:
        time.sleep(0.1)
    out["delivered"] = got
finally:
    if server is not None:
        server.stop()
        server.wait()
    channel = amqp_conn.channel()
    for queue in (topic, topic + ".probe"):
        channel.queue_delete(queue)
    for name in (exchange, topic + "_fanout"):
        channel.exchange_delete(name)
    amqp_conn.close()
print(json.dumps(out))
"""


def cast_before_the_server(declare: bool, wait: float) -> dict:
    tag = secrets.token_hex(4)
    pw = STATE.passwords()["rabbitmq"]
    request = {"host": f"{HOST}:{STATE.ports['rabbitmq']}", "user": RABBIT_USER, "password": pw, "vhost": RABBIT_VHOST,
               "url": config.rabbit_url(STATE, pw), "exchange": f"popek-test-{tag}", "topic": f"popek-test-{tag}",
               "declare": declare, "wait": wait}
    out = subprocess.run([STATE.python, "-W", "ignore", "-c", PROBE], input=json.dumps(request),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"topic": request["topic"]}


@pytest.mark.skipif(not Path(STATE.python).exists() or not STATE.pidfile("rabbitmq").exists(),
                    reason="pas de nuage embarqué en marche (RabbitMQ)")
def test_a_cast_sent_before_its_server_consumes_is_delivered_only_when_its_queue_was_declared_first():
    # the fault: no queue yet, the cast is dropped (what nova-compute's first calls met before)
    assert cast_before_the_server(declare=False, wait=2)["delivered"] == []
    # the change: the queue declared first, as lifecycle does as soon as RabbitMQ answers
    found = cast_before_the_server(declare=True, wait=15)
    assert found["declared"] == [found["topic"]] and found["delivered"] == ["popek"]
