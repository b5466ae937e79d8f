"""An openrc that logs in otherwise than with a login and a password (Horizon's openrc for an application
credential: OS_AUTH_TYPE=v3applicationcredential; a token: OS_AUTH_TYPE=v3token) is what the `openstack`
client accepts: popek takes it too, and says which of *its* variables is missing. Before, popek asked such an
openrc for OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (found by hA5 on 2026-12-07, live: « openrc
incomplet … il manque OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME » where `openstack token issue` worked).

No cloud: Keystone is a closed port, so a complete openrc reaches the authentication and fails there."""
import os

import pytest

from popek.checks.cloud import connection
from popek.checks.cloud.connection import CloudUnavailable

CLOSED = "http://127.0.0.1:1/v3"
SECRET = "appcred-secret-do-not-print-77"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _connect(tmp_path, env):
    return connection.connect(None, env, tmp_path / "no-embedded" / "clouds.yaml", api_timeout=5)


@pytest.mark.parametrize("env", [
    {"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID": "a1b2",
     "OS_APPLICATION_CREDENTIAL_SECRET": SECRET},
    {"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_NAME": "ci", "OS_USERNAME": "u",
     "OS_USER_DOMAIN_NAME": "Default", "OS_APPLICATION_CREDENTIAL_SECRET": SECRET},
    {"OS_AUTH_TYPE": "v3token", "OS_TOKEN": SECRET, "OS_PROJECT_ID": "p1"},
], ids=["appcred-id", "appcred-name", "token"])
def test_an_openrc_of_another_auth_type_reaches_keystone(isolated, env):
    with pytest.raises(CloudUnavailable) as exc:
        _connect(isolated, {"OS_AUTH_URL": CLOSED, **env})
    text = str(exc.value)
    assert "injoignable" in text and "127.0.0.1:1" in text and "incomplet" not in text, text
    assert SECRET not in text and exc.value.named


@pytest.mark.parametrize("env, wanted, unwanted", [
    ({"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID": "a1b2"},
     ["OS_APPLICATION_CREDENTIAL_SECRET"], ["OS_PASSWORD", "OS_PROJECT_NAME"]),
    ({"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_SECRET": SECRET},
     ["OS_APPLICATION_CREDENTIAL_ID (ou OS_APPLICATION_CREDENTIAL_NAME et OS_USERNAME)"], ["OS_PASSWORD"]),
    ({"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_NAME": "ci",
      "OS_APPLICATION_CREDENTIAL_SECRET": SECRET}, ["OS_USERNAME ou OS_USER_ID"], ["OS_PASSWORD"]),
    ({"OS_AUTH_TYPE": "V3Token", "OS_PROJECT_ID": "p1"}, ["OS_TOKEN"], ["OS_USERNAME", "OS_PASSWORD"]),
    ({"OS_USERNAME": "u"}, ["OS_PASSWORD", "OS_PROJECT_NAME"], ["OS_TOKEN"]),
    ({"OS_AUTH_TYPE": "password", "OS_USERNAME": "u"}, ["OS_PASSWORD", "OS_PROJECT_NAME"], ["OS_TOKEN"]),
], ids=["appcred-no-secret", "appcred-no-id", "appcred-name-no-owner", "token-no-token", "password", "password-said"])
def test_an_incomplete_openrc_names_the_variables_of_its_auth_type(isolated, env, wanted, unwanted):
    with pytest.raises(CloudUnavailable) as exc:
        _connect(isolated, {"OS_AUTH_URL": CLOSED, **env})
    text = str(exc.value)
    assert "openrc incomplet" in text and all(w in text for w in wanted), text
    assert not any(u in text for u in unwanted), text
    assert SECRET not in text


def test_an_openrc_of_another_plugin_is_left_to_keystoneauth_to_judge():
    # its options are its own (e.g. v3totp's passcode): popek requires only the Keystone address
    assert connection.openrc_missing({"OS_AUTH_TYPE": "v3totp", "OS_AUTH_URL": CLOSED}) == []
    assert connection.openrc_missing({"OS_AUTH_TYPE": "v3totp"}) == ["OS_AUTH_URL"]


