"""The pure logic of the API-level cloud checks (C11, C22, C27, C28, C30, C34, C35, C37, C25's property):
each can say ÉCHEC on the observations that contradict its claim."""
import ipaddress
from types import SimpleNamespace

import pytest

from popek.checks.cloud import catalog, client, compute, secgroups, versions


@pytest.mark.parametrize("mv, kind, says", [
    ("2.104", "release", "2026.2 Hibiscus"),
    ("2.100", "release", "2025.1 Epoxy / 2025.2 Flamingo"),
    ("2.103", "release", "2026.1 Gazpacho"),
    ("2.97", "between", "Nova de développement"),
    ("1.39", "not-nova", "pas une microversion de l'API compute"),
    ("3.71", "not-nova", "pas une microversion de l'API compute"),
    ("2.140", "newer", "postérieure à 2026.2 Hibiscus"),
    ("2.1", "older", "antérieure à Queens"),
    ("v2.1", "not-nova", "n'est pas une microversion"),
])
def test_nova_release_names_only_a_published_maximum(mv, kind, says):
    got_kind, text = versions.nova_release(mv)
    assert (got_kind, says in text) == (kind, True), text


def test_the_table_is_sorted_and_uses_the_calendar_names_since_2023():
    tops = [top for top, _ in versions.NOVA_MAX_MICROVERSION]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    for top, name in versions.NOVA_MAX_MICROVERSION:
        if top >= (2, 95):
            assert all(versions.CALENDAR_NAME.match(n.strip()) for n in name.split("/")), name


@pytest.mark.parametrize("release, place", [
    ("2025.1 Epoxy / 2025.2 Flamingo", "citée par le cours"),
    ("2026.1 Gazpacho", "citée par le cours"),
    ("2026.2 Hibiscus", "1 version(s) après 2026.1 Gazpacho"),
    ("2024.1 Caracal / 2024.2 Dalmatian", "1 version(s) avant 2025.1 Epoxy"),
    ("Zed", "avant le nommage"),
])
def test_calendar_place(release, place):
    assert versions.calendar_place(release).startswith(place)


@pytest.mark.parametrize("stype, url, first", [
    ("compute", "http://h:8774/v2.1", "http://h:8774/v2.1"),
    ("volumev3", "http://h:8776/v3/afacd12f35914e1e99d47b6931eff9f1", "http://h:8776/v3"),
    ("object-store", "http://h:8080/v1/AUTH_afacd12f35914e1e99d47b6931eff9f1", "http://h:8080/info"),
    ("image", "http://h:9292", "http://h:9292"),
])
def test_version_document_urls(stype, url, first):
    urls = catalog.version_urls(stype, url)
    assert urls[0] == first
    assert all(u.startswith("http://h:") for u in urls)


def test_a_service_named_otherwise_is_not_the_course_project():
    assert catalog.named_by_course({"name": "cinderv3"}, "Cinder")
    assert catalog.named_by_course({"name": "Nova"}, "Nova")
    assert not catalog.named_by_course({"name": "calcul"}, "Nova")
    assert not catalog.named_by_course({"name": None}, "Nova")


def test_answer_text_names_every_address_tried():
    found = {"url": "http://h:9697", "essais": [["http://h:9697", "injoignable (ConnectFailure)"]], "document": None}
    text = catalog.answer_text("Neutron", found)
    assert "http://h:9697 → injoignable" in text and "ne rend pas" in text


def test_iaas_needs_compute_image_and_network():
    entries = [{"type": "compute"}, {"type": "image"}]
    offers = catalog.as_a_service(entries, set())
    assert offers["IaaS (Infrastructure as a Service)"] == ["compute", "image"]
    assert offers["SaaS (Software as a Service)"] == []
    assert set(catalog.AS_A_SERVICE["IaaS (Infrastructure as a Service)"]) == {"compute", "image", "network"}


def test_openrc_has_the_course_four_variables_and_the_domains_apart():
    auth = {"auth_url": "http://k/v3", "username": "demo", "password": "s3cr'et", "project_name": "demo",
            "user_domain_name": "Default", "project_domain_name": "Default"}
    four, domains = client.openrc_values(auth, "p1d")
    assert list(four) == list(client.COURSE_OPENRC)
    assert four["OS_TENANT_ID"] == "p1d"
    assert domains == {"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"}
    text = client.openrc_text(four)
    assert text.splitlines()[0] == "export OS_AUTH_URL=http://k/v3"
    assert "export OS_PASSWORD='s3cr'\"'\"'et'" in text


