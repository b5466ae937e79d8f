"""A good guest on a student's laptop popek was never tried on: a root shell from Debian's `su` without `-`.

util-linux's `su` (Debian 10 and later) keeps the user's PATH: /usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games,
without /usr/sbin or /sbin, where nft, losetup, sysctl, mkfs.ext4 and chroot live. Measured 2026-12-07 19:24
(hG3, flock -s), before popek.syspath: from such a shell `popek cloud status` said « clôture des instances absente :
commande nft absente (paquet nftables) » and exited 0 while nft (/usr/sbin/nft) was installed and popek's table in
place; `up` would refuse the fence for the same false reason, `down` would leave the table (fence.remove: nft not
found) and popek's loop devices (losetup not found) behind. The CLI now appends the missing system directories.

Read-only (two `popek cloud status`, ~4 s): the embedded cloud must run in dataplane mode, as root with nft.
The down/up case from such a shell is in test_host_owner_laptop.py (opt-in).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

#: the PATH a root shell from Debian's `su` (without `-`) keeps: the user's (login.defs ENV_PATH, Debian's /etc/profile)
SU_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"


def fence_line(status_out: str) -> str:
    """The status line about the guests' fence, its counters' numbers left out (the host's traffic moves them)."""
    lines = [l for l in status_out.splitlines() if l.startswith("clôture des instances")]
    assert len(lines) == 1, f"pas de ligne « clôture des instances » dans :\n{status_out[-1500:]}"
    return re.sub(r"\d+", "N", lines[0])


def test_status_from_a_su_shell_sees_the_fence_as_a_login_shell_does(record_property):
    from helpers import run_popek, running_cloud

    running_cloud(dataplane=True, root_for="lire la clôture nftables")
    if not Path("/usr/sbin/nft").exists():
        pytest.skip("nft n'est pas dans /usr/sbin sur cette machine : rien à prouver sur le PATH de `su`")
    if shutil.which("nft", path=SU_PATH) is not None:
        pytest.skip("nft est aussi dans le PATH de `su` sur cette machine (/usr/bin) : rien à prouver")
    login = run_popek("cloud", "status", env={"PATH": os.environ["PATH"]}, timeout=120)
    su = run_popek("cloud", "status", env={"PATH": SU_PATH}, timeout=120)
    record_property("login", f"rc={login.returncode} {fence_line(login.stdout)}")
    record_property("su", f"rc={su.returncode} {fence_line(su.stdout)}")
    assert "nft absente" not in su.stdout + su.stderr, su.stdout[-1500:]
    assert fence_line(su.stdout) == fence_line(login.stdout)
    assert su.returncode == login.returncode, (su.returncode, su.stderr[-800:])
