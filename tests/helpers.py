"""Shared helpers for popek's own tests (importable as `helpers`: pytest adds tests/ to sys.path)."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def source_tree(dest: Path) -> Path:
    """A copy of the repository's files (tracked and new, not ignored) in `dest`: pip builds in the tree,
    and a `build/` left in the repository by an earlier build would bring back modules since deleted."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def run_popek(*args, cwd=None, env=None, user=None, timeout=900) -> subprocess.CompletedProcess:
    """Run the installed `popek` command for real; `user` (e.g. 65534) runs it unprivileged via setpriv."""
    argv = [str(VENV_BIN / "popek"), *args]
    if user is not None:
        argv = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups", *argv]
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def allure_results(results_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (results_dir / "allure-results").glob("*-result.json")]



@contextlib.contextmanager
def frozen(state, name: str):
    """SIGSTOP every process of the embedded cloud's service `name` (its process group: it was started as a
    session leader), SIGCONT them in the end whatever happens."""
    from popek.checks.localcloud import services

    pid = services.read_pid(state, name)
    assert pid is not None, f"{name} ne tourne pas"
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGCONT)


def running_cloud(dataplane: bool = False, why_not_whole: str = "ne tourne pas", root_for: str | None = None):
    """The embedded cloud's state when every service of it runs (and, with `dataplane`, in dataplane mode);
    else the calling test is skipped with the reason. `root_for` (French, e.g. "geler les services du cloud
    embarqué"): the test needs root for that, and is skipped first when not root."""
    import pytest

    if root_for is not None and os.geteuid() != 0:
        pytest.skip(f"il faut être root pour {root_for}")

    from popek import paths
    from popek.checks.localcloud import lifecycle
    from popek.checks.localcloud.state import CloudState

    state = CloudState(paths.embedded_cloud_dir())
    mode, rows = lifecycle.status(state)
    if not rows or not all(r.ok for r in rows):
        pytest.skip(f"le cloud embarqué {why_not_whole} (`popek cloud up`)")
    if dataplane and not mode.get("dataplane"):
        pytest.skip(f"le cloud embarqué tourne sans plan de données ({lifecycle.mode_label(mode)})")
    return state


CLOUD_LOCK = Path("/tmp/popek-cloud.lock")


@contextlib.contextmanager
def cloud_lock_exclusive(wait: float, why_skip: str):
    """The shared cloud's lock (/tmp/popek-cloud.lock) held exclusively for the block; waited for `wait`
    seconds at most, then the calling test is skipped with `why_skip`. POPEK_CLOUD_LOCK_HELD=1: the caller
    holds it already (`flock -x /tmp/popek-cloud.lock pytest …`)."""
    import fcntl
    import time

    import pytest
    if os.environ.get("POPEK_CLOUD_LOCK_HELD") == "1":
        yield
        return
    with open(CLOUD_LOCK, "a") as f:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip(f"{CLOUD_LOCK} est tenu par un autre travail depuis {wait:.0f} s : {why_skip}")
                time.sleep(2)
        yield
