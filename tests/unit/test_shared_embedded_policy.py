"""Neutron's policy refusing the run's router on the EMBEDDED cloud is a fault, not the cloud's choice: popek
writes that policy (its members create networks and routers), so a refusal there means someone changed it
(a file in neutron's policy.d). ÉCHEC naming Neutron's policy, the refused rule, the API's words and the policy
files that name the rule; on any other cloud the same refusal stays IGNORÉ « la politique de ce cloud, pas une
panne » (64b4a96). Forged: the 403 as openstacksdk raises it, policy files in a temporary state directory."""
import pytest
from allure_commons.model2 import Status
from allure_pytest_bdd.utils import get_status
from openstack import exceptions as sdk_exc

from popek.checks.cloud import compute, shared as shared_mod
from popek.checks.cloud.shared import RunShared, Unavailable

from tests.unit.test_shared import _Cloud, _patched

WORDS = "(rule:create_router) is disallowed by policy"


def _refusing(monkeypatch, details=WORDS):
    def routed_to_external(conn, ledger):
        raise sdk_exc.ForbiddenException(message="403", details=details)
    monkeypatch.setattr(shared_mod.network, "routed_to_external", routed_to_external)


def _embedded(tmp_path, **files):
    """A state directory like the embedded cloud's, with `files` (name -> text) in etc/neutron/policy.d."""
    policy_d = tmp_path / "etc" / "neutron" / "policy.d"
    policy_d.mkdir(parents=True)
    for name, text in files.items():
        (policy_d / name).write_text(text)
    return tmp_path


def test_on_the_embedded_cloud_a_router_refused_by_policy_fails_naming_the_policy_and_its_file(monkeypatch, tmp_path):
    root = _embedded(tmp_path, **{"popek-hE.yaml": '"create_router": "rule:admin_only"\n', "other.yaml": "{}\n"})
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    shared.embedded = root
    _refusing(monkeypatch)
    with pytest.raises(AssertionError) as caught:
        shared.routed()
    exc = caught.value
    assert isinstance(exc, Unavailable) and not isinstance(exc, compute.NothingToBoot), repr(exc)
    assert get_status(exc) == Status.FAILED           # ÉCHEC, not IGNORÉ nor broken
    said = str(exc)
    for needle in ("la politique de Neutron du cloud embarqué refuse au projet du run create_router",
                   f"HTTP 403 : {WORDS}", "une panne, pas un choix du cloud",
                   f"fichier(s) de politique qui nomment create_router : {root}/etc/neutron/policy.d/popek-hE.yaml"):
        assert needle in said, said
    assert "other.yaml" not in said and "la politique de ce cloud, pas une panne" not in said
    # its trace: Neutron's 403, not Refused's « la politique de ce cloud, pas une panne » (live 16:32, in the report)
    assert isinstance(exc.__cause__.__cause__, sdk_exc.ForbiddenException), repr(exc.__cause__.__cause__)
    with pytest.raises(Unavailable):                  # the next scenario: the same cause, not made again
        shared.routed()


def test_the_pair_on_the_embedded_cloud_is_not_booted_around_the_refused_router(monkeypatch, tmp_path):
    """Before: _boot_pair took the Refused as a provider-network cloud's and booted on the project's network."""
    cloud = _Cloud(accepted=2, ends="ACTIVE")
    shared = _patched(monkeypatch, cloud)
    shared.embedded = _embedded(tmp_path)
    _refusing(monkeypatch)
    with pytest.raises(Unavailable, match="aucun fichier de politique sous .*etc/neutron"):
        shared.pair()
    assert cloud.created == []


def test_another_policy_file_is_named_when_none_names_the_rule(monkeypatch, tmp_path):
    root = _embedded(tmp_path, **{"x.yaml": '"create_network": "rule:admin_only"\n'})
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    shared.embedded = root
    _refusing(monkeypatch)
    with pytest.raises(Unavailable, match=r"aucun fichier de politique ne nomme create_router ; fichier\(s\) de "
                                          r"politique présents : .*x\.yaml"):
        shared.routed()


def test_on_any_other_cloud_the_same_refusal_stays_the_clouds_policy(monkeypatch):
    shared = _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    _refusing(monkeypatch)
    with pytest.raises(compute.Refused, match="la politique de ce cloud, pas une panne"):
        shared.routed()


def test_the_fault_reaches_every_worker_as_a_fault(monkeypatch, tmp_path):
    root = _embedded(tmp_path / "state", **{"p.yaml": '"create_router": "!"\n'})
    (tmp_path / "run").mkdir()
    _patched(monkeypatch, _Cloud(accepted=2, ends="ACTIVE"))
    _refusing(monkeypatch)
    first = RunShared(None, tmp_path / "run", "popek-0123abcd-run", ("private", "public"), embedded=root)
    with pytest.raises(Unavailable):
        first.routed()
    other = RunShared(None, tmp_path / "run", "popek-0123abcd-run", ("private", "public"), embedded=root)
    with pytest.raises(Unavailable, match="p.yaml") as caught:
        other.routed()
    assert not isinstance(caught.value, compute.NothingToBoot)
