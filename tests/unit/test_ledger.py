"""The cleanup ledger's bookkeeping (pure logic: a recording stand-in for the SDK connection)."""
import re

import pytest
from openstack import exceptions as sdk_exc

from popek.checks.cloud import ledger as ledger_mod
from popek.checks.cloud.ledger import Ledger


class Proxy:
    """Records the deletions asked of one SDK proxy; ids in `gone` answer 404 like a real cloud."""

    def __init__(self, calls, gone=(), fail=()):
        self.calls, self.gone, self.fail = calls, set(gone), set(fail)

    def __getattr__(self, method):
        def call(resource, *args, **kwargs):
            rid = getattr(resource, "id", resource)
            self.calls.append((method, rid))
            if rid in self.fail:
                raise RuntimeError("boom: 500")
            if rid in self.gone and not kwargs.get("ignore_missing"):
                raise sdk_exc.NotFoundException("gone")
            return None
        return call


class Conn:
    def __init__(self, gone=(), fail=(), listing=None):
        self.calls = []
        self.network = Proxy(self.calls, gone, fail)
        self.compute = Proxy(self.calls, gone, fail)
        self.current_project_id = "p"
        self.listing = listing or {}


PREFIX = "popek-0123abcd-gw0"


def test_names_carry_the_run_prefix_and_the_kind():
    name = Ledger(Conn(), PREFIX).name("server")
    assert re.fullmatch(r"popek-0123abcd-gw0-server-\d+", name)
    assert ledger_mod.NAME_RE.match(name).group(1) == "0123abcd"


def test_a_prefix_that_the_sweep_could_not_recognise_is_refused():
    with pytest.raises(ValueError):
        Ledger(Conn(), "mytest")


def test_run_ids_are_eight_hex_and_shared_by_xdist_workers():
    assert re.fullmatch(r"[0-9a-f]{8}", ledger_mod.new_run_id())
    seed = "5f2c8e0b9d1a4c3e8f7a6b5c4d3e2f1a"
    assert ledger_mod.new_run_id(seed) == ledger_mod.new_run_id(seed) == "5f2c8e0b"


@pytest.mark.parametrize("seed", ["ci-job-1234", "NOTHEX!!", "abc"])
def test_a_free_text_testrunuid_still_gives_a_prefix_the_sweep_recognises(seed):
    run = ledger_mod.new_run_id(seed)
    assert re.fullmatch(r"[0-9a-f]{8}", run) and run == ledger_mod.new_run_id(seed)
    Ledger(Conn(), f"popek-{run}-main")


def test_cleanup_deletes_in_reverse_order_of_creation():
    conn = Conn()
    book = Ledger(conn, PREFIX)
    book.record("network", "n", id="net")
    book.record("security_group", "g", id="sg")
    book.record("keypair", "k", id="key")
    assert book.cleanup() == []
    assert conn.calls == [("delete_keypair", "key"), ("delete_security_group", "sg"), ("delete_network", "net")]


def test_already_gone_counts_as_deleted_and_a_failure_does_not_stop_the_rest():
    conn = Conn(gone={"sg"}, fail={"key"})
    book = Ledger(conn, PREFIX)
    book.record("network", "n", id="net")
    book.record("security_group", "g", id="sg")
    book.record("keypair", "k", id="key")
    problems = book.cleanup()
    assert len(problems) == 1 and problems[0].startswith("keypair k (key): RuntimeError")
    assert [c[1] for c in conn.calls] == ["key", "sg", "net"]
    assert [e.done for e in book.entries] == [True, True, False]


def test_every_server_is_asked_to_go_before_the_first_wait_so_their_deletions_overlap():
    conn = Conn()
    book = Ledger(conn, PREFIX)
    book.record("server", "a", id="s1")
    book.record("floating_ip", "f", id="fip")
    book.record("server", "b", id="s2")
    book.record("keypair", "k", id="key")
    assert book.cleanup() == []
    first_wait = conn.calls.index(("get_server", "s2"))
    assert conn.calls[:first_wait] == [("delete_keypair", "key"), ("delete_server", "s1"), ("delete_server", "s2"),
                                       ("delete_server", "s2")]
    assert conn.calls.index(("delete_ip", "fip")) < conn.calls.index(("get_server", "s1"))
    assert all(e.done for e in book.entries)


def test_a_second_cleanup_only_retries_what_failed():
    conn = Conn(fail={"key"})
    book = Ledger(conn, PREFIX)
    book.record("network", "n", id="net")
    book.record("keypair", "k", id="key")
    book.cleanup()
    conn.compute.fail.clear()
    conn.calls.clear()
    assert book.cleanup() == [] and conn.calls == [("delete_keypair", "key")]


def test_create_records_the_name_before_the_call_so_an_interrupted_create_is_found_by_name(monkeypatch):
    conn = Conn()
    book = Ledger(conn, PREFIX)

    def make(name):
        raise KeyboardInterrupt  # Ctrl-C while the POST is in flight: no id came back

    with pytest.raises(KeyboardInterrupt):
        book.create("network", "net", make)
    entry = book.entries[0]
    assert entry.id is None and entry.name.startswith(PREFIX + "-net-")
    monkeypatch.setattr(ledger_mod, "list_dated", lambda c, kind: [("real-id", entry.name, None), ("other", "x", None)])
    assert book.cleanup() == []
    assert conn.calls == [("delete_network", "real-id")]


