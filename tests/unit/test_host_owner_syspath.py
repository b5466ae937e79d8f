"""popek.syspath: the system directories a root shell from Debian's `su` (without `-`) lacks, appended by the CLI."""
import os

import pytest

from popek import cli, syspath


def test_a_su_shells_path_gets_the_sbin_directories_after_its_own():
    got = syspath.with_system_dirs("/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games")
    assert got.split(":") == ["/usr/local/bin", "/usr/bin", "/bin", "/usr/local/games", "/usr/games",
                              "/usr/local/sbin", "/usr/sbin", "/sbin"]


def test_a_complete_path_is_unchanged_and_the_users_order_wins():
    full = "/root/.venv/bin:/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/bin:/sbin:/bin"
    assert syspath.with_system_dirs(full) == full
    assert syspath.with_system_dirs("/usr/sbin/:/opt/x") == \
        "/usr/sbin/:/opt/x:/usr/local/sbin:/usr/local/bin:/usr/bin:/sbin:/bin"   # a trailing / counts


def test_no_path_at_all_gives_the_system_directories_and_empty_entries_are_dropped():
    assert syspath.with_system_dirs(None) == ":".join(syspath.SYSTEM_DIRS)
    assert syspath.with_system_dirs("") == ":".join(syspath.SYSTEM_DIRS)
    assert syspath.with_system_dirs("::/opt/bin:") == "/opt/bin:" + ":".join(syspath.SYSTEM_DIRS)


def test_complete_environ_changes_only_path():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
    assert syspath.complete_environ(env) == "/usr/bin:/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin"
    assert env == {"PATH": "/usr/bin:/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin", "HOME": "/root"}


def test_the_cli_completes_path_before_any_command_runs(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    with pytest.raises(SystemExit):     # argparse's --help: the command itself never runs
        cli.main(["--help"])
    capsys.readouterr()
    assert os.environ["PATH"].split(":")[-3:] == ["/usr/local/sbin", "/usr/sbin", "/sbin"]
