"""A cloud behind HTTPS with a private CA (clouds.yaml `cacert:`), or `verify: false`: what the SDK accepts,
popek's raw HTTP calls (C17's GET /servers, C16's Swift requests) and the openrc it writes for C34 must
accept too. hA, 2026-12-07: those used requests' defaults and the openrc had no OS_CACERT (SSL errors on a
healthy cloud). openstacksdk's own loader reads the entry (no network)."""
import pytest
import yaml

from popek.checks.cloud import client, connection


def _region(tmp_path, **entry):
    path = tmp_path / "clouds.yaml"
    auth = {"auth_url": "https://keystone.example:5000/v3", "username": "u", "password": "p", "project_name": "x",
            "user_domain_name": "Default", "project_domain_name": "Default"}
    path.write_text(yaml.safe_dump({"clouds": {"uni": {"auth": auth, **entry}}}))
    environ = {"OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": "uni"}
    choice = connection.resolve(None, environ, tmp_path / "none.yaml")
    return connection.load_config(choice, environ=environ, embedded_yaml=tmp_path / "none.yaml")


@pytest.mark.parametrize("entry, verify, openrc", [
    ({"cacert": "/etc/ssl/uni-ca.pem"}, "/etc/ssl/uni-ca.pem", {"OS_CACERT": "/etc/ssl/uni-ca.pem"}),
    ({"verify": False}, False, {"OS_INSECURE": "true"}),
    ({"insecure": True}, False, {"OS_INSECURE": "true"}),
    ({}, True, {}),
])
def test_the_entrys_tls_settings_reach_raw_requests_and_the_openrc(tmp_path, entry, verify, openrc):
    import openstack

    region = _region(tmp_path, **entry)
    conn = openstack.connection.Connection(config=region)    # no request made
    assert client.tls_options(conn)["verify"] == verify
    assert client.openrc_tls(region.config) == openrc


def test_a_client_certificate_goes_along(tmp_path):
    import openstack

    region = _region(tmp_path, cert="/c.pem", key="/c.key")
    conn = openstack.connection.Connection(config=region)
    assert client.tls_options(conn)["cert"] == ("/c.pem", "/c.key")
    assert client.openrc_tls(region.config) == {"OS_CERT": "/c.pem", "OS_KEY": "/c.key"}


def test_an_entry_without_password_says_how_to_give_it(tmp_path):
    """Horizon's downloadable clouds.yaml holds no password (the `openstack` client prompts): Keystone's
    English 400 'None is not of type string' became one line saying where a password goes (hA)."""
    region = _region(tmp_path)
    assert connection.password_missing(region.config) is None
    region.config["auth"].pop("password")
    assert "le mot de passe manque" in connection.password_missing(region.config)
    assert "OS_PASSWORD, --os-password" in connection.password_missing(region.config)
    assert connection.password_missing({"auth_type": "v3applicationcredential", "auth": {}}) is None
    assert connection.password_missing({"auth_type": "v3token", "auth": {"token": "t"}}) is None