def test_the_sweep_takes_other_runs_only(monkeypatch):
    names = {"network": [("a", "popek-0123abcd-gw0-net-1", None), ("b", "popek-ffffffff-main-net-2", None),
                         ("c", "students-net", None), ("d", "popek-notahex!-net", None)],
             "keypair": [("popek-ffffffff-main-key-3", "popek-ffffffff-main-key-3", None)]}
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: names.get(kind, []))
    found = ledger_mod.orphans(Conn(), current_run="0123abcd")
    assert [(e.kind, e.id) for e in found] == [("network", "b"), ("keypair", "popek-ffffffff-main-key-3")]
    every = ledger_mod.orphans(Conn(), current_run=None)
    assert {e.id for e in every} == {"a", "b", "popek-ffffffff-main-key-3"}


def test_sweep_dry_run_deletes_nothing(monkeypatch):
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: [("b", "popek-ffffffff-main-x-2", None)]
                        if kind == "network" else [])
    conn = Conn()
    found, problems = ledger_mod.sweep(conn, None, dry_run=True)
    assert len(found) == 1 and problems == [] and conn.calls == []
    ledger_mod.sweep(conn, None)
    assert conn.calls == [("delete_network", "b")]


def test_sweep_order_deletes_holders_first():
    order = ledger_mod.SWEEP_ORDER
    assert order.index("server") < order.index("volume") < order.index("container")
    assert order.index("router") < order.index("subnet") < order.index("network")
    assert set(order) <= set(ledger_mod.DELETERS)


def test_a_conflict_is_retried_then_succeeds():
    calls = []

    def delete(rid, ignore_missing=True):
        calls.append(rid)
        if len(calls) < 3:
            raise sdk_exc.ConflictException("in use")

    ledger_mod.ignore_gone(delete, "sg", pause=0)
    assert calls == ["sg", "sg", "sg"]


def test_a_client_error_is_not_retried():
    calls = []

    def delete(rid, ignore_missing=True):
        calls.append(rid)
        raise sdk_exc.BadRequestException("no")

    with pytest.raises(sdk_exc.BadRequestException):
        ledger_mod.ignore_gone(delete, "sg", pause=0)
    assert calls == ["sg"]


def test_a_run_with_a_young_resource_is_alive_and_kept_whole(monkeypatch):
    now = 1_800_000_000.0
    import datetime as dt
    stamp = lambda age: dt.datetime.fromtimestamp(now - age, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    names = {"server": [("s1", "popek-aaaaaaaa-main-server-1", stamp(60))],          # young: run aaaaaaaa alive
             "keypair": [("popek-aaaaaaaa-main-key-2", "popek-aaaaaaaa-main-key-2", None),  # no date: follows its run
                         ("popek-bbbbbbbb-main-key-3", "popek-bbbbbbbb-main-key-3", None)],
             "network": [("n1", "popek-bbbbbbbb-main-net-4", stamp(3600))]}             # old: run bbbbbbbb dead
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: names.get(kind, []))
    kept_alive = ledger_mod.orphans(Conn(), None, min_age=1800, now=now)
    assert sorted(e.name for e in kept_alive) == ["popek-bbbbbbbb-main-key-3", "popek-bbbbbbbb-main-net-4"]
    assert len(ledger_mod.orphans(Conn(), None, min_age=0, now=now)) == 4


def test_api_timestamps_of_every_service_parse():
    assert ledger_mod.age_seconds("2026-11-25T11:36:59Z", now=1795606619.0 + 1) is not None
    assert ledger_mod.age_seconds("2026-11-25T11:36:59.000000") is not None
    assert ledger_mod.age_seconds("2026-11-25T11:36:59+00:00") is not None
    assert ledger_mod.age_seconds(None) is None and ledger_mod.age_seconds("garbage") is None


def _stamp(now, age):
    import datetime as dt
    return dt.datetime.fromtimestamp(now - age, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_fresh_heartbeat_keeps_a_long_run_whose_resources_are_all_old(monkeypatch):
    now = 1_800_000_000.0
    names = {"network": [("n1", "popek-aaaaaaaa-gw0-net-1", _stamp(now, 7200)),
                         ("n2", "popek-bbbbbbbb-gw0-net-2", _stamp(now, 7200))],
             "security_group": [("h1", "popek-aaaaaaaa-gw0-heartbeat-3", _stamp(now, 7200)),
                                ("h2", "popek-bbbbbbbb-gw0-heartbeat-4", _stamp(now, 7200))]}
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: names.get(kind, []))
    # aaaaaaaa refreshed its heartbeat 2 minutes ago: alive; bbbbbbbb's stopped an hour ago: dead
    monkeypatch.setattr(ledger_mod, "heartbeat_ages", lambda conn, now=None: {"aaaaaaaa": 120.0, "bbbbbbbb": 3600.0})
    swept = ledger_mod.orphans(Conn(), None, min_age=1800, now=now)
    assert sorted(e.id for e in swept) == ["h2", "n2"]


