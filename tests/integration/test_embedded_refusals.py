"""The embedded cloud's own refusals, and an image the probe found broken (hE, 2026-12-07).

| fault | claims | what the run must say | before the fix |
|---|---|---|---|
| Neutron's policy of the EMBEDDED cloud refuses create_router to the run's project (a policy.d file) | C24 | ÉCHEC « la politique de Neutron du cloud embarqué refuse au projet du run create_router (HTTP 403 : …) : popek écrit cette politique … une panne, pas un choix du cloud ; fichier(s) de politique qui nomment create_router : …/policy.d/… » | IGNORÉ « ce cloud refuse à ce compte un routeur … : la politique de ce cloud, pas une panne » |
| the project's smallest image does not boot (a private image of 1 MiB of zeros), popek-tiny does; no admin credentials, so the probe boots | C20 (C26's dataplane scenario: RÉUSSI on the other image) | C20 ÉCHEC « image active qui ne démarre pas sur ce cloud : l'image « popek-hE-noboot » … ne démarre pas sur ce cloud, l'image « popek-tiny » … y démarre » | C20 RÉUSSI; every dataplane scenario ÉCHEC naming the image, and every scenario still booting it |
| the same image, the run reaching the EMBEDDED cloud as popek recognises it (admin credentials: no probe instance boots) | C20 (C26's dataplane scenario: RÉUSSI on the other image) | C20 ÉCHEC « image active qui ne démarre pas sur ce cloud : l'image « popek-hI-noboot » … ne démarre pas sur ce cloud, l'image « popek-tiny » … y démarre : … (constat : l'instance de la paire du run … est ACTIVE et n'a rien écrit sur sa console en … s …) », from the run's own pair (probe.judge_pair) | C20 RÉUSSI (« non vérifié : aucune instance sonde (identifiants admin …) »); the pair booted of the image, C26's dataplane scenario ÉCHEC « l'instance ne démarre pas (calcul) : sa console est vide … s après ACTIVE » |

On the embedded cloud popek writes Neutron's policy (its members create networks and routers): a refusal there is a
fault (someone changed policy.d), not the operator's choice it is on any other cloud (test_any_cloud_provider: the
same refusal reached as a foreign cloud stays IGNORÉ). The run must know it is on the embedded cloud: the fresh
project's account is the user's clouds.yaml entry `popek` with the embedded Keystone's address, as
connection.connect recognises the embedded cloud (embedded_root), while only that project is refused (a quoted
literal of its id in the rule, test_any_cloud_provider.refused_rules), so no other run sees a change.

Live, hE 2026-12-07 (flock -s, each alone): router refused 16:33-16:34 UTC, passed in 19 s; the same test run on
a35f620 (popek before 703f8b2, PYTHONPATH remap) got C24 IGNORÉ « ce cloud refuse à ce compte un routeur vers le
réseau externe (Neutron, create_router) (HTTP 403 : (rule:create_router and (rule:create_router:external_gateway_info
and (…network_id))) is disallowed by policy) : la politique de ce cloud, pas une panne ». Image that does not boot
16:35-16:38 UTC, passed in 169 s: C20 ÉCHEC « image active qui ne démarre pas sur ce cloud : l'image
« popek-hE-noboot » dd8ae659-… ne démarre pas sur ce cloud, l'image « popek-tiny » 3420af78-… y démarre : … (constat :
l'instance sonde … est ACTIVE et n'a rien écrit sur sa console en 92 s …) », C26's dataplane scenario RÉUSSI on the
pair (popek-tiny), no « plan de données en panne » anywhere. The same test on a35f620 (16:57-16:59 UTC, 130 s): C20
RÉUSSI « Les images sont des modèles prêts à démarrer », C26's dataplane scenario ÉCHEC (the probe's finding).

Live, hI 2026-12-07, the admin case (the run reaching the embedded cloud as `popek`, -n 2, C20 and C26): before
(606432d's parent 115fb92, PYTHONPATH remap, flock -s 19:51-19:54, 167 s): C20 RÉUSSI (« non vérifié : aucune
instance sonde (identifiants admin : l'état des hyperviseurs a répondu) »), C26's dataplane scenario ÉCHEC
« l'instance ne démarre pas (calcul) : sa console est vide 92 s après ACTIVE », C26's keypair scenario RÉUSSI.
After (a1be7da, flock -x 20:39-20:41, passed in 130 s): C20 ÉCHEC « … l'image « popek-hI-noboot » 5dbec7e5-… ne
démarre pas sur ce cloud, l'image « popek-tiny » 3420af78-… y démarre : … (constat : l'instance de la paire du run
9830eb7f-… est ACTIVE et n'a rien écrit sur sa console en 74 s … ; les 2 instances de la paire du run n'ont écrit
aucun démarrage, l'instance de l'image « popek-tiny » démarrée après elles sur ce cloud a écrit le sien) », C26's
dataplane scenario RÉUSSI on the new pair (popek-tiny), its keypair scenario RÉUSSI. The non-admin case on a1be7da
(flock -s 20:13-20:16): passed in 176 s, unchanged.

Each case: a fresh member-only project (test_foreign_project._project: everything in it, the user and the project
deleted in the end; the policy file removed and the default checked back, test_live_paths.policy_rules).
The router case runs in CI (~20 s); the image cases are opt-in (POPEK_SLOW_FAULTS=1: ~3-4 min, the probe waits 90 s for a
silent console). Outside CI, under `flock -s /tmp/popek-cloud.lock` (only the test's project is refused, only it sees
its image).
"""
from __future__ import annotations

