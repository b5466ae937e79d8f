"""nova-compute's launcher (checks/localcloud/novacompute.py): nova's first heartbeat delay made 0 before nova-compute's
own main runs, with nova-compute's program name and arguments; the process table starts nova-compute through it.
A stand-in `nova` package (no cloud): the real one runs in CI's embedded cloud (`up` waits for its heartbeat)."""
import subprocess
import sys
import textwrap
from pathlib import Path

from popek.checks.localcloud import config, dataplane, services
from popek.checks.localcloud.state import CloudState


def test_the_first_heartbeat_is_not_delayed_and_nova_compute_gets_its_argv(tmp_path):
    lib = tmp_path / "lib" / "nova"
    for sub in ("", "cmd", "servicegroup"):
        (lib / sub).mkdir(parents=True, exist_ok=True)
        (lib / sub / "__init__.py").write_text("")
    (lib / "servicegroup" / "api.py").write_text("INITIAL_REPORTING_DELAY = 5\n")
    (lib / "cmd" / "compute.py").write_text(textwrap.dedent('''
        import sys
        from nova.servicegroup import api
        def main():
            print(api.INITIAL_REPORTING_DELAY, sys.argv[0].rsplit("/", 1)[-1], " ".join(sys.argv[1:]))
            return 7
    '''))
    done = subprocess.run([sys.executable, "-P", str(services.NOVA_COMPUTE_SCRIPT), "--config-file", "/x/nova.conf"],
                          env={"PYTHONPATH": str(tmp_path / "lib")}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 7, done.stderr  # nova-compute's own exit status
    assert done.stdout.split() == ["0", "nova-compute", "--config-file", "/x/nova.conf"]


def test_both_modes_start_nova_compute_through_the_launcher(tmp_path):
    st = CloudState(tmp_path / "cloud")
    # with the dataplane, behind the launcher that runs its privsep contexts in-process (privsep_inproc.py)
    for table, launcher in ((services.core_services(st), []),
                            (dataplane.services(st), [str(dataplane.PRIVSEP_INPROC_SCRIPT)])):
        compute = next(s for s in table if s.name == "nova-compute")
        argv = [a for a in compute.argv if a not in launcher]
        assert compute.argv[2:2 + len(launcher)] == launcher
        assert argv[:3] == [st.python, "-P", str(services.NOVA_COMPUTE_SCRIPT)]
        assert argv[3:] == ["--config-file", str(st.etc("nova") / "nova.conf")]
        assert Path(argv[2]).is_file()


def test_keystone_has_no_in_process_cache(tmp_path):
    """oslo.cache's in-process backends give keystone the cached objects themselves (not copies): not used."""
    st = CloudState(tmp_path / "cloud")
    cfg = config.generate(st)
    cache = cfg["keystone/keystone.conf"].get("cache", {})
    assert not cache.get("enabled") or cache.get("backend") not in ("oslo_cache.dict", "dogpile.cache.memory")
