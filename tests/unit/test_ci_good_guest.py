"""F4: CI's good-guest wrap (.ci/run around its own `popek cloud up`/`down`) is never dropped silently. A host-up,
lease or snapshot that fails stops CI with its cause (it used to fall back to "not checked" and CI stayed green,
which hid an import error for several sessions); and the script the wrap runs starts as CI starts it (no tests/
on sys.path). Pure: the script's block runs with a failing stand-in; the helper's `compare` of two equal files."""
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _block() -> str:
    text = (REPO / ".ci/run").read_text()
    m = re.search(r"^( *)if ! \{ \$good_guest host-up.*?^\1fi$", text, re.S | re.M)
    assert m, "the good-guest host-up block of .ci/run"
    return m.group(0)


def test_a_failing_host_up_fails_ci_with_its_cause(tmp_path):
    script = f"good_guest=false\ngood_guest_dir={tmp_path}\n{_block()}\necho 'ci: popek cloud up'\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "popek cloud up" not in done.stdout
    assert "ci: FAILED: good guest" in done.stderr


def test_a_working_host_up_goes_on_to_the_clouds_up(tmp_path):
    script = f"good_guest=true\ngood_guest_dir={tmp_path}\n{_block()}\necho 'ci: popek cloud up'\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "popek cloud up" in done.stdout and "FAILED" not in done.stderr


def test_the_good_guest_script_runs_as_ci_runs_it(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for f in (a, b):
        f.write_text(json.dumps({"links": {"lo": "loopback"}}))
    done = subprocess.run([sys.executable, "tests/integration/test_good_guest.py", "compare", str(a), str(b)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "0 difference(s)" in done.stdout


def test_the_harness_installs_popeks_packages_as_up_does_refusing_upgrades(monkeypatch):
    """Review F3: only the owner's libvirt may upgrade the machine's packages (the owner installs it); popek's own
    lists go through the refusal a student's `popek cloud up` meets, so that CI cannot hide it."""
    import importlib.util

    from popek.checks.localcloud import apt

    spec = importlib.util.spec_from_file_location("good_guest_harness", REPO / "tests/integration/test_good_guest.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    calls = []
    monkeypatch.setattr(apt, "install", lambda packages, log=print, upgrades_ok=False:
                        calls.append((list(packages), upgrades_ok)) or [])
    monkeypatch.setattr(apt, "missing", lambda packages: [])
    harness.install_packages(log=lambda line: None)
    assert calls[0] == (["libvirt-daemon-system", "qemu-system-x86"], True)
    assert "openvswitch-switch" in calls[1][0] and calls[1][1] is False
    assert len(calls) == 2
