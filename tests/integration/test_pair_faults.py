"""The run's shared pair of instances cannot be built (a real fault on the embedded cloud): every scenario
that needs it is ÉCHEC — pytest `failed`, Allure `failed` (not `broken`), junit.xml's <failure> — with
the pair's own cause, measured once for the run, and its component; the same in both xdist workers
(RunShared); the listing scenarios (C17, C36) still pass on the server Nova lists in ERROR.

| fault | claims | what each pair scenario must say |
|---|---|---|
| every nova-compute disabled (admin API) during `popek run cloud -n 2` | C14, C15, C18, C23, C24, C25, C26 | the pair's boot: No valid host, every compute disabled, nova-compute@<host>; measured once, at <time> UTC |

And a state where the pair must NOT be a failure: the project's instance quota with room for one server,
not two: the pair's scenarios IGNORÉ with the quota, the listing ones (C17, C33, C36) RÉUSSI on a server
of their own.

~40 s (the boots go ERROR at scheduling). Run serially (CI) or under `flock -x /tmp/popek-cloud.lock`
(the fault changes the cloud for everyone).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from faults import slow
from helpers import allure_results, run_popek
from test_faults_api import claims_of, computes_disabled, instance_quota, label, message, quota_instances, record

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

#: the claims whose scenarios take the run's pair (shared_pair) and need it ACTIVE
PAIR_CLAIMS = ("C14", "C15", "C18", "C23", "C24", "C25", "C26")
#: the claims whose scenario only lists a server of the run (shared.listed()): Nova lists it in ERROR too
LISTING_CLAIMS = ("C17", "C36")


@pytest.fixture(scope="module")
def admin():
    import os

    from popek import paths
    from popek.checks.cloud import connection

    if os.geteuid() != 0:
        pytest.skip("il faut être root pour mettre une faute dans le cloud embarqué")
    if not paths.embedded_clouds_yaml().is_file():
        pytest.skip("pas de cloud embarqué (popek cloud up)")
    return connection.connect(connection.EMBEDDED_ADMIN, {}, paths.embedded_clouds_yaml()).conn


@pytest.mark.falsifies("C14", "C15", "C18", "C23", "C24", "C25", "C26", fault="nova-compute désactivé par l'API admin pendant `popek run cloud -n 2` : "
                                            "la paire d'instances partagée du run ne démarre pas")
def test_a_pair_that_cannot_boot_is_echec_with_its_cause_in_every_worker(admin, tmp_path, record_property):
    results = tmp_path / "r"
    args = [a for c in PAIR_CLAIMS + LISTING_CLAIMS for a in ("--claim", c)]
    with computes_disabled(admin) as named:
        proc = run_popek("run", "cloud", "--no-report", "--no-cloud-up", "-n", "2", "--results", str(results), *args,
                         cwd=tmp_path)
    found = {r["uuid"]: r for r in allure_results(results)}
    assert found, proc.stdout[-3000:] + proc.stderr[-2000:]
    record(record_property, found, *PAIR_CLAIMS)

    pair = [r for r in found.values() if "ressource partagée du run indisponible" in message(r)]
    assert pair, [(label(r), r["status"], message(r)[:200]) for r in found.values()]
    assert {r["status"] for r in pair} == {"failed"}, [(label(r), r["status"]) for r in pair]
    texts = {message(r) for r in pair}
    assert len(texts) == 1, f"les scénarios de la paire ne disent pas la même cause : {texts}"
    text = texts.pop()
    for needle in ("la paire d'instances du run", "No valid host was found", "tous désactivés", named[0],
                   "cause mesurée une fois pour tout le run, à "):
        assert needle in text, f"« {needle} » absent : {text}"
    threads = {lab["value"] for r in pair for lab in r["labels"] if lab["name"] == "thread"}
    record_property("workers", len(threads))

    # each of the pair's claims has its ÉCHEC from the pair's cause
    for claim in PAIR_CLAIMS:
        assert any(claim in claims_of(r) for r in pair), (claim, [(label(r), r["status"]) for r in found.values()
                                                                  if claim in claims_of(r)])
    # the listing scenarios list the server Nova keeps in ERROR: not the boot's fault
    for claim in LISTING_CLAIMS:
        listing = [r for r in found.values() if claim in claims_of(r)
                   and any(s.get("name", "").endswith("une instance du run") for s in r.get("steps") or [])]
        assert listing and all(r["status"] == "passed" for r in listing), \
            [(label(r), r["status"], message(r)[:300]) for r in listing]

    # junit.xml: a <failure> (not an <error>) whose text is the cause alone, not a traceback (its message
    # attribute is the same, cut by popek's junit writer at its length limit)
    cases = [c for c in ET.parse(results / "junit.xml").iter("testcase")
             if any("ressource partagée du run" in (k.get("message") or "") for k in c)]
    seen = [(c.get("name"), k.tag, (k.text or "").strip()) for c in cases for k in c if k.tag in ("failure", "error")]
    assert len(cases) == len(pair) and all(tag == "failure" and said == text for _, tag, said in seen), \
        (len(pair), seen, text)


@slow("un run de plus (~40 s : quota d'instances réduit, la paire IGNORÉ, les listes avec leur propre instance)", " (sous flock -x)")
def test_a_pair_without_room_is_ignored_and_the_listings_take_their_own_server(admin, tmp_path):
    """~30 s. One process (-n 0): two listing scenarios at once would share the one server of room (the
    second IGNORÉ with the quota in use, a true reason, but not what this test is about)."""
    project = admin.identity.find_project("demo")
    used = admin.compute.get_quota_set(project.id, usage=True).usage.get("instances", 0)
    results = tmp_path / "r"
    args = [a for c in ("C17", "C33", "C36", "C26") for a in ("--claim", c)]
    with instance_quota(admin, used + 1):
        assert quota_instances(admin, project.id) == used + 1
        proc = run_popek("run", "cloud", "--no-report", "--no-cloud-up", "-n", "0", "--results", str(results), *args,
                         cwd=tmp_path)
    found = {r["uuid"]: r for r in allure_results(results)}
    assert found, proc.stdout[-3000:] + proc.stderr[-2000:]
    said = [(label(r), r["status"], message(r)[:300]) for r in found.values()]
    pair = [r for r in found.values() if r["name"].startswith("La clé de la paire ouvre l'instance")]  # C26, C18
    assert pair and all(r["status"] == "skipped" and "quota instances" in message(r)
                        and "la paire d'instances du run" in message(r) for r in pair), said
    listing = [r for r in found.values() if claims_of(r) & {"C17", "C36"}
               and any(s.get("name", "").endswith("une instance du run") for s in r.get("steps") or [])]
    assert listing and all(r["status"] == "passed" for r in listing), said
