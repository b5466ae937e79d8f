"""A resource the run shares that cannot be made (its pair of instances gone ERROR, its routed network
refused by Neutron): every scenario that needs it is ÉCHEC (pytest `failed`, Allure `failed`, not
`broken`) with the cause measured once for the run and its component; never made again. Forged errors,
no cloud (the live fault: tests/integration/test_pair_faults.py)."""
import json
import types

import pytest
from allure_commons.model2 import Status
from openstack import exceptions as sdk_exc
from allure_pytest_bdd.utils import get_status

from popek.checks.cloud import shared as shared_mod
from popek.checks.cloud.compute import NoRoom, NothingToBoot
from popek.checks.cloud.shared import MakingFailed, RereadFailed, Shared, Unavailable
from popek.plugin import shared_unavailable

from tests.unit.test_shared import _Cloud, _patched
from tests.unit.test_shared_across_workers import FORK, Probe, calls, run_all

#: compute.wait_active's error when every nova-compute is disabled (live, 2026-12-07 09:44 UTC)
NO_HOST = AssertionError("l'instance popek-x-run-shared-1 est passée en ERROR : No valid host was found. — aucun "
                       "nova-compute en service : tous désactivés dans Nova (openstack compute service list : "
                       "status disabled) : nova-compute@compute1")


def _failing(error):
    calls = []

    def make():
        calls.append(1)
        raise error
    return make, calls


def test_a_pair_that_cannot_boot_is_a_failed_verdict_not_a_broken_one():
    make, calls = _failing(NO_HOST)
    shared = Shared(conn=None, ledger=None)
    got = []
    for _ in range(3):                      # three scenarios that need the pair
        with pytest.raises(AssertionError) as caught:
            shared.get("pair", make)
        got.append(caught.value)
    assert calls == [1], "the pair was made again by a later scenario"
    assert all(get_status(e) == Status.FAILED for e in got)        # Allure's ÉCHEC, not BROKEN
    assert len({str(e) for e in got}) == 1 and len({id(e) for e in got}) == 3
    message = str(got[0])
    assert "la paire d'instances du run : l'instance popek-x-run-shared-1 est passée en ERROR" in message
    assert "nova-compute@compute1" in message                       # the component, as wait_active named it
    assert "cause mesurée une fois pour tout le run, à " in message and "ne la refait pas" in message


def test_the_reports_message_is_the_cause_alone():
    """popek's makereport: the report (junit.xml's message, Allure's) is the cause, not the frames of the
    scenario that met it first, nor a "le cloud ne répond plus" found down its chain."""
    exc = Unavailable("pair", "No valid host", "09:44:21")
    assert shared_unavailable(exc) == str(exc)
    assert shared_unavailable(RuntimeError("x")) is None and shared_unavailable(None) is None


@pytest.mark.parametrize("error, kind", [
    (NoRoom("quota instances : 10 sur 10 utilisées"), NoRoom),    # IGNORÉ with the quota: kept
    (NothingToBoot("aucune image active"), NothingToBoot),         # IGNORÉ: nothing to boot
])
def test_a_missing_capability_stays_a_skip_not_a_failure(error, kind):
    make, calls = _failing(error)
    shared = Shared(conn=None, ledger=None)
    for _ in range(2):
        with pytest.raises(kind) as caught:
            shared.get("pair", make)
        assert not isinstance(caught.value, AssertionError)
    assert calls == [1]


@pytest.mark.parametrize("bug", [AttributeError("'NoneType' object has no attribute 'id'"),
                                 TypeError("boot() missing 1 required positional argument: 'flavor'"),
                                 KeyError("fixed_ips")])
def test_popeks_own_bug_is_broken_not_an_echec_blamed_on_the_cloud(bug):
    """hR F2: a TypeError, AttributeError or KeyError in popek's making code is the harness's error
    (pytest/Allure `broken`, its traceback kept), not « ressource partagée du run indisponible »; kept for
    the run like any other cause (not made again)."""
    make, calls = _failing(bug)
    shared = Shared(conn=None, ledger=None)
    for _ in range(2):
        with pytest.raises(MakingFailed) as caught:
            shared.get("pair", make)
        assert not isinstance(caught.value, AssertionError) and get_status(caught.value) == Status.BROKEN
        assert caught.value.__cause__ is bug and "indisponible" not in str(caught.value)
        assert "pas une cause du cloud" in str(caught.value) and type(bug).__name__ in str(caught.value)
    assert calls == [1]


@pytest.mark.parametrize("error, said", [
    (sdk_exc.HttpException("500: Server Error for url: http://10.0.0.1:9696/v2.0/routers", http_status=500,
                           request_id="req-1"), "HttpException : 500: Server Error"),
    (sdk_exc.ResourceTimeout("Timeout waiting for the server to come up"), "ResourceTimeout"),
    (TimeoutError("server ERROR: No valid host"), "No valid host"),
])
def test_a_cause_of_the_cloud_stays_unavailable(error, said):
    make, calls = _failing(error)
    with pytest.raises(Unavailable, match=said):
        Shared(conn=None, ledger=None).get("routed", make)