@pytest.mark.parametrize("entry, says", [
    ({"auth": {"auth_url": "http://k/v3", "username": "u", "password": "p", "project_name": "x"}}, None),
    ({"auth_type": "v3password", "auth": {"auth_url": "http://k/v3", "username": "u", "password": "p",
                                       "project_id": "x", "user_domain_name": "d"}}, None),
    ({"auth_type": "v3applicationcredential",
      "auth": {"auth_url": "http://k/v3", "application_credential_id": "i", "application_credential_secret": "s"}},
     "identifiant d'application"),
    ({"auth_type": "v3token", "auth": {"auth_url": "http://k/v3", "token": "t", "project_id": "x"}}, "un jeton"),
])
def test_credentials_without_login_and_password_cannot_make_the_courses_openrc(tmp_path, entry, says):
    """C34 on a cloud reached with an application credential or a token (hX, 2026-12-07: it was ÉCHEC
    "il manque : identifiant, mot de passe, projet" on a healthy cloud): the scenario is IGNORÉ with the
    kind of credentials, read the way popek's loader reads the clouds.yaml entry."""
    import yaml

    from popek.checks.cloud import connection

    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {"c": entry}}))
    choice = connection.resolve("c", {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")}, tmp_path / "none.yaml")
    region = connection.load_config(choice, environ={"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")})
    reason = client.openrc_unusable(region.config.get("auth_type"))
    if says is None:
        assert reason is None
    else:
        assert says in reason and entry["auth_type"] in reason and "OS_PASSWORD" in reason


def test_a_wrong_openrc_is_refused_by_the_client_without_the_password_in_the_verdict(tmp_path):
    """The real `openstack` client, an unreachable Keystone: the verdict says it failed, no password."""
    values = {"OS_AUTH_URL": "http://127.0.0.1:9/v3", "OS_TENANT_ID": "x", "OS_USERNAME": "u",
              "OS_PASSWORD": "pw-not-shown-7f3"}
    got = client.token_issue_with_openrc(values, {"PATH": "/usr/bin:/bin"}, timeout=60)
    assert not got["ok"] and got["erreur"]
    assert "pw-not-shown-7f3" not in got["erreur"]


def _flavor(name, vcpus, ram, disk):
    return SimpleNamespace(name=name, vcpus=vcpus, ram=ram, disk=disk)


def test_flavor_defects_accept_disk_zero_and_name_a_missing_size():
    ok = [_flavor("tiny", 1, 64, 0), _flavor("small", 2, 2048, 20), _flavor("big", 1, 8192, 1)]
    assert compute.flavor_defects(ok) == []  # no invented ordering between flavors
    bad = compute.flavor_defects([_flavor("x", 0, 512, 1), _flavor("y", 1, 0, -1), _flavor("z", 1, None, 1)])
    assert len(bad) == 3 and "vCPU" in bad[0] and "RAM, disque" in bad[1] and "RAM" in bad[2]
    assert compute.flavor_table([_flavor("tiny", 1, 64, 0)])[0]["disque (Gio)"] == "0 (taille de l'image)"


RULE = {"direction": "ingress", "ether_type": "IPv4", "protocol": "tcp", "port_range_min": 1,
        "port_range_max": 65535, "remote_ip_prefix": None, "description": None}


def shown(**change):
    base = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "description": ""}
    return {**base, **change}


def test_full_port_range_read_back_without_a_range_is_neutron_normalisation():
    assert secgroups.round_trip_mismatches(RULE, shown()) == []
    # ... but a range that comes back at all when the whole range was given is not what Neutron documents
    assert secgroups.round_trip_mismatches(RULE, shown(port_range_min=1, port_range_max=65535))
    # and a partial range must come back as given
    partial = {**RULE, "port_range_min": 2}
    assert "port_range_min" in secgroups.round_trip_mismatches(partial, shown())[0]


def test_ipv6_legacy_icmp_names_and_prefix_spellings():
    rule = {**RULE, "ether_type": "IPv6", "protocol": "icmp", "port_range_min": 128, "port_range_max": 0,
            "remote_ip_prefix": "::40:0/106"}
    ok = shown(ethertype="IPv6", protocol="ipv6-icmp", port_range_min=128, port_range_max=0,
               remote_ip_prefix="::0.64.0.0/106")
    assert secgroups.round_trip_mismatches(rule, ok) == []
    assert secgroups.round_trip_mismatches(rule, {**ok, "remote_ip_prefix": "::80:0/106"})
    assert secgroups.round_trip_mismatches(rule, {**ok, "protocol": "icmp"})


def test_every_found_example_is_a_valid_rule_the_property_replays():
    for found in secgroups.FOUND_EXAMPLES:
        assert set(found) == set(secgroups.FIELDS)
        expected = secgroups.expected_rule(found)
        if found["remote_ip_prefix"]:
            assert expected["remote_ip_prefix"] == ipaddress.ip_network(found["remote_ip_prefix"])
    assert any((f["port_range_min"], f["port_range_max"]) == secgroups.FULL_PORT_RANGE
               for f in secgroups.FOUND_EXAMPLES)
