"""components.asked_bus_alarms (C31, F6 of hR's review): the embedded RabbitMQ asked for its alarms, not only its log's
last 4 MiB. An alarm set long ago, then buried under > 4 MiB of connection lines (publishers retrying under the
alarm log ~20 000 lines per 4 MiB), is still named; the broker's answer is the shape `rabbitmq-diagnostics -q alarms
--formatter json` prints (RabbitMQ 3.10, measured on the embedded cloud: `{"alarms":[],"node":…,"result":"ok"}`)."""
import subprocess

from popek.checks.cloud import components

from test_diagnosis_bus_alarm import BOOT, SET

CONNECTION = ("2026-12-07 16:31:00.000000+00:00 [info] <0.9999.0> accepting AMQP connection <0.9999.0> "
              "(127.0.0.1:40000 -> 127.0.0.1:5672)\n")
MEMORY = '{"alarms":[{"node":"rabbit@localhost","resource":"memory","type":"resource_limit"}],' \
         '"node":"rabbit@localhost","result":"ok"}\n'
NONE = '{"alarms":[],"node":"rabbit@localhost","result":"ok"}\n'


def _cloud(tmp_path, log: str):
    (tmp_path / "log").mkdir(parents=True)
    (tmp_path / "log" / "rabbitmq.log").write_text(log)
    return tmp_path


def test_an_alarm_buried_under_4_mib_of_connections_is_still_named(tmp_path):
    root = _cloud(tmp_path, BOOT + SET + CONNECTION * ((4 << 20) // len(CONNECTION) + 100))
    assert components.rabbit_alarms(root) == []  # the waits' cheap tail has lost it
    alarms, source = components.asked_bus_alarms(root, ask=lambda r: MEMORY)
    assert alarms == ["le bus RabbitMQ a une alarme de mémoire en cours (signalée par le broker) : il bloque les "
                      "connexions qui publient, chaque appel RPC du cloud attend"]
    assert source == "rabbitmq-diagnostics alarms"


def test_the_logs_time_and_measure_join_the_brokers_answer(tmp_path):
    alarms, _ = components.asked_bus_alarms(_cloud(tmp_path, BOOT + SET), ask=lambda r: MEMORY)
    assert alarms == ["le bus RabbitMQ a une alarme de mémoire en cours (depuis 2026-12-07 16:30:02) : il bloque "
                      "les connexions qui publient, chaque appel RPC du cloud attend (Memory used:137134080 "
                      "allowed:2527618)"]


def test_the_broker_says_none_although_the_log_says_set(tmp_path):
    # the broker is the authority: an alarm whose clearing line is not in the tail is not in effect
    assert components.asked_bus_alarms(_cloud(tmp_path, BOOT + SET), ask=lambda r: NONE) == (
        [], "rabbitmq-diagnostics alarms")


def test_a_broker_that_cannot_be_asked_falls_back_to_the_log_and_says_so(tmp_path):
    def refused(root):
        raise subprocess.TimeoutExpired(components.DIAGNOSTICS, 60)

    for ask in (refused, lambda r: "Error: unable to perform an operation on node\n"):
        alarms, source = components.asked_bus_alarms(_cloud(tmp_path / str(id(ask)), BOOT + SET), ask=ask)
        assert len(alarms) == 1 and "depuis 2026-12-07 16:30:02" in alarms[0]
        assert source.startswith("journal du broker (4 derniers Mio) seulement : broker non interrogé")
