"""Declare RPC topic queues and wait until RabbitMQ queues have a consumer: runs INSIDE the cloud's own venv
(py-amqp, which oslo.messaging's rabbit driver already pulls in); popek itself never imports it.

Why: an RPC call sent to a topic before its server consumes is dropped (no queue is bound yet), and the
caller waits out its timeout (nova-compute's first ping to nova-conductor: 10 s). A consuming queue is
the exact condition; nova's "up" (a heartbeat) comes 5 s after its RPC server started
(nova.servicegroup.api.INITIAL_REPORTING_DELAY), so waiting for "up" costs 5 s for nothing.
Or the queue exists before its server starts: a topic queue declared here, as its server will declare it
(same properties), keeps what is sent to it until the server consumes.

Input on stdin, one JSON object (the password never goes on a command line):
{"host", "port", "user", "password", "vhost", "queues": [...], "timeout": s, "declare": {exchange: [topic...]}}.
"declare" (optional) first declares each topic exchange and, for each topic, the queue of that name bound to
it with the topic as routing key, as oslo.messaging's rabbit driver declares a server's topic queue with the
cloud's settings (amqp_durable_queues and amqp_auto_delete false, no HA nor quorum queue): not durable, not
auto-deleted, no arguments. A queue that exists with other properties is refused by the broker (406).
Output: one JSON line {"pending": [queues still without a consumer], "error": "last error",
"declared": [queues declared]}; exit 0 when none is pending and every declaration was made, 1 otherwise.
The broker restarts empty on every `up` (lifecycle wipes its database), so a queue found with a consumer is
the new process's.
"""
import json
import sys
import time


def declare(conn, bindings: dict) -> list:
    """Declare each exchange of `bindings` ({exchange: [topic, ...]}, type topic) and its topic queues."""
    done = []
    channel = conn.channel()
    try:
        for exchange, topics in bindings.items():
            channel.exchange_declare(exchange, "topic", durable=False, auto_delete=False)
            for topic in topics:
                channel.queue_declare(topic, durable=False, auto_delete=False)
                channel.queue_bind(topic, exchange, routing_key=topic)
                done.append(topic)
    finally:
        if channel.is_open:
            channel.close()
    return done


def main() -> int:
    import amqp

    req = json.loads(sys.stdin.read())
    pending = list(req["queues"])
    bindings = req.get("declare") or {}
    declared = None if bindings else []
    deadline = time.monotonic() + float(req.get("timeout", 60))
    conn = None
    error = ""
    while pending or declared is None:
        try:
            if conn is None:
                conn = amqp.Connection(host=f"{req['host']}:{req['port']}", userid=req["user"],
                                       password=req["password"], virtual_host=req["vhost"], connect_timeout=2)
                conn.connect()
            if declared is None:
                try:
                    declared = declare(conn, bindings)
                except amqp.exceptions.PreconditionFailed as exc:  # a queue of other properties: say so, stop
                    error = f"{type(exc).__name__}: {exc}"[:200]
                    break
            for queue in list(pending):
                channel = conn.channel()
                try:
                    consumers = channel.queue_declare(queue, passive=True).consumer_count
                except amqp.exceptions.NotFound:  # not declared yet; the broker closed this channel
                    continue
                channel.close()
                if consumers:
                    pending.remove(queue)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            conn = None
        if pending or declared is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    print(json.dumps({"pending": pending, "error": error, "declared": declared or []}), flush=True)
    return 1 if pending or declared is None else 0


if __name__ == "__main__":
    sys.exit(main())
