"""The run's pair judged (hI, 2026-12-07): Shared.pair() asks its judge (probe.judge_pair, given by the steps)
whether the pair's image boots; on 'unbootable' the silent pair is deleted and a new one booted of the image
pick_image now takes (the one found not booting is in `avoid`, remembered for the run by the judge's caller).
The verdict's evidence (`judged`) reaches every worker with the pair's ids. A judgement that fails is evidence
lost, never the pair's failure. Fake compute (test_shared's), no cloud."""
import json
import types

from popek.checks.cloud import compute, probe
from popek.checks.cloud.shared import RunShared

from tests.unit.test_shared import _Cloud, _patched


class _Nova:
    """What the replacement asks of Nova: delete the silent pair, then see it gone."""

    def __init__(self):
        self.deleted = []

    def delete_server(self, server_id, ignore_missing=True):
        self.deleted.append(server_id)

    def get_server(self, server_id):
        return None             # gone


def _shared(monkeypatch, judge):
    cloud = _Cloud(accepted=4, ends="ACTIVE")
    shared = _patched(monkeypatch, cloud)
    avoided = {}
    monkeypatch.setattr(compute, "pick_image", lambda conn, avoid=(): "img-2" if "img-1" in avoid else "img-1")
    monkeypatch.setattr("popek.checks.cloud.shared.compute.quota_reason", lambda *a, **k: None)
    booted = []
    real_boot = cloud.boot

    def boot(conn, ledger, what, image, flavor, net, **kwargs):
        booted.append(image)
        return types.SimpleNamespace(id=real_boot(conn, ledger, what, image, flavor, net))
    monkeypatch.setattr(compute, "boot", boot)
    shared.conn = types.SimpleNamespace(compute=_Nova())
    shared.avoid = lambda: avoided
    shared.judge = lambda servers: judge(servers, avoided)
    return shared, booted


def test_a_pair_whose_image_does_not_boot_is_replaced_by_one_of_another_image(monkeypatch):
    judged = []

    def judge(servers, avoided):
        judged.append([s.id for s in servers])
        avoided["img-1"] = "l'image « noboot » img-1 ne démarre pas sur ce cloud"   # the caller's remember
        return probe.PairVerdict("unbootable", {"img-1": "« noboot » : n'a pas démarré (console muette 47 s)",
                                                "img-2": "« popek-tiny » : a démarré (sa console a écrit)"},
                                 image_id="img-1", finding=avoided["img-1"])
    shared, booted = _shared(monkeypatch, judge)
    pair = shared.pair()
    assert [s.id for s in pair] == ["server-2", "server-3"]           # a new pair
    assert booted == ["img-1", "img-1", "img-2", "img-2"]             # of the image that boots
    assert judged == [["server-0", "server-1"]]                       # judged once, not the new pair again
    assert shared.conn.compute.deleted == ["server-0", "server-1"]    # the silent pair gone at once
    assert shared.judged["img-1"].startswith("« noboot » : n'a pas démarré")
    assert shared.judged_outcome == "unbootable"                      # C20 counts the images as checked (F3)
    assert shared.pair() is pair                                      # made once for the run


def test_a_pair_whose_image_boots_is_kept(monkeypatch):
    shared, booted = _shared(monkeypatch, lambda servers, avoided: probe.PairVerdict(
        "booted", {"img-1": "« popek-tiny » : a démarré (la console de la paire du run a écrit en 3 s)"}))
    assert [s.id for s in shared.pair()] == ["server-0", "server-1"] and booted == ["img-1", "img-1"]
    assert shared.conn.compute.deleted == []
    assert shared.judged == {"img-1": "« popek-tiny » : a démarré (la console de la paire du run a écrit en 3 s)"}


def test_a_judgement_that_fails_is_evidence_lost_not_the_pairs_failure(monkeypatch):
    def judge(servers, avoided):
        raise RuntimeError("console: 503 Service Unavailable")
    shared, booted = _shared(monkeypatch, judge)
    assert [s.id for s in shared.pair()] == ["server-0", "server-1"]
    assert shared.judged == {"?": "non jugée : RuntimeError : console: 503 Service Unavailable"}
    assert shared.judged_outcome == "error"                           # C20: « non vérifié » (F3)


def test_without_a_judge_the_pair_is_as_before(monkeypatch):
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    assert shared.pair() == ["server-0", "server-1"] and shared.judged == {}


def test_the_judgement_reaches_every_worker_with_the_pairs_ids():
    class Conn:
        class compute:
            get_server = staticmethod(lambda i: types.SimpleNamespace(id=i))

    maker = RunShared(Conn(), "/nonexistent", "popek-0123abcd-run", ("private", "public"))
    maker.judged = {"img-1": "« noboot » : n'a pas démarré (console muette 47 s, une autre image démarre)"}
    maker.judged_outcome = "undecided"
    record = json.loads(json.dumps(maker._dump("pair", [types.SimpleNamespace(id="s1")], None)))
    reader = RunShared(Conn(), "/nonexistent", "popek-0123abcd-run", ("private", "public"))
    servers, error = reader._load("pair", record)
    assert error is None and [s.id for s in servers] == ["s1"]
    assert reader.judged == maker.judged and reader.judged_outcome == "undecided"
