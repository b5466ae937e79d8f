"""Cloud selection by openstacksdk's own loader: a user's clouds.yaml in its standard place, the embedded
cloud's entries beside it, OS_* variables merged into a named entry, malformed entries as one French line.

No cloud is needed: the clouds point at a closed port, so `connect` fails at the authentication with the
cause, and `load_config` stops before the network."""
import os
import textwrap

import pytest
from openstack.config import loader     # before any test changes HOME: it computes its search path on import

from popek.checks.cloud import connection
from popek.checks.cloud.connection import CloudUnavailable

CLOSED = "http://127.0.0.1:1/v3"

EMBEDDED = textwrap.dedent(f"""\
    clouds:
      popek:
        auth: {{auth_url: "{CLOSED}", username: demo, password: emb-pw-1, project_name: demo,
               user_domain_name: Default, project_domain_name: Default}}
        region_name: RegionOne
      popek-admin:
        auth: {{auth_url: "{CLOSED}", username: admin, password: emb-pw-2, project_name: admin,
               user_domain_name: Default, project_domain_name: Default}}
        region_name: RegionOne
    """)

USER = textwrap.dedent("""\
    clouds:
      mine:
        auth: {auth_url: "http://127.0.0.1:2/v3", username: me, project_name: p,
               user_domain_name: Default, project_domain_name: Default}
    """)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temporary HOME with ~/.config/openstack/clouds.yaml naming another cloud ("mine", no password),
    the embedded cloud's clouds.yaml elsewhere, no OS_* variable, and a cwd without clouds.yaml."""
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    user_dir = tmp_path / ".config" / "openstack"
    user_dir.mkdir(parents=True)
    (user_dir / "clouds.yaml").write_text(USER)
    embedded = tmp_path / "popek" / "cloud" / "clouds.yaml"
    embedded.parent.mkdir(parents=True)
    embedded.write_text(EMBEDDED)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # openstacksdk computed its search path at import time from the real HOME: point it at this one
    files = [str(user_dir / f"clouds{s}") for s in (".yaml", ".yml", ".json")]
    monkeypatch.setattr(loader, "CONFIG_FILES", [str(work / "clouds.yaml")] + files)
    monkeypatch.setattr(loader, "SECURE_FILES", [str(user_dir / "secure.yaml")])
    return tmp_path, user_dir, embedded


def region(env, os_cloud, embedded):
    choice = connection.resolve(os_cloud, env, embedded)
    return connection.load_config(choice, 5, env, embedded)


def test_the_embedded_entries_are_found_beside_a_users_own_clouds_yaml(home):
    _, user_dir, embedded = home
    for name, user in (("popek", "demo"), ("popek-admin", "admin")):
        assert region({}, name, embedded).config["auth"]["username"] == user
    assert region({}, "mine", embedded).config["auth"]["username"] == "me"
    # default run (nothing named): the embedded member entry
    assert region({}, None, embedded).config["auth"]["username"] == "demo"


def test_an_unknown_cloud_lists_every_known_cloud_and_the_files_actually_read(home):
    _, user_dir, embedded = home
    with pytest.raises(CloudUnavailable) as exc:
        region({}, "nope", embedded)
    text = str(exc.value)
    assert "mine" in text and "popek" in text and "popek-admin" in text
    assert f"lus : {user_dir / 'clouds.yaml'}, {embedded}" in text
    assert "/etc/openstack" not in text         # not read: only the first existing file is


def test_a_users_entry_called_popek_wins_over_the_embedded_one(home):
    _, user_dir, embedded = home
    (user_dir / "clouds.yaml").write_text(USER + "  popek:\n    auth: {auth_url: 'http://x:1/v3', username: other,"
                                          " password: p, project_name: p}\n")
    assert region({}, "popek", embedded).config["auth"]["username"] == "other"


def test_an_entry_without_password_takes_os_password_as_the_openstack_client_does(home):
    _, _, embedded = home
    auth = region({"OS_PASSWORD": "from-env-77"}, "mine", embedded).config["auth"]
    assert auth["password"] == "from-env-77" and auth["username"] == "me"
    auth = region({"OS_CLOUD": "mine", "OS_PASSWORD": "from-env-77"}, None, embedded).config["auth"]
    assert auth["password"] == "from-env-77"


