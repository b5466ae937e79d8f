"""The `openstack` client's options of an application credential, spelled as the client documents them
(`--os-application-credential-id`, osc-lib registers every plugin option with dashes), are taken by popek:
openstacksdk's loader registers keystoneauth's own names, `--os-application_credential_id`, and popek
refused the dashed one as « option(s) inconnue(s) du client openstack » (hA5, 2026-12-07)."""
import os

import pytest

from helpers import run_popek
from popek import cli

SECRET = "ac-secret-cli-6160"


@pytest.fixture
def isolated(tmp_path):
    env = {k: "" for k in os.environ if k.startswith("OS_")}
    env.update(HOME=str(tmp_path), POPEK_HOME=str(tmp_path / "popek"))
    return tmp_path, env


@pytest.mark.parametrize("spelling", ["-", "_"])
def test_application_credential_options_in_either_spelling(isolated, monkeypatch, spelling):
    tmp, env = isolated
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp))
    opt = f"--os-application{spelling}credential{spelling}"
    got = cli.cloud_options(["--os-auth-url", "http://127.0.0.1:9/v3", "--os-auth-type", "v3applicationcredential",
                             f"{opt}id", "a1", f"{opt}secret={SECRET}"], None)
    assert got == {"OS_AUTH_URL": "http://127.0.0.1:9/v3", "OS_AUTH_TYPE": "v3applicationcredential",
                   "OS_APPLICATION_CREDENTIAL_ID": "a1", "OS_APPLICATION_CREDENTIAL_SECRET": SECRET}


def test_popek_run_with_an_application_credential_on_the_command_line(isolated):
    tmp, env = isolated
    proc = run_popek("cloud", "sweep", "--dry-run", "--os-auth-url", "http://127.0.0.1:9/v3",
                     "--os-auth-type", "v3applicationcredential", "--os-application-credential-id", "a1",
                     "--os-application-credential-secret", SECRET, cwd=tmp, env=env)
    assert proc.returncode != 0 and "127.0.0.1:9" in proc.stderr and "injoignable" in proc.stderr, proc.stderr
    assert "inconnue" not in proc.stderr and SECRET not in proc.stdout + proc.stderr