import io
import os
import secrets
import time

import pytest
import yaml

from popek import paths

from faults import slow
from helpers import allure_results, run_popek, running_cloud
from test_faults_api import claims_of, label, message, record
from test_foreign_project import _project, _run
from test_live_paths import policy_rules

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="changer la politique de Neutron du cloud embarqué")


def _run_as_embedded(tmp_path, entry, *args):
    """`popek run cloud --os-cloud popek` with `entry` (the fresh project's account, the embedded Keystone's
    address) as the user's clouds.yaml entry `popek`: the embedded cloud as popek recognises it."""
    home = tmp_path / "home"
    (home / ".config" / "openstack").mkdir(parents=True)
    (home / ".config" / "openstack" / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {"popek": entry}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(HOME=str(home), POPEK_HOME=str(paths.state_home()))
    results = tmp_path / "r"
    proc = run_popek("run", "cloud", "--os-cloud", "popek", "--no-cloud-up", "--no-report", "--results",
                     str(results), *args, cwd=home, env=env)
    found = allure_results(results) if (results / "allure-results").is_dir() else []
    written = proc.stdout + proc.stderr + "".join(
        p.read_text(errors="replace") for p in results.rglob("*") if p.is_file())
    return proc, found, written


def _member_may_create_router(entry) -> bool:
    """Whether the project's member gets a router from Neutron (one is made, then deleted at once)."""
    import openstack
    from openstack import exceptions

    conn = openstack.connect(**entry["auth"], region_name=entry["region_name"])
    try:
        router = conn.network.create_router(name=f"popek-hE-probe-{secrets.token_hex(3)}")
    except exceptions.ForbiddenException:
        return False
    conn.network.delete_router(router)
    return True


def _verdicts(found):
    return [(label(r), r["status"], message(r)[:1500]) for r in found]


@pytest.mark.falsifies("C24", fault="politique de Neutron du cloud embarqué changée (policy.d) : create_router refusé "
                                    "au projet du run")
def test_the_embedded_clouds_neutron_refusing_the_router_fails_naming_its_policy(state, tmp_path, record_property):
    t0 = time.monotonic()
    with _project() as (admin, project, name, password, entry):
        # Neutron's default for create_router (ADMIN_OR_PROJECT_MEMBER), minus this project alone
        rule = {"create_router": f"(rule:admin_only) or (role:member and project_id:%(project_id)s and not "
                                 f"'{project.id}':%(project_id)s)"}
        with policy_rules(state, "neutron-api", "neutron", rule, lambda: not _member_may_create_router(entry),
                          lambda: _member_may_create_router(entry)) as refused:
            assert refused, "Neutron n'a pas relu sa politique : le membre crée encore des routeurs"
            proc, found, written = _run_as_embedded(tmp_path, entry, "--claim", "C24")
    record(record_property, dict(enumerate(found)), "C24")
    record_property("seconds", round(time.monotonic() - t0, 1))
    mine = [r for r in found if "C24" in claims_of(r)]
    assert mine and all(r["status"] == "failed" for r in mine), _verdicts(found) or proc.stdout[-3000:]
    said = message(mine[0])
    for needle in ("la politique de Neutron du cloud embarqué refuse au projet du run create_router",
                   "is disallowed by policy", "une panne, pas un choix du cloud",
                   "fichier(s) de politique qui nomment create_router", "policy.d/popek-live-paths.yaml"):
        assert needle in said, said
    assert "la politique de ce cloud, pas une panne" not in written
    assert password not in written


@slow("un projet neuf, popek lancé dessus sans identifiants admin : la sonde attend 90 s une console muette (~3 min)",
      " (sous flock -s)")
@pytest.mark.falsifies("C20", fault="la plus petite image du projet ne démarre pas (1 Mio de zéros), une autre "
                                    "démarre : la sonde la nomme, le run démarre l'autre")
def test_an_image_that_does_not_boot_fails_c20_and_the_run_boots_another(tmp_path, record_property):
    import openstack

    t0 = time.monotonic()
    with _project() as (admin, project, name, password, entry):
        member = openstack.connect(**entry["auth"], region_name="RegionOne")
        image = member.image.create_image(name="popek-hE-noboot", disk_format="raw", container_format="bare",
                                          visibility="private", data=io.BytesIO(bytes(1 << 20)),
                                          validate_checksum=False, wait=True)
        try:
            proc, found, written = _run(tmp_path, entry, "-n", "2", "--claim", "C20", "--claim", "C26")
        finally:
            member.image.delete_image(image, ignore_missing=True)
    record(record_property, dict(enumerate(found)), "C20")
    record_property("seconds", round(time.monotonic() - t0, 1))
    images = [r for r in found if "C20" in claims_of(r)]
    assert images and all(r["status"] == "failed" for r in images), _verdicts(found) or proc.stdout[-3000:]
    said = message(images[0])
    for needle in ("image active qui ne démarre pas sur ce cloud",
                   f"l'image « popek-hE-noboot » {image.id} ne démarre pas sur ce cloud", "« popek-tiny »",
                   "y démarre", "n'a rien écrit sur sa console"):
        assert needle in said, said
    # the dataplane works (the other image booted): its scenario logs into the pair, booted of that image
    dataplane = [r for r in found if "needs:dataplane" in {x["value"] for x in r["labels"] if x["name"] == "tag"}]
    assert dataplane and all(r["status"] == "passed" for r in dataplane), _verdicts(found)
    assert "plan de données en panne" not in written
    assert password not in written


@slow("un projet neuf, le cloud embarqué joint avec ses identifiants admin : la paire du run reste muette 60 s, "
      "une autre image démarre à côté, puis une nouvelle paire (~4 min)", " (sous flock -s)")
@pytest.mark.falsifies("C20", fault="la plus petite image du projet ne démarre pas (1 Mio de zéros) sur un cloud joint "
                                    "avec des identifiants admin (pas d'instance sonde) : la paire du run la nomme, "
                                    "le run démarre l'autre")
def test_an_image_that_does_not_boot_on_an_admin_cloud_fails_c20_from_the_runs_pair(tmp_path, record_property):
    """hI: on the embedded cloud (and any cloud reached with admin credentials) the hypervisors' state answers the
    dataplane question and no probe instance boots; the run's own pair is then what tells the image."""
    import openstack

    t0 = time.monotonic()
    with _project() as (admin, project, name, password, entry):
        member = openstack.connect(**entry["auth"], region_name="RegionOne")
        image = member.image.create_image(name="popek-hI-noboot", disk_format="raw", container_format="bare",
                                          visibility="private", data=io.BytesIO(bytes(1 << 20)),
                                          validate_checksum=False, wait=True)
        try:
            proc, found, written = _run_as_embedded(tmp_path, entry, "-n", "2", "--claim", "C20", "--claim", "C26")
        finally:
            member.image.delete_image(image, ignore_missing=True)
    record(record_property, dict(enumerate(found)), "C20")
    record_property("seconds", round(time.monotonic() - t0, 1))
    images = [r for r in found if "C20" in claims_of(r)]
    assert images and all(r["status"] == "failed" for r in images), _verdicts(found) or proc.stdout[-3000:]
    said = message(images[0])
    for needle in ("image active qui ne démarre pas sur ce cloud",
                   f"l'image « popek-hI-noboot » {image.id} ne démarre pas sur ce cloud", "« popek-tiny »",
                   "y démarre", "l'instance de la paire du run", "n'a rien écrit sur sa console"):
        assert needle in said, said
    # the dataplane works (the other image booted): its scenario logs into the new pair, of that image
    dataplane = [r for r in found if "needs:dataplane" in {x["value"] for x in r["labels"] if x["name"] == "tag"}]
    assert dataplane and all(r["status"] == "passed" for r in dataplane), _verdicts(found)
    assert "sa console est vide" not in written and "plan de données en panne" not in written
    assert password not in written
