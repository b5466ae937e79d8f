"""The embedded cloud's one command runner (runcmd.run): the caller's error type, one French message with the
command, its exit code and the end of its output (or its log, 0600, passwords redacted)."""
import pytest

from popek.checks.localcloud import runcmd
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.images import ImageBuildError
from popek.checks.secrets import REDACT


def test_a_failure_raises_the_callers_error_with_the_end_of_the_output():
    script = "for i in $(seq 40); do echo line $i; done >&2; exit 3"
    with pytest.raises(ImageBuildError) as failed:
        runcmd.run(["sh", "-c", script], ImageBuildError, what="image : ")
    message = str(failed.value)
    assert message.startswith("image : `sh -c for i in") and "a échoué (code 3)" in message
    assert "line 40" in message and "line 26" in message and "line 25\n" not in message  # the last 15 lines
    assert runcmd.run(["sh", "-c", "echo ok"]).stdout == "ok\n"
    assert runcmd.run(["sh", "-c", "exit 4"], check=False).returncode == 4


def test_a_logged_command_appends_to_a_private_log_named_in_the_message(tmp_path):
    REDACT.add("s3cr3t-pw")
    log = tmp_path / "log" / "setup-x.log"
    runcmd.run(["sh", "-c", "echo first"], log=log)
    with pytest.raises(CloudError) as failed:
        runcmd.run(["sh", "-c", "echo second; exit 1", "--password=s3cr3t-pw"], log=log, what="étape x : ")
    assert str(failed.value).endswith(f"voir {log}") and "s3cr3t-pw" not in str(failed.value)
    text = log.read_text()
    assert "first" in text and "second" in text and "s3cr3t-pw" not in text
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_whole_environment_is_passed_as_is_or_added_to_ours(monkeypatch):
    monkeypatch.setenv("OS_CLOUD", "the-callers")
    show = ["/bin/sh", "-c", 'echo "${OS_CLOUD:-none} $A"']
    assert runcmd.run(show, env={"A": "1"}).stdout == "the-callers 1\n"
    assert runcmd.run(show, env={"A": "2"}, inherit_env=False).stdout == "none 2\n"
