"""components.bus_alarms: a RabbitMQ resource alarm (memory, disk) in effect, read from the broker's own log: every
process alive, the bus greeting, every publisher blocked (hF2's fault, 2026-12-07: `rabbitmqctl
set_vm_memory_high_watermark 0.0001` on the embedded cloud). The lines are the embedded RabbitMQ's, as logged then."""
from popek.checks.cloud import components

BOOT = """2026-12-07 16:11:37.362142+00:00 [info] <0.223.0> Running boot step rabbit_alarm defined by app rabbit
2026-12-07 16:11:37.368507+00:00 [info] <0.288.0> Memory high watermark set to 9642 MiB (10110473011 bytes) of 24105 MiB (25276182528 bytes) total
"""
SET = """2026-12-07 16:30:02.785471+00:00 [info] <0.288.0> Memory high watermark set to 2 MiB (2527618 bytes) of 24105 MiB (25276182528 bytes) total
2026-12-07 16:30:02.785883+00:00 [info] <0.288.0> vm_memory_high_watermark set. Memory used:137134080 allowed:2527618
2026-12-07 16:30:02.786000+00:00 [warning] <0.286.0> memory resource limit alarm set on node rabbit@localhost.
2026-12-07 16:30:02.786000+00:00 [warning] <0.286.0> 
2026-12-07 16:30:02.786000+00:00 [warning] <0.286.0> **********************************************************
2026-12-07 16:30:02.786000+00:00 [warning] <0.286.0> *** Publishers will be blocked until this alarm clears ***
2026-12-07 16:30:02.786000+00:00 [warning] <0.286.0> **********************************************************
"""
CLEARED = "2026-12-07 16:33:40.100000+00:00 [warning] <0.286.0> memory resource limit alarm cleared on node rabbit@localhost\n"


def test_an_alarm_in_effect_is_named_with_rabbitmqs_measure():
    assert components.bus_alarms(BOOT + SET) == [
        "le bus RabbitMQ a une alarme de mémoire en cours (depuis 2026-12-07 16:30:02) : il bloque les connexions qui "
        "publient, chaque appel RPC du cloud attend (Memory used:137134080 allowed:2527618)"]


def test_a_cleared_alarm_or_a_restart_since_is_none():
    assert components.bus_alarms(BOOT) == []
    assert components.bus_alarms(BOOT + SET + CLEARED) == []
    assert components.bus_alarms(BOOT + SET + BOOT) == []


def test_a_disk_alarm_too():
    disk = ("2026-12-07 17:00:00.000000+00:00 [info] <0.300.0> Free disk space is insufficient. Free bytes: 1000. "
            "Limit: 50000000\n2026-12-07 17:00:00.000001+00:00 [warning] <0.286.0> disk resource limit alarm set on "
            "node rabbit@localhost.\n")
    said = components.bus_alarms(BOOT + disk)
    assert len(said) == 1 and "alarme d'espace disque" in said[0] and "Free bytes: 1000. Limit: 50000000" in said[0]
