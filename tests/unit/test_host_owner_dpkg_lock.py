"""apt.py with dpkg's lock held by another frontend (a laptop's unattended-upgrades after boot): who holds it, read
from /proc/locks's text; the install waits for it (DPkg::Lock::Timeout) after saying so; still held, one French
message naming the holder. Fake apt-get on PATH; nothing of the host is read."""
import contextlib
import os

import pytest

from popek.checks.localcloud import apt

PROC_LOCKS = """1: OFDLCK ADVISORY  READ -1 fe:00:16140595 0 EOF
2: POSIX  ADVISORY  WRITE 26170 fe:00:402117 0 EOF
2: -> POSIX  ADVISORY  WRITE 26171 fe:00:402117 0 EOF
3: FLOCK  ADVISORY  WRITE 812 08:01:402117 0 EOF
"""


def test_the_holder_of_a_files_lock_is_read_from_proc_locks():
    assert apt.lock_holders(PROC_LOCKS, (254, 0), 402117) == [26170]       # not the waiter 26171
    assert apt.lock_holders(PROC_LOCKS, (8, 1), 402117) == [812]           # another device, same inode
    assert apt.lock_holders(PROC_LOCKS, (254, 0), 1) == []
    assert apt.lock_holders("", (254, 0), 402117) == []


def test_the_refusal_names_the_holder_apt_named_and_what_to_do():
    said = ("apt : `apt-get install …` a échoué (code 100) :\nE: Could not get lock /var/lib/dpkg/lock-frontend. "
            "It is held by process 26170 (unattended-upgr)\nE: Unable to acquire the dpkg frontend lock")
    message = apt.locked_refusal(["openvswitch-switch", "haproxy"], said, 600)
    assert "le processus 26170 (unattended-upgr) depuis plus de 600 s" in message
    assert "popek n'y touche pas" in message
    assert message.endswith("apt-get install --no-install-recommends openvswitch-switch haproxy")
    assert "un autre gestionnaire de paquets" in apt.locked_refusal(["x"], "E: Could not get lock", 5)
    after_a_wait = "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?"
    assert "par le processus 9 (apt) depuis" in apt.locked_refusal(["x"], after_a_wait, 5, "le processus 9 (apt)")


def _fake_apt(tmp_path, monkeypatch, install_script: str):
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls"
    (fake / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (fake / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n'
                                  'case "$2" in -s) echo "Inst popek-demo (1.0 Debian:12 [all])";; '
                                  f'-y) {install_script};; esac\n')
    for tool in fake.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(apt.os, "geteuid", lambda: 0)
    monkeypatch.setattr(apt, "services_held_back", contextlib.nullcontext)
    monkeypatch.setattr(apt, "disable_new", lambda before, log: [])
    monkeypatch.setattr(apt, "dpkg_lock_holder", lambda: "le processus 26170 (unattended-upgr)")
    return calls


def test_a_held_lock_is_announced_then_waited_for_with_apts_timeout(tmp_path, monkeypatch):
    calls = _fake_apt(tmp_path, monkeypatch, "exit 0")
    lines = []
    assert apt.install(["popek-demo"], lines.append, lock_wait=42) == ["popek-demo"]
    assert lines[1] == "apt : dpkg est occupé par le processus 26170 (unattended-upgr) : popek attend qu'il ait fini (42 s au plus)"
    assert "-o DPkg::Lock::Timeout=42 popek-demo" in calls.read_text().splitlines()[-1]


def test_a_lock_still_held_after_the_wait_is_one_french_message(tmp_path, monkeypatch):
    _fake_apt(tmp_path, monkeypatch, 'echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by '
                                     'process 26170 (unattended-upgr)" >&2; exit 100')
    with pytest.raises(apt.AptError) as refused:
        apt.install(["popek-demo"], [].append, lock_wait=3)
    assert str(refused.value).startswith("apt : dpkg est occupé par le processus 26170 (unattended-upgr) depuis plus de 3 s")
