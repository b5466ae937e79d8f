"""The cloud features against a real cloud (the embedded one by default, or $OS_CLOUD): every scenario
passes or skips with a true reason, nothing is left behind (also after Ctrl-C), no secret reaches the
results, parallel workers do not collide, and a broken named cloud stops popek with one message."""
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from popek import paths
from popek.checks.cloud import connection, ledger

from helpers import VENV_BIN, allure_results, run_popek

pytestmark = [pytest.mark.integration, pytest.mark.cloud]


@pytest.fixture(scope="module")
def cloud():
    try:
        return connection.connect(None, os.environ, paths.embedded_clouds_yaml())
    except connection.CloudUnavailable as exc:
        if exc.named:
            raise
        pytest.skip(f"pas de cloud : {exc}")


def leftovers(cloud) -> list[str]:
    """Every popek-named resource in the project (any run)."""
    return sorted(f"{e.kind} {e.name}" for e in ledger.orphans(cloud.conn, None))


@pytest.fixture(scope="module")
def full_run(cloud, tmp_path_factory):
    """One whole `popek run cloud -n 2` for every assertion about a whole run (CI time: one full run, not a
    serial one and a parallel one). popek without xdist stays exercised by the partial runs below (Ctrl-C,
    failing run) and by every fault test's run."""
    before = leftovers(cloud)
    results = tmp_path_factory.mktemp("cloud")
    proc = run_popek("run", "cloud", "-n", "2", "--results", str(results), "--no-report", cwd=results)
    return proc, results, before, leftovers(cloud)


def _assert_all_pass_or_skip_with_reason(results: Path):
    found = allure_results(results)
    assert found, "no Allure result written"
    for r in found:
        assert r["status"] in ("passed", "skipped"), (r["name"], (r.get("statusDetails") or {}).get("message"))
        if r["status"] == "skipped":
            assert (r.get("statusDetails") or {}).get("message"), f"{r['name']}: skipped without a reason"
    return found


def test_every_cloud_scenario_passes_or_skips_with_a_reason(full_run):
    proc, results, _, _ = full_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    found = _assert_all_pass_or_skip_with_reason(results)
    assert sum(r["status"] == "passed" for r in found) >= 20


def new_leftovers(before, after) -> list[str]:
    """What is there now and was not before (a run's start sweeps older leftovers: `after` may be smaller)."""
    return sorted(set(after) - set(before))


def test_nothing_is_left_behind(full_run):
    _, _, before, after = full_run
    assert new_leftovers(before, after) == []


def test_no_password_token_or_private_key_in_the_results(full_run, cloud):
    _, results, _, _ = full_run
    data = yaml.safe_load(paths.embedded_clouds_yaml().read_text()) if cloud.embedded_root else {"clouds": {}}
    secrets = [c["auth"]["password"] for c in data["clouds"].values()]
    secrets.append(cloud.conn.session.get_token())
    files = [p for p in results.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"{path} holds a secret"
        assert "PRIVATE KEY-----\n" not in text, f"{path} holds a private key"
        assert "gAAAAA" not in text, f"{path} holds something like a Fernet token"


def test_parallel_workers_pass_with_their_own_prefix(full_run):
    proc, results, _, _ = full_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # the worker ids show up in the names that the scenarios recorded as evidence
    seen = " ".join(p.read_text(errors="replace") for p in (results / "allure-results").glob("*-attachment*"))
    assert "-gw0-" in seen and "-gw1-" in seen


def test_ctrl_c_at_a_random_moment_leaves_nothing_behind(cloud, tmp_path):
    before = leftovers(cloud)
    # popek as a user runs it in a terminal: Ctrl-C delivered. A job a non-interactive shell started in the
    # background (`.ci/run &`, nohup) inherits SIGINT ignored, and Python then installs no handler at all
    proc = subprocess.Popen([str(VENV_BIN / "popek"), "run", "cloud", "--no-report", "--results", str(tmp_path),
                             "-k", "volume or flottante or valide"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait until it created something (so the interrupt lands mid-work), then a random extra delay
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and leftovers(cloud) == before and proc.poll() is None:
        time.sleep(0.3)
    time.sleep(random.uniform(0, 4))
    during = leftovers(cloud)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, out[-3000:]
    left = new_leftovers(before, leftovers(cloud))
    assert not left, f"pendant : {len(during)} ressource(s) ; après Ctrl-C il reste : {left}\n{out[-2000:]}"


FAIL_INJECTOR = """
def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args):
    if "attache le volume à la première instance" in step.name:
        raise AssertionError("échec provoqué par le test, ressources créées")
"""


def test_a_failing_run_leaves_nothing_behind(cloud, tmp_path):
    """A scenario that fails mid-way (after two servers and an attached volume exist) still cleans up."""
    (tmp_path / "popek_fail_injector.py").write_text(FAIL_INJECTOR)
    before = leftovers(cloud)
    proc = run_popek("run", "cloud", "--no-report", "--results", str(tmp_path / "r"), "-k", "volume",
                     "--", "-p", "popek_fail_injector", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    failed = [r for r in allure_results(tmp_path / "r") if r["status"] in ("failed", "broken")]
    assert failed and "échec provoqué" in str(failed[0].get("statusDetails")), proc.stdout[-3000:]
    assert new_leftovers(before, leftovers(cloud)) == []


@pytest.fixture
def bad_password_yaml(cloud, tmp_path):
    if cloud.embedded_root is None:
        pytest.skip("needs the embedded cloud's clouds.yaml to derive a wrong password")
    data = yaml.safe_load(paths.embedded_clouds_yaml().read_text())
    entry = data["clouds"]["popek"]
    entry["auth"]["password"] = "wrong-" + entry["auth"]["password"][::-1]
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"mauvais": entry}}))
    return path


def test_a_wrong_password_is_one_401_message_and_nothing_runs(bad_password_yaml, tmp_path, cloud):
    before = leftovers(cloud)
    env = {"OS_CLIENT_CONFIG_FILE": str(bad_password_yaml)}
    proc = run_popek("run", "cloud", "--os-cloud", "mauvais", "--results", str(tmp_path / "r"), cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "401" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r" / "junit.xml").exists()
    sweep = run_popek("cloud", "sweep", "--dry-run", "--os-cloud", "mauvais", cwd=tmp_path, env=env)
    assert sweep.returncode == 1 and "401" in sweep.stderr
    assert new_leftovers(before, leftovers(cloud)) == []


def test_sweep_removes_what_a_hard_killed_run_left(cloud):
    """A run killed with SIGKILL cleans nothing: the next run's sweep (or `popek cloud sweep`) does."""
    orphan = ledger.Ledger(cloud.conn, "popek-0badc0de-gw9")
    orphan.create("security_group", "sg", lambda name: cloud.conn.network.create_security_group(name=name))
    assert any("popek-0badc0de-gw9" in r for r in leftovers(cloud))
    listed = run_popek("cloud", "sweep", "--dry-run", "--older-than", "0")
    assert listed.returncode == 0 and "popek-0badc0de-gw9-sg" in listed.stdout
    assert any("popek-0badc0de-gw9" in r for r in leftovers(cloud))  # dry run deleted nothing
    kept = run_popek("cloud", "sweep")  # the default age (30 min) keeps a run this young: it may be alive
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert any("popek-0badc0de-gw9" in r for r in leftovers(cloud))
    done = run_popek("cloud", "sweep", "--older-than", "0")  # the user knows it is dead
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any("popek-0badc0de-gw9" in r for r in leftovers(cloud))