def test_a_run_with_only_undated_resources_and_no_heartbeat_is_kept_unless_the_age_is_zero(monkeypatch):
    names = {"keypair": [("popek-cccccccc-main-key-1", "popek-cccccccc-main-key-1", None)],
             "container": [("popek-cccccccc-main-c-2", "popek-cccccccc-main-c-2", None)]}
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: names.get(kind, []))
    assert ledger_mod.orphans(Conn(), None, min_age=1800) == []
    assert len(ledger_mod.orphans(Conn(), None, min_age=0)) == 2


def test_a_worker_sweeps_its_own_prefix_only_at_exit(monkeypatch):
    names = {"network": [("a", "popek-0123abcd-gw0-net-1", None), ("b", "popek-0123abcd-gw1-net-2", None),
                         ("c", "popek-ffffffff-gw0-net-3", None)]}
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: names.get(kind, []))
    found = ledger_mod.orphans(Conn(), "0123abcd", prefix="popek-0123abcd-gw0")
    assert [e.id for e in found] == ["a"]


def test_a_deletion_that_times_out_is_a_leftover_with_its_id_never_deleted():
    class Compute:
        def delete_server(self, *a, **k):
            return None

        def get_server(self, server_id):
            return object()             # never goes

    conn = Conn()
    conn.compute = Compute()
    book = Ledger(conn, PREFIX, timeout=1)
    book.record("server", "popek-0123abcd-gw0-server-1", id="srv-42")
    problems = book.cleanup()
    assert len(problems) == 1 and "srv-42" in problems[0] and "laissée en place" in problems[0]
    assert book.entries[0].done is False


def test_sigterm_interrupts_like_ctrl_c():
    import os
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert ledger_mod.terminate_like_ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            import time
            time.sleep(1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_during_cleanup_waits_for_the_cleanup_to_end():
    import os
    import signal

    conn = Conn()
    book = Ledger(conn, PREFIX)
    book.record("network", "n", id="net")
    book.record("keypair", "k", id="key")
    deletions = conn.compute

    class KilledWhileDeleting:
        def __getattr__(self, method):
            def call(*a, **k):
                os.kill(os.getpid(), signal.SIGTERM)    # CI cancels the job mid-cleanup
                return getattr(deletions, method)(*a, **k)
            return call
    conn.compute = KilledWhileDeleting()
    with pytest.raises(KeyboardInterrupt):
        book.cleanup()
    assert [e.done for e in book.entries] == [True, True]


def test_a_disabled_service_is_no_leftover_for_the_cleanup_nor_the_sweep(monkeypatch):
    def listing(conn, kind):
        if kind == "volume":
            raise sdk_exc.ServiceDisabledException("Service 'block-storage' is disabled")
        return []
    monkeypatch.setattr(ledger_mod, "list_dated", listing)
    book = Ledger(Conn(), PREFIX)
    book.record("volume", PREFIX + "-vol-1")        # recorded before a create that could not happen
    assert book.cleanup() == [] and book.entries[0].done
    assert ledger_mod.orphans(Conn(), None) == []


def test_a_port_whose_groups_a_scenario_changed_gets_them_back_before_its_group_goes():
    calls = []

    class Network:
        def update_port(self, port, **change):
            calls.append(("update_port", port, change))

        def delete_security_group(self, group, ignore_missing=False):
            calls.append(("delete_security_group", group))

    conn = Conn()
    conn.network = Network()
    book = Ledger(conn, PREFIX)
    book.record("security_group", "sg-distant", id="sg-new")
    book.record("port_security_groups", "", id="port-1", groups=["sg-ssh"])
    assert book.cleanup() == []
    assert calls == [("update_port", "port-1", {"security_group_ids": ["sg-ssh"]}),
                     ("delete_security_group", "sg-new")]


def test_a_kind_the_cloud_refuses_to_list_is_never_said_clean(monkeypatch):
    """F6: a 403 on a listing (a policy or a fault refusing a member its servers) was taken for "no orphan"
    for every account; now the sweep reports the kind unverified, except for a read-only account."""
    from types import SimpleNamespace as NS

    class Servers:
        def servers(self):
            raise sdk_exc.ForbiddenException("ForbiddenException: 403", http_status=403,
                                             details="Policy doesn't allow os_compute_api:servers:index")
    monkeypatch.setattr(ledger_mod, "list_dated", lambda conn, kind: (
        list(conn.compute.servers()) if kind == "server" else
        [("b", "popek-ffffffff-main-x-2", None)] if kind == "network" else []))
    conn = NS(compute=Servers())
    found = ledger_mod.orphans(conn, None)
    assert [e.id for e in found] == ["b"] and list(found.unverified) == ["server"]
    found, problems = ledger_mod.sweep(conn, None, dry_run=True)
    assert problems == ["non vérifié : server (le cloud refuse à ce compte de les lister : "
                        "Policy doesn't allow os_compute_api:servers:index)"]
    assert ledger_mod.sweep(conn, None, dry_run=True, read_only=True)[1] == []     # a reader made none
