"""popek's apt helper on a machine behind its point release (a student's laptop not updated for months), for
real: the machine's apt is asked for one new package whose dependencies are installed at an older version; popek
refuses before anything is installed, naming each package of the machine apt would upgrade, and every installed
package keeps its version. Root, the machine's apt lists; ~3 s. Skipped (with the reason) on a machine where the
candidate package would not upgrade anything (an up-to-date machine: nothing to prove there)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.integration]

#: small Debian packages whose install upgrades an older installed dependency of theirs (bash, e2fsprogs)
CANDIDATES = ("bash-doc", "e2fsprogs-l10n")


def _versions() -> dict[str, str]:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\n"], capture_output=True,
                         text=True, check=True).stdout
    return {l.split()[0]: l.split()[1] for l in out.splitlines() if l.endswith("install ok installed")}


def test_an_install_that_would_upgrade_the_machines_packages_is_refused_and_changes_nothing():
    from popek.checks.localcloud import apt

    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("il faut être root avec apt-get")
    found = None
    for pkg in CANDIDATES:
        if not apt.missing([pkg]):
            continue
        sim = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", "--no-remove", pkg],
                             capture_output=True, text=True, env={**os.environ, **apt.NONINTERACTIVE}).stdout
        upgrades = [u for u in apt.planned_upgrades(sim) if u[0] != pkg]
        if upgrades:
            found = (pkg, upgrades)
            break
    if found is None:
        pytest.skip(f"aucun de {', '.join(CANDIDATES)} ne mettrait à jour un paquet de cette machine (à jour ?)")
    pkg, upgrades = found
    before = _versions()
    lines: list[str] = []
    with pytest.raises(apt.AptError) as refused:
        apt.install([pkg], log=lines.append)
    message = str(refused.value)
    for name, old, new in upgrades:
        assert f"{name} {old} → {new}" in message, message
    assert f"apt-get install --no-install-recommends {pkg}" in message and lines == []
    assert _versions() == before and apt.missing([pkg]) == [pkg]
