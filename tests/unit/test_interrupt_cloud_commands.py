"""`popek cloud up|down|destroy|sweep` interrupted by SIGTERM (a CI job cancelled, `kill`, a closed session's
process group) clean up as on Ctrl-C: the lifecycle's `finally`/`except` run (stop what this `up` started,
delete a booting smoke instance), the command says « interrompu » and exits 130. Before: SIGTERM's default
action killed `popek cloud up` at once, and its services, nftables table and smoke instance stayed (hT's
trial, 2026-12-07: SIGTERM during the smoke instance left it ACTIVE, and the next `up` said « rien à faire »).

Each case runs popek's CLI in a child process whose lifecycle function is a stand-in that signals its own
process and records whether its cleanup ran: no cloud, no host state."""
import signal
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from popek import cli
    from popek.checks.localcloud import lifecycle

    def interrupted(*args, **kwargs):
        try:
            print("started", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
            print("not interrupted", flush=True)
        finally:
            print("cleanup ran", flush=True)
        return []

    for name in ("up", "down", "destroy"):
        setattr(lifecycle, name, interrupted)
    code = cli.main(sys.argv[1:])
    print("SIGTERM after:", "default" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else "handler", flush=True)
    sys.exit(code)
""")


@pytest.mark.parametrize("action", ["up", "down", "destroy"])
def test_sigterm_interrupts_a_cloud_command_like_ctrl_c(action, tmp_path):
    proc = subprocess.run([sys.executable, "-c", CHILD, "cloud", action], capture_output=True, text=True,
                          timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
                                           "XDG_DATA_HOME": str(tmp_path / "data")})
    assert proc.returncode != -signal.SIGTERM, f"killed by SIGTERM, no cleanup: {proc.stdout!r}"
    assert "started" in proc.stdout and "cleanup ran" in proc.stdout, (proc.stdout, proc.stderr)
    assert "not interrupted" not in proc.stdout
    assert proc.returncode == 130 and "popek: interrompu" in proc.stderr, (proc.returncode, proc.stderr)
    assert "SIGTERM after: default" in proc.stdout  # put back: cli.main may run inside another program