@pytest.mark.parametrize("auth_type, says", [
    ("v3applicationcredential", "l'identifiant d'application « ac1 »"),
    ("v3token", "Keystone refuse le jeton (401)"),
    (None, "de l'utilisateur « ac1 »"),
])
def test_a_refused_login_says_what_was_refused(auth_type, says):
    from keystoneauth1 import exceptions as ks

    text = connection.explain_auth_failure(ks.Unauthorized("The request you have made requires authentication."),
                                           CLOSED, "ac1", auth_type)
    assert says in text and "(401)" in text, text
    assert ("mot de passe" in text) == (auth_type is None), text


def _user_clouds(home, names):
    path = home / ".config" / "openstack"
    path.mkdir(parents=True, exist_ok=True)
    (path / "clouds.yaml").write_text("clouds:\n" + "".join(
        f"  {n}:\n    auth: {{auth_url: '{CLOSED}', username: u, password: x, project_name: p}}\n" for n in names))


def test_a_lone_user_cloud_is_named_when_popek_checks_its_own(isolated, monkeypatch):
    """The `openstack` client takes a clouds.yaml's only entry without OS_CLOUD (openstacksdk's loader);
    popek's default stays its embedded cloud, and the note says which cloud the client would have used."""
    from openstack.config import loader

    monkeypatch.setattr(loader, "CONFIG_FILES", [str(isolated / ".config" / "openstack" / "clouds.yaml")])
    assert connection.lone_user_cloud({}) is None            # no user file
    _user_clouds(isolated, ["uni"])
    note = connection.lone_user_cloud({})
    assert "une seule entrée, « uni »" in note and "--os-cloud uni" in note, note
    assert loader.OpenStackConfig(load_envvars=False).get_one().name == "uni"     # the client's choice indeed
    _user_clouds(isolated, ["uni", "lab"])
    assert connection.lone_user_cloud({}) is None            # several: the client would need OS_CLOUD too
    other = isolated / "other.yaml"
    other.write_text(f"clouds:\n  solo:\n    auth: {{auth_url: '{CLOSED}'}}\n")
    assert "« solo »" in connection.lone_user_cloud({"OS_CLIENT_CONFIG_FILE": str(other)})


def test_an_entry_naming_its_user_by_id_gives_the_openrc_a_login():
    from popek.checks.cloud import client

    four, domains = client.openrc_values({"auth_url": CLOSED, "user_id": "u1d", "password": "pw"}, "p1d")
    assert four == {"OS_AUTH_URL": CLOSED, "OS_TENANT_ID": "p1d", "OS_USER_ID": "u1d", "OS_PASSWORD": "pw"}
    assert domains == {}
    four, _ = client.openrc_values({"auth_url": CLOSED, "username": "u", "user_id": "u1d", "password": "pw"}, "p1d")
    assert four["OS_USERNAME"] == "u" and "OS_USER_ID" not in four


def test_an_openrc_left_loaded_beside_an_entry_is_named_when_it_breaks_it(isolated):
    """OS_PROJECT_NAME of an earlier openrc merged into an application credential's entry: the `openstack`
    client refuses it the same way (« You have provided a project_name … »); popek says it in French and
    names the variables of the environment merged in (names only)."""
    path = isolated / "ac.yaml"
    path.write_text("clouds:\n  ac:\n    auth_type: v3applicationcredential\n"
                    f"    auth: {{auth_url: '{CLOSED}', application_credential_id: a1, application_credential_secret: {SECRET}}}\n")
    env = {"OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": "ac", "OS_PROJECT_NAME": "leftover", "OS_PASSWORD": "pw-77"}
    with pytest.raises(CloudUnavailable) as exc:
        connection.connect(None, env, isolated / "none" / "clouds.yaml", api_timeout=5)
    text = str(exc.value)
    assert "project_name sans son domaine" in text and "OS_PROJECT_DOMAIN_NAME" in text, text
    assert "fusionnées dans l'entrée" in text and "OS_PASSWORD, OS_PROJECT_NAME" in text, text
    assert "pw-77" not in text and SECRET not in text and "leftover" not in text
