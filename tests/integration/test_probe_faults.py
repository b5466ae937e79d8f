"""The dataplane probe on a cloud whose guests never boot, and on one that gives no console (hV, 2026-12-07).

Without admin credentials popek boots one probe instance and reads its console (checks/cloud/probe.py): a
guest that is ACTIVE and writes nothing, or writes a boot failure, is a broken cloud (every dataplane
scenario ÉCHEC with the evidence), not a missing capability; a console Nova does not give (policy, not
implemented) is one (IGNORÉ with Nova's answer). Each case: a fresh member project of the embedded cloud
reached as a foreign cloud (test_foreign_project._project), `popek run cloud -n 2 --claim C18 --claim C26`.

- never boots: a private image of that project, 1 MiB of zeros (raw), smaller than every public image so the
  probe picks it (compute.pick_image: the smallest), and only that project sees it: other runs untouched.
- no console: Nova's `os_compute_api:os-console-output` refused to that project alone in nova's policy.d
  (oslo.policy re-reads it at the next request: checked with a request before it is relied on).

Live, hV 2026-12-07 13:46 (both at once, -n 2 in each run, under flock -x):

| case | before (9053376's parent, by its code) | after |
|---|---|---|
| never boots (128 s) | the 2 dataplane scenarios IGNORÉ « l'instance sonde n'a rien écrit sur sa console : impossible d'établir un plan de données » | both ÉCHEC « plan de données en panne : l'instance sonde 3ac6b8ce-… (image « popek-hV-noboot » 1cffcb1b-…, gabarit tiny, hôte non visible de ce compte (hostId 7fb5…)) est ACTIVE et n'a rien écrit sur sa console en 93 s alors que l'API de console répond : l'invité ne démarre pas (…) ou son image n'écrit rien sur le port série ; actions Nova : create (Success : compute__do_build_and_run_instance) »; C26's keypair scenario (API) RÉUSSI |
| console refused (43 s) | the same IGNORÉ (compute.console_log took the 403 for an empty console) | both IGNORÉ « dataplane : plan de données impossible à établir : Nova refuse à ce compte la console des instances (HTTP 403 : Policy doesn't allow os_compute_api:os-console-output to be performed.) » |

Since hR F2 (hY2, 2026-12-07) one image that does not boot is not a broken dataplane: the probe boots a second,
different image (popek-tiny here, which boots) and the scenarios fail naming « l'image « popek-hV-noboot » … ne
démarre pas sur ce cloud, l'image « popek-tiny » … y démarre » (not yet run live with that change). Since 703f8b2 (hE) such an image is not the dataplane's fault at all: the run
remembers it, boots the other image for every dataplane scenario (which then pass: the dataplane works) and C20 fails
naming it. The never-boots case moved to test_embedded_refusals.py::test_an_image_that_does_not_boot_fails_c20_and_the_run_boots_another
(live 16:35-16:38, passed 169 s); this file's old expectation (every dataplane scenario ÉCHEC) ran live at 17:48 (hLive) and
met the new design: both scenarios RÉUSSI on popek-tiny. It was removed; the console case stays.

Opt-in (POPEK_SLOW_FAULTS=1: each boots probe guests and waits 90 s for a console); the first under
`flock -s` (only the test's project sees its image), the second under `flock -x` (a policy of the cloud).
"""
from __future__ import annotations

import time

import pytest

from faults import slow
from helpers import running_cloud
from test_faults_api import label, message, record
from test_foreign_project import _project, _run
from test_live_paths import policy_rules

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("chaque cas démarre des instances sonde et attend leur console (~2–4 min)",
                   " (le premier sous flock -s, le second sous flock -x)")]

CLAIMS = ("-n", "2", "--claim", "C18", "--claim", "C26")


@pytest.fixture(scope="module")
def state():
    """The embedded cloud, whole and in dataplane mode (else the test is skipped with the reason)."""
    return running_cloud(dataplane=True, root_for="changer la politique de Nova du cloud embarqué")


def _dataplane(found: list[dict]) -> list[dict]:
    """The run's dataplane scenarios (tag needs:dataplane; C26's keypair scenario is an API one)."""
    return [r for r in found if {"C18", "C26"} & {x["value"] for x in r["labels"] if x["name"] == "claim"}
            and "needs:dataplane" in {x["value"] for x in r["labels"] if x["name"] == "tag"}]


def _verdicts(found):
    return [(label(r), r["status"], message(r)[:1500]) for r in found]


@pytest.mark.falsifies("C18", "C26", fault="(contre-épreuve) la console des instances refusée par la politique de "
                                           "Nova : IGNORÉ, jamais ÉCHEC")
def test_a_cloud_that_refuses_the_console_ignores_the_dataplane_with_novas_answer(state, tmp_path,
                                                                                   record_property):
    import openstack
    from openstack import exceptions as sdk_exc

    t0 = time.monotonic()
    with _project() as (admin, project, name, password, entry):
        member = openstack.connect(**entry["auth"], region_name="RegionOne")
        # an instance of the project to ask about (Nova checks the rule once it found the instance, and finds
        # none of another project): without a network, its state does not matter (deleted with the project)
        tiny = next(i for i in member.image.images() if i.name == "popek-tiny")
        flavor = min(member.compute.flavors(), key=lambda f: (f.ram, f.vcpus, f.disk))
        server = member.compute.create_server(name="popek-hV-console", image_id=tiny.id, flavor_id=flavor.id,
                                              networks="none")

        def refused() -> bool:
            try:
                member.compute.get_server_console_output(server.id, length=1)
            except sdk_exc.ForbiddenException:
                return True
            except sdk_exc.HttpException:   # 409/404 while it builds: the rule let it ask
                return False
            return False

        def in_force():
            assert refused(), "Nova n'a pas relu sa politique"
            return True

        # the default (PROJECT_MEMBER_OR_ADMIN) minus this project: no other run sees a change
        rule = {"os_compute_api:os-console-output":
                f"(role:admin) or (role:member and project_id:%(project_id)s and not project_id:{project.id})"}
        with policy_rules(state, "nova-api", "nova", rule, in_force, lambda: not refused()):
            proc, found, written = _run(tmp_path, entry, *CLAIMS)
    mine = _dataplane(found)
    record(record_property, dict(enumerate(found)), "C18", "C26")
    record_property("seconds", round(time.monotonic() - t0, 1))
    assert mine and all(r["status"] == "skipped" for r in mine), _verdicts(found) or proc.stdout[-3000:]
    said = message(mine[0])
    assert "Nova refuse à ce compte la console des instances (HTTP 403" in said, said
    assert password not in written

