"""Wait until RabbitMQ queues have a consumer: runs INSIDE the cloud's own venv (py-amqp, which
oslo.messaging's rabbit driver already pulls in); popek itself never imports it.

Why: an RPC call sent to a topic before its server consumes is dropped (no queue is bound yet), and the
caller waits out its timeout (nova-compute's first ping to nova-conductor: 10 s). A consuming queue is
the exact condition; nova's "up" (a heartbeat) comes 5 s after its RPC server started
(nova.servicegroup.api.INITIAL_REPORTING_DELAY), so waiting for "up" costs 5 s for nothing.

Input on stdin, one JSON object (the password never goes on a command line):
{"host", "port", "user", "password", "vhost", "queues": [...], "timeout": s}.
Output: one JSON line {"pending": [queues still without a consumer], "error": "last error"}; exit 0
when none is pending, 1 otherwise. The broker restarts empty on every `up` (lifecycle wipes its
database), so a queue found with a consumer is the new process's.
"""
import json
import sys
import time


def main() -> int:
    import amqp

    req = json.loads(sys.stdin.read())
    pending = list(req["queues"])
    deadline = time.monotonic() + float(req.get("timeout", 60))
    conn = None
    error = ""
    while pending:
        try:
            if conn is None:
                conn = amqp.Connection(host=f"{req['host']}:{req['port']}", userid=req["user"],
                                       password=req["password"], virtual_host=req["vhost"], connect_timeout=2)
                conn.connect()
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
        if pending:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    print(json.dumps({"pending": pending, "error": error}), flush=True)
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main())
