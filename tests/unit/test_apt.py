"""popek's one apt helper (apt.install) changes nothing else on the machine: no service started
(policy-rc.d during the run, the machine's own back byte for byte), nothing removed, the plan shown first."""
import os

from popek.checks.localcloud import apt

SIMULATION = """NOTE: This is only a simulation!
Reading package lists...
Inst libvirt-daemon-system-systemd (9.0.0-4+deb12u2 Debian:12.12/stable [all])
Inst libvirt-daemon-system (9.0.0-4+deb12u2 Debian:12.12/stable [amd64])
Conf libvirt-daemon-system-systemd (9.0.0-4+deb12u2 Debian:12.12/stable [all])
Conf libvirt-daemon-system (9.0.0-4+deb12u2 Debian:12.12/stable [amd64])
"""


def test_the_plan_lists_every_package_apt_would_install():
    assert apt.planned_installs(SIMULATION) == ["libvirt-daemon-system-systemd", "libvirt-daemon-system"]
    assert apt.planned_installs("") == []


def test_no_service_starts_during_the_run_and_the_machines_policy_comes_back(tmp_path):
    import subprocess

    policy = tmp_path / "policy-rc.d"
    policy.write_bytes(b"#!/bin/sh\n# the machine's own\nexit 0\n")
    policy.chmod(0o700)
    with apt.services_held_back(policy):
        assert subprocess.run([str(policy), "rabbitmq-server", "start"]).returncode == 101  # action forbidden
    assert policy.read_bytes() == b"#!/bin/sh\n# the machine's own\nexit 0\n"
    assert policy.stat().st_mode & 0o7777 == 0o700 and os.listdir(tmp_path) == ["policy-rc.d"]


def test_a_machine_without_a_policy_is_left_without_one_even_when_apt_fails(tmp_path):
    policy = tmp_path / "policy-rc.d"
    try:
        with apt.services_held_back(policy):
            assert policy.read_text() == apt.POLICY_RC_D_TEXT
            raise RuntimeError("apt failed")
    except RuntimeError:
        pass
    assert os.listdir(tmp_path) == []


def test_the_links_that_enable_services_are_listed(tmp_path):
    (tmp_path / "rc2.d").mkdir()
    (tmp_path / "multi-user.target.wants").mkdir()
    (tmp_path / "rc2.d" / "S01mariadb").symlink_to("../init.d/mariadb")
    (tmp_path / "multi-user.target.wants" / "ovs.service").symlink_to("/lib/systemd/system/ovs.service")
    globs = (str(tmp_path / "*.wants" / "*"), str(tmp_path / "rc[2-5].d" / "S*"))
    assert apt.enabled_links(globs) == {str(tmp_path / "rc2.d" / "S01mariadb"),
                                            str(tmp_path / "multi-user.target.wants" / "ovs.service")}


def test_a_refused_install_is_one_apt_error_with_apts_words_and_the_plan_shown_first(tmp_path, monkeypatch):
    """apt.install against a fake apt-get/dpkg-query (on PATH): the plan is logged, the failure is an AptError
    (a CloudError: one French message, no traceback) quoting apt, and the enabled links are still swept."""
    import contextlib

    import pytest

    from popek.checks.localcloud.errors import CloudError

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (fake / "apt-get").write_text('#!/bin/sh\ncase "$2" in -s) echo "Inst popek-demo (1.0 Debian:12 [all])";; '
                                  '-y) echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2; exit 100;; '
                                  'esac\n')
    for tool in fake.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(apt.os, "geteuid", lambda: 0)
    monkeypatch.setattr(apt, "services_held_back", contextlib.nullcontext)
    monkeypatch.setattr(apt, "dpkg_lock_holder", lambda: None)  # not the host's /proc/locks
    swept, lines = [], []
    monkeypatch.setattr(apt, "disable_new", lambda before, log: swept.append(before))
    with pytest.raises(apt.AptError) as refused:
        apt.install(["popek-demo"], lines.append)
    assert isinstance(refused.value, CloudError)
    assert lines == ["apt : installation de 1 paquet(s) : popek-demo"] and len(swept) == 1
    message = str(refused.value)
    assert "apt-get install -y --no-install-recommends --no-remove -o DPkg::Lock::Timeout=600 popek-demo" in message
    assert "code 100" in message and "dpkg returned an error code" in message