def test_secure_yaml_is_merged_into_the_entry(home):
    _, user_dir, embedded = home
    (user_dir / "secure.yaml").write_text("clouds:\n  mine:\n    auth: {password: from-secure-9}\n")
    assert region({}, "mine", embedded).config["auth"]["password"] == "from-secure-9"


def test_os_client_config_file_comes_first(home, tmp_path):
    _, _, embedded = home
    other = tmp_path / "other.yaml"
    other.write_text("clouds:\n  elsewhere:\n    auth: {auth_url: 'http://x:1/v3', username: e, password: p, project_name: p}\n")
    env = {"OS_CLIENT_CONFIG_FILE": str(other)}
    assert region(env, "elsewhere", embedded).config["auth"]["username"] == "e"
    with pytest.raises(CloudUnavailable, match="lus : .*other.yaml"):
        region(env, "mine", embedded)   # the user's file is not read when OS_CLIENT_CONFIG_FILE exists


def test_a_cwd_clouds_yaml_is_read_first_like_the_openstack_client(home):
    _, _, embedded = home
    (home[0] / "work" / "clouds.yaml").write_text(
        "clouds:\n  here:\n    auth: {auth_url: 'http://x:1/v3', username: h, password: p, project_name: p}\n")
    assert region({}, "here", embedded).config["auth"]["username"] == "h"
    assert region({}, "popek", embedded).config["auth"]["username"] == "demo"


@pytest.mark.parametrize("text, expected", [
    ("clouds: {x: 5}\n", "entrée « x »"),
    ("clouds:\n  x:\n    auth: 7\n", "« auth: » doit contenir des clés"),
    ("clouds:\n  x:\n    auth_type: nosuchplugin\n    auth: {auth_url: 'http://x:1/v3'}\n", "auth_type"),
    ("clouds:\n  x: [unclosed\n", "ligne 3"),   # where the parser found the end of file
    ("- a\n- list\n", "mal formé"),
])
def test_a_malformed_entry_is_one_french_line(home, text, expected):
    _, user_dir, embedded = home
    (user_dir / "clouds.yaml").write_text(text)
    with pytest.raises(CloudUnavailable) as exc:
        region({}, "x", embedded)
    assert expected in str(exc.value) and exc.value.named
    assert "\n" not in str(exc.value)


def test_a_malformed_user_file_does_not_stop_the_default_embedded_run(home):
    _, user_dir, embedded = home
    (user_dir / "clouds.yaml").write_text("clouds: {x: 5}\n")
    assert region({}, None, embedded).config["auth"]["username"] == "demo"


def test_an_openrc_is_read_from_the_environment(home):
    _, _, embedded = home
    env = {"OS_AUTH_URL": CLOSED, "OS_USERNAME": "rc", "OS_PASSWORD": "rc-pw", "OS_PROJECT_NAME": "p",
           "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
    auth = region(env, None, embedded).config["auth"]
    assert auth["username"] == "rc" and auth["password"] == "rc-pw"


def test_connect_names_the_unreachable_keystone_of_a_user_entry(home):
    _, _, embedded = home
    with pytest.raises(CloudUnavailable) as exc:
        connection.connect("mine", {"OS_PASSWORD": "secret-pw-31"}, embedded, api_timeout=3)
    assert "injoignable" in str(exc.value) and "127.0.0.1:2" in str(exc.value)
    assert "secret-pw-31" not in str(exc.value)


def test_the_embedded_keystone_unreachable_names_a_silent_database_behind_it(home, monkeypatch):
    # MariaDB frozen: Keystone cannot issue a token (ConnectTimeout after api_timeout); on the embedded
    # cloud the database and the bus are probed, and the silent one is named beside Keystone's failure
    from popek.checks.cloud import components

    _, _, embedded = home
    probed = []
    monkeypatch.setattr(components, "silent_backends", lambda etc: probed.append(etc) or [
        "la base de données MariaDB (unix:/x/mysqld.sock) ne répond pas en 3 s (aucun salut)"])
    with pytest.raises(CloudUnavailable) as info:
        connection.connect(None, {}, embedded, api_timeout=2)
    assert "Keystone injoignable" in str(info.value) and "la base de données MariaDB" in str(info.value)
    assert probed == [embedded.parent / "etc"]
    with pytest.raises(CloudUnavailable) as other:  # a user's own cloud: its database is not ours to probe
        connection.connect("mine", {"OS_PASSWORD": "x"}, embedded, api_timeout=2)
    assert "MariaDB" not in str(other.value) and probed == [embedded.parent / "etc"]
