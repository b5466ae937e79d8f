"""The host features run for real on this machine: every scenario passes or skips with a true reason."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from popek import paths
from popek.checks import coverage

from helpers import allure_results, run_popek

pytestmark = pytest.mark.integration
HOST_CLAIMS = ["C01", "C02", "C05", "C06", "C07", "C08", "C09", "C14"]


@pytest.fixture(scope="module")
def host_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("host")
    proc = run_popek("run", "host", "--results", str(results), "--no-report", cwd=results)
    return proc, results


def test_host_run_exits_0_with_per_claim_verdicts(host_run):
    proc, _ = host_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "popek : verdict par claim du cours" in proc.stdout
    for claim in ("C05",):
        assert f"\n{claim}  " in proc.stdout


def test_every_host_scenario_passes_or_skips_with_a_reason(host_run):
    _, results = host_run
    found = allure_results(results)
    assert found, "no Allure result written"
    for r in found:
        assert r["status"] in ("passed", "skipped"), (r["name"], r.get("statusDetails"))
        if r["status"] == "skipped":
            assert (r.get("statusDetails") or {}).get("message"), f"{r['name']}: skipped without a reason"


def test_the_host_claims_are_each_covered_by_a_host_scenario():
    host = [s for s in coverage.scenarios(paths.FEATURES_DIR) if s.feature.startswith("hote/")]
    covered = {c for s in host for c in s.claims}
    assert set(HOST_CLAIMS) <= covered, f"not covered: {sorted(set(HOST_CLAIMS) - covered)}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unprivileged_run_skips_what_needs_root_and_exits_0():
    tmp_path = Path(tempfile.mkdtemp(prefix="popek-nobody-"))  # pytest's tmp dirs are private to root
    tmp_path.chmod(0o777)
    try:
        check_unprivileged_run(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def check_unprivileged_run(tmp_path):
    proc = run_popek("run", "host", "--results", str(tmp_path / "r"), "--no-report", cwd=tmp_path, user=65534,
                     env={"HOME": str(tmp_path), "POPEK_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    found = allure_results(tmp_path / "r")
    assert all(r["status"] in ("passed", "skipped") for r in found)
    root_needing = [r for r in found if any(l["value"] == "needs:root" for l in r["labels"] if l["name"] == "tag")]
    for r in root_needing:
        assert r["status"] == "skipped" and "root" in r["statusDetails"]["message"], r["name"]