def test_a_cloud_that_stopped_answering_underneath_a_wrapper_is_the_clouds():
    import requests
    try:
        try:
            raise requests.ConnectionError("http://10.0.0.1:8774/v2.1/servers: Connection refused")
        except requests.ConnectionError as inner:
            raise ValueError("wrapped by some library") from inner
    except ValueError as wrapped:
        assert shared_mod.of_the_cloud(wrapped)
    assert not shared_mod.of_the_cloud(ValueError("plain"))


def test_a_reread_failure_is_this_workers_and_asked_again():
    make, calls = _failing(RereadFailed("relecture par id impossible : 503"))
    shared = Shared(conn=None, ledger=None)
    for _ in range(2):
        with pytest.raises(RereadFailed):
            shared.get("pair", make)
    assert calls == [1, 1]


def test_a_pair_made_on_a_routed_network_that_failed_says_the_networks_cause(monkeypatch):
    """pair() makes routed() inside: its scenarios say the network's cause (Neutron's), not a vaguer one."""
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))

    def no_router(conn):
        raise sdk_exc.HttpException("Neutron : création du routeur refusée (HTTP 500)", http_status=500)
    monkeypatch.setattr(shared_mod.network, "external_choice", no_router)
    with pytest.raises(Unavailable) as caught:
        shared.pair()
    assert "le réseau du run relié au réseau externe" in str(caught.value)
    assert "création du routeur refusée (HTTP 500)" in str(caught.value)
    with pytest.raises(Unavailable, match="création du routeur refusée"):
        shared.routed()


def test_a_listing_scenario_still_lists_the_pair_that_went_error(monkeypatch):
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ERROR"))
    server, why = shared.listed()
    assert server == "server-0" and "la paire d'instances du run" in why and "neutron-openvswitch-agent" in why


class _HttpError(Exception):
    """An openstacksdk HttpException as raised: its module is openstack's, it carries the request's url."""

    def __init__(self, message, url):
        super().__init__(message)
        self.url = url


_HttpError.__module__ = "openstack.exceptions"


def _conn(catalog):
    return types.SimpleNamespace(config=types.SimpleNamespace(
        get_service_catalog=lambda: types.SimpleNamespace(catalog=catalog)))


def test_an_api_refusal_names_the_catalogs_service_it_came_from():
    catalog = [{"type": "identity", "endpoints": [{"url": "http://10.0.0.1:5000/v3"}]},
               {"type": "compute", "endpoints": [{"url": "http://10.0.0.1:8774/v2.1"}]},
               {"type": "network", "endpoints": [{"url": "http://10.0.0.1:9696"}]}]
    error = _HttpError("500: Server Error for url: http://10.0.0.1:8774/v2.1/servers",
                       "http://10.0.0.1:8774/v2.1/servers")
    cause = shared_mod.cause_of(_conn(catalog), error)
    assert cause.startswith("_HttpError : 500: Server Error") and cause.endswith("(service compute du catalogue)")
    assert shared_mod.cause_of(_conn([]), error).endswith("/v2.1/servers")    # no catalog: the error alone


def asker(folder, out, error, all_asked):
    found = Probe(None, folder, "popek-0123abcd-run", ("private", "public"))
    try:
        def make():
            with open(folder / "calls", "a") as f:
                f.write("1\n")
            raise error
        found.get("pair", make)
        got = {"verdict": "RÉUSSI"}
    except AssertionError as exc:
        got = {"verdict": "ÉCHEC", "status": get_status(exc), "message": str(exc)}
    except Exception as exc:
        got = {"verdict": type(exc).__name__, "status": get_status(exc), "message": str(exc)}
    (folder / out).write_text(json.dumps(got))
    all_asked.wait(20)      # every worker still uses the run's resources when the others ask (else the last
    found.close()           # user would delete the state and a later worker start afresh)


def test_every_worker_gets_the_same_failed_verdict_and_the_makers_cause_and_time(tmp_path):
    all_asked = FORK.Barrier(3)
    run_all(*(FORK.Process(target=asker, args=(tmp_path, n, NO_HOST, all_asked)) for n in "abc"))
    got = [json.loads((tmp_path / n).read_text()) for n in "abc"]
    assert len(calls(tmp_path)) == 1, "another worker made the pair again"
    assert {g["verdict"] for g in got} == {"ÉCHEC"} and {g["status"] for g in got} == {Status.FAILED}
    assert len({g["message"] for g in got}) == 1
    assert "nova-compute@compute1" in got[0]["message"] and " UTC, par le premier scénario" in got[0]["message"]


def test_popeks_bug_in_a_resource_made_inside_another_is_told_once(monkeypatch):
    """pair() makes routed() inside: popek's bug there reaches pair()'s scenarios as that bug, not wrapped
    twice, and not as the cloud's (hR F2)."""
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    monkeypatch.setattr(shared_mod.network, "external_choice", lambda conn: None .id)
    with pytest.raises(MakingFailed) as caught:
        shared.pair()
    message = str(caught.value)
    assert message.count("erreur de popek") == 1 and "« routed »" in message and "AttributeError" in message
