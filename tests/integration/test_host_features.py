"""The host features run for real on this machine: every scenario passes or skips with a true reason."""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from popek import paths
from popek.checks import coverage
from popek.plugin import VERDICT_FR

from helpers import VENV_BIN, allure_results, run_popek

pytestmark = pytest.mark.integration
HOST_CLAIMS = ["C01", "C02", "C05", "C06", "C07", "C08", "C09", "C14"]
#: One line per claim in `popek run`'s summary: "C05  RÉUSSI   19 scénario(s)  <the claim's text>".
CLAIM_LINE = re.compile(r"^(C\d\d)  (RÉUSSI|ÉCHEC|IGNORÉ)\s+(\d+) scénario\(s\)  ", re.MULTILINE)
#: A skip reason is French: it says why in words such as these (an English or empty reason fails).
FRENCH = re.compile(r"\b(pas|n'est|il faut|introuvable|aucune?|ni|ici|est|pour|sur|les?|la|des?|du)\b", re.IGNORECASE)
UNPRIVILEGED = 65534  # nobody


def claim_verdicts(stdout: str) -> dict[str, str]:
    """claim id -> verdict (French) from the per-claim section of popek's terminal output."""
    section = stdout.split("popek : verdict par claim du cours", 1)[-1]
    return {m.group(1): m.group(2) for m in CLAIM_LINE.finditer(section)}


def expected_verdicts(results: Path) -> dict[str, str]:
    """claim id -> the verdict its scenarios' Allure results give (coverage.claim_status, in French)."""
    return {cid: VERDICT_FR[coverage.claim_status(st)]
            for cid, st in coverage.last_statuses(results / "allure-results").items()}


def tags_of(result: dict) -> set[str]:
    return {label["value"] for label in result["labels"] if label["name"] == "tag"}


def feature_of(result: dict) -> str:
    return result["fullName"].split(":", 1)[0]


def assert_passed_or_skipped_in_french(found: list[dict]) -> None:
    assert found, "no Allure result written"
    for r in found:
        assert r["status"] in ("passed", "skipped"), (r["name"], r["status"], r.get("statusDetails"))
        if r["status"] == "skipped":
            message = (r.get("statusDetails") or {}).get("message") or ""
            assert message and FRENCH.search(message), f"{r['name']}: skipped without a French reason: {message!r}"


@pytest.fixture(scope="module")
def host_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("host")
    proc = run_popek("run", "host", "--results", str(results), "--no-report", cwd=results)
    return proc, results


def test_host_run_exits_0_with_per_claim_verdicts(host_run):
    proc, results = host_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "popek : verdict par claim du cours" in proc.stdout
    shown = claim_verdicts(proc.stdout)
    missing = [c for c in HOST_CLAIMS if c not in shown]
    assert not missing, f"no per-claim line for {missing}:\n" + proc.stdout[-3000:]
    # each line agrees with the results of the scenarios tagged with that claim
    expected = expected_verdicts(results)
    assert {c: shown[c] for c in HOST_CLAIMS} == {c: expected[c] for c in HOST_CLAIMS}


def test_every_host_scenario_passes_or_skips_with_a_reason(host_run):
    _, results = host_run
    assert_passed_or_skipped_in_french(allure_results(results))


def test_the_host_claims_are_each_covered_by_a_host_scenario():
    host = [s for s in coverage.scenarios(paths.FEATURES_DIR) if s.feature.startswith("hote/")]
    covered = {c for s in host for c in s.claims}
    assert set(HOST_CLAIMS) <= covered, f"not covered: {sorted(set(HOST_CLAIMS) - covered)}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unprivileged_run_skips_what_it_cannot_do_with_the_reason_and_exits_0():
    tmp_path = Path(tempfile.mkdtemp(prefix="popek-nobody-"))  # pytest's tmp dirs are private to root
    tmp_path.chmod(0o777)
    try:
        check_unprivileged_run(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def unmet_needs_as(user: int, names: set[str]) -> dict[str, str]:
    """need -> its French reason, for the needs in `names` that `user` does not meet (evaluated as that user)."""
    code = ("import json, sys; from popek.checks.host import needs; "
            "print(json.dumps({n: needs.unmet(n) for n in sys.argv[1:]}))")
    proc = subprocess.run(["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups",
                           str(VENV_BIN / "python"), "-c", code, *sorted(names)],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return {n: reason for n, reason in json.loads(proc.stdout).items() if reason}


def check_unprivileged_run(tmp_path):
    proc = run_popek("run", "host", "--results", str(tmp_path / "r"), "--no-report", cwd=tmp_path, user=UNPRIVILEGED,
                     env={"HOME": str(tmp_path), "POPEK_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    found = allure_results(tmp_path / "r")
    assert_passed_or_skipped_in_french(found)

    # every scenario that needs what this user lacks (root for namespaces and cgroups, access to
    # /dev/kvm…) is skipped, and says which need and why
    needs = {t.split(":", 1)[1] for r in found for t in tags_of(r) if t.startswith("needs:")}
    unmet = unmet_needs_as(UNPRIVILEGED, needs)
    assert "unshare" in unmet, unmet  # an unprivileged user cannot create PID/mount/network namespaces
    for r in found:
        lacking = sorted(n for n in unmet if f"needs:{n}" in tags_of(r))
        if lacking:
            assert r["status"] == "skipped", (r["name"], lacking)
            message = r["statusDetails"]["message"]
            assert any(message.startswith(f"{n} : ") for n in lacking), (r["name"], message)

    # at least every container scenario skips
    containers = [r for r in found if feature_of(r) == "hote/conteneurs.feature"]
    expected = [s for s in coverage.scenarios(paths.FEATURES_DIR) if s.feature == "hote/conteneurs.feature"]
    assert len(containers) == len(expected) > 0
    assert all(r["status"] == "skipped" for r in containers), [(r["name"], r["status"]) for r in containers]

    # per-claim verdicts: one line per host claim, each as its scenarios' results say; a claim none of
    # whose checking scenarios could run (here C09: containers) is IGNORÉ, never RÉUSSI
    shown = claim_verdicts(proc.stdout)
    assert set(HOST_CLAIMS) <= set(shown), proc.stdout[-3000:]
    verdicts = expected_verdicts(tmp_path / "r")
    assert {c: shown[c] for c in HOST_CLAIMS} == {c: verdicts[c] for c in HOST_CLAIMS}
    assert shown["C09"] == "IGNORÉ", proc.stdout[-3000:]


def test_c08_is_never_passed_on_a_kvm_without_vtx_or_amdv(host_run):
    """On PVM (a /dev/kvm without VT-x/AMD-V) the ring -1 of C08 is absent: IGNORÉ with that reason."""
    from popek.checks.host import needs
    reason = needs.unmet("ring-1")
    if reason is None:
        pytest.skip("cet hôte a VT-x/AMD-V sous /dev/kvm : C08 y est vérifié")
    proc, _ = host_run
    assert claim_verdicts(proc.stdout)["C08"] == "IGNORÉ", proc.stdout[-3000:]
    assert "pas de VT-x/AMD-V" in proc.stdout.split("popek : verdict par claim du cours", 1)[-1]
