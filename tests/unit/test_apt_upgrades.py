"""A machine behind its point release (a student's laptop not updated for months): installing one new package
makes apt upgrade the machine's own installed packages. popek's apt helper refuses, before anything is
installed, naming each package with its two versions (and the ones the owner holds), and says what to run."""
import contextlib
import os

import pytest

from popek.checks.localcloud import apt

#: `apt-get install -s --no-install-recommends --no-remove e2fsprogs-l10n` on this Debian 12 (2026-12-07)
STALE = """NOTE: This is only a simulation!
The following packages will be upgraded:
  e2fsprogs libcom-err2 libext2fs2 libss2 logsave
5 upgraded, 1 newly installed, 0 to remove and 89 not upgraded.
Inst logsave [1.47.0-2] (1.47.0-2+b2 Debian:12.15/oldstable [amd64])
Inst libext2fs2 [1.47.0-2] (1.47.0-2+b2 Debian:12.15/oldstable [amd64]) [e2fsprogs:amd64 on libext2fs2:amd64] [e2fsprogs:amd64 ]
Conf libext2fs2 (1.47.0-2+b2 Debian:12.15/oldstable [amd64]) [e2fsprogs:amd64 ]
Inst e2fsprogs [1.47.0-2] (1.47.0-2+b2 Debian:12.15/oldstable [amd64])
Inst e2fsprogs-l10n (1.47.0-2 Debian:12.15/oldstable [all])
Inst libcom-err2 [1.47.0-2] (1.47.0-2+b2 Debian:12.15/oldstable [amd64])
Conf e2fsprogs-l10n (1.47.0-2 Debian:12.15/oldstable [all])
"""


def test_the_machines_packages_apt_would_upgrade_are_read_with_both_versions():
    assert apt.planned_upgrades(STALE) == [("logsave", "1.47.0-2", "1.47.0-2+b2"),
                                           ("libext2fs2", "1.47.0-2", "1.47.0-2+b2"),
                                           ("e2fsprogs", "1.47.0-2", "1.47.0-2+b2"),
                                           ("libcom-err2", "1.47.0-2", "1.47.0-2+b2")]
    assert "e2fsprogs-l10n" in apt.planned_installs(STALE)
    fresh = "Inst libvirt-daemon-system (9.0.0-4+deb12u2 Debian:12.12/stable [amd64])\n"
    assert apt.planned_upgrades(fresh) == [] and apt.planned_upgrades("") == []


def _fake_apt(tmp_path, monkeypatch, simulation: str, holds: str = "") -> "os.PathLike":
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls"
    (tmp_path / "sim").write_text(simulation)
    (fake / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (fake / "apt-mark").write_text(f"#!/bin/sh\nprintf '{holds}'\n")
    (fake / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n'
                                  f'case "$2" in -s) cat {tmp_path / "sim"};; esac\n')
    for tool in fake.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(apt.os, "geteuid", lambda: 0)
    monkeypatch.setattr(apt, "services_held_back", contextlib.nullcontext)
    monkeypatch.setattr(apt, "disable_new", lambda before, log: [])
    monkeypatch.setattr(apt, "dpkg_lock_holder", lambda: None)  # not the host's /proc/locks
    return calls


def test_an_install_that_would_upgrade_the_machines_packages_is_refused_before_anything_is_installed(
        tmp_path, monkeypatch):
    calls = _fake_apt(tmp_path, monkeypatch, STALE, holds="e2fsprogs\\n")
    lines = []
    with pytest.raises(apt.AptError) as refused:
        apt.install(["e2fsprogs-l10n"], lines.append)
    message = str(refused.value)
    assert "apt mettrait aussi à jour 4 paquet(s) déjà installé(s)" in message
    assert "logsave 1.47.0-2 → 1.47.0-2+b2" in message
    assert "e2fsprogs 1.47.0-2 → 1.47.0-2+b2 (retenu par apt-mark hold)" in message
    assert "libext2fs2 1.47.0-2 → 1.47.0-2+b2 (retenu" not in message
    assert "apt-get install --no-install-recommends e2fsprogs-l10n" in message
    assert lines == []  # nothing announced as installed
    assert [c.split()[:2] for c in calls.read_text().splitlines()] == [["install", "-s"]]  # no `install -y`


def test_an_install_of_new_packages_only_goes_on(tmp_path, monkeypatch):
    """New packages, and an installed one apt only sets up again at its own version (a half-configured one)."""
    calls = _fake_apt(tmp_path, monkeypatch, "Inst popek-demo (1.0 Debian:12 [all])\n"
                                             "Inst libdemo [2.1] (2.1 Debian:12 [amd64])\n")
    lines = []
    assert apt.install(["popek-demo"], lines.append) == ["popek-demo", "libdemo"]
    assert lines == ["apt : installation de 2 paquet(s) : popek-demo libdemo"]
    assert [c.split()[:2] for c in calls.read_text().splitlines()] == [["install", "-s"], ["install", "-y"]]


def test_the_owner_installing_themselves_may_upgrade_and_each_upgrade_is_named(tmp_path, monkeypatch):
    """The good-guest harness plays the owner installing their own libvirt: on a fresh machine of this kind
    libvirt-daemon-system upgrades systemd's packages (apt's log, 2026-12-07 07:24); refused, CI's host-up failed."""
    calls = _fake_apt(tmp_path, monkeypatch, STALE)
    lines = []
    installed = apt.install(["e2fsprogs-l10n"], lines.append, upgrades_ok=True)
    assert "e2fsprogs-l10n" in installed
    assert len(lines) == 1 and "dont 4 mise(s) à jour : logsave 1.47.0-2 → 1.47.0-2+b2" in lines[0]
    assert [c.split()[:2] for c in calls.read_text().splitlines()] == [["install", "-s"], ["install", "-y"]]
