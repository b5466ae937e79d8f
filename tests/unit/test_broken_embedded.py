"""A cloud configured for the run that does not answer is broken, not absent (issue #20, house rule: IGNORÉ
only where a check truly could not run): the embedded cloud started (a service's process alive, from its
pid file) with its Keystone refusing connections makes C34/C35, the claims about reaching the cloud, ÉCHEC
naming Keystone and the address; every other cloud scenario stays IGNORÉ with that reason. No cloud at
all (nothing started) stays IGNORÉ everywhere. No cloud needed: a closed port plays the dead Keystone."""
import json
import os
import subprocess
import textwrap

from helpers import allure_results, run_popek
from popek.checks.localcloud import services

EMBEDDED = textwrap.dedent("""\
    clouds:
      popek:
        auth: {auth_url: "http://127.0.0.1:1/v3", username: demo, password: emb-pw-5150, project_name: demo,
               user_domain_name: Default, project_domain_name: Default}
      popek-admin:
        auth: {auth_url: "http://127.0.0.1:1/v3", username: admin, password: emb-pw-5151, project_name: admin,
               user_domain_name: Default, project_domain_name: Default}
    """)


def claims(result):
    return {label["value"] for label in result["labels"] if label["name"] == "claim"}


def test_a_started_embedded_cloud_whose_keystone_refuses_fails_c34_c35_and_skips_the_rest(tmp_path):
    cloud = tmp_path / "popek" / "cloud"
    (cloud / "run").mkdir(parents=True)
    (cloud / "clouds.yaml").write_text(EMBEDDED)
    alive = subprocess.Popen(["sleep", "120"])  # a service of the embedded cloud that still runs
    try:
        (cloud / "run" / "nova-api.pid").write_text(json.dumps({"pid": alive.pid, "start": services._start_time(alive.pid)}))
        (cloud / "run" / "keystone.pid").write_text(json.dumps({"pid": 999999999, "start": "1"}))  # died
        env = {"HOME": str(tmp_path), "POPEK_HOME": str(tmp_path / "popek"),
               **{k: "" for k in os.environ if k.startswith("OS_")}}
        proc = run_popek("run", "cloud", "--no-cloud-up", "--no-report", "--results", str(tmp_path / "r"),
                         "-k", "openrc or première or GET_HTTP or get_http", cwd=tmp_path, env=env, timeout=300)
    finally:
        alive.kill()
        alive.wait()
    found = allure_results(tmp_path / "r")
    by_claim = {c: r for r in found for c in claims(r)}
    assert {"C34", "C35", "C17"} <= set(by_claim), proc.stdout[-2000:]
    for claim in ("C34", "C35"):
        result = by_claim[claim]
        said = result["statusDetails"]["message"]
        assert result["status"] == "failed", (claim, result["status"], said)
        assert "Keystone injoignable à http://127.0.0.1:1/v3" in said and "le cloud embarqué est en marche" in said
        assert "keystone" in said  # started but without a process: named
    skipped = by_claim["C17"]
    assert skipped["status"] == "skipped" and "le cloud embarqué ne répond pas" in skipped["statusDetails"]["message"]
    assert "emb-pw-5150" not in proc.stdout + proc.stderr
