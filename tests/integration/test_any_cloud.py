"""A user who already uses OpenStack: ~/.config/openstack/clouds.yaml names other clouds. popek still finds
the embedded cloud (by default and as `--os-cloud popek`), an entry without password takes OS_PASSWORD as
the `openstack` client does, and an unreachable or malformed cloud is one line with a non-zero exit.
Runs the real `popek` command in a temporary HOME against the embedded cloud (a few catalogue scenarios)."""
import os

import pytest
import yaml

from popek import paths
from popek.checks.cloud import connection

from faults import slow
from helpers import allure_results

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

FEW = "catalogue"      # -k: the catalogue scenarios (a few seconds)


@pytest.fixture(scope="module")
def member():
    """The embedded cloud's member entry (skip when the embedded cloud is not up)."""
    try:
        connection.connect(None, os.environ, paths.embedded_clouds_yaml())
    except connection.CloudUnavailable as exc:
        pytest.skip(f"pas de cloud embarqué : {exc}")
    return yaml.safe_load(paths.embedded_clouds_yaml().read_text())["clouds"]["popek"]


@pytest.fixture
def home(tmp_path, member):
    """(HOME, env): a user clouds.yaml with "mine" (unreachable), "nopw" (the embedded member without
    its password) and "region2" (the member in a region the catalog lacks); no OS_* variable; the embedded
    cloud's state where it is."""
    user_dir = tmp_path / ".config" / "openstack"
    user_dir.mkdir(parents=True)
    nopw = {**member, "auth": {k: v for k, v in member["auth"].items() if k != "password"}}
    (user_dir / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {
        "mine": {"auth": {"auth_url": "http://127.0.0.1:9/v3", "username": "me", "password": "x", "project_name": "p"}},
        "nopw": nopw, "region2": {**member, "region_name": "RegionTwo"}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(HOME=str(tmp_path), POPEK_HOME=str(paths.state_home()))
    return tmp_path, env


def popek(home, *args, env=None):
    import subprocess
    import sys
    from pathlib import Path

    tmp, base = home
    argv = [str(Path(sys.executable).parent / "popek"), *args]
    return subprocess.run(argv, cwd=tmp, env={**base, **(env or {})}, capture_output=True, text=True, timeout=600)


def passed(results):
    found = allure_results(results)
    assert found and all(r["status"] in ("passed", "skipped") for r in found), [(r["name"], r["status"]) for r in found]
    return sum(r["status"] == "passed" for r in found)


@pytest.mark.parametrize("named", [[], ["--os-cloud", "popek"]], ids=["default", "os-cloud-popek"])
def test_the_embedded_cloud_is_found_beside_a_users_clouds_yaml(home, named):
    results = home[0] / "r"
    proc = popek(home, "run", "cloud", *named, "-k", FEW, "--no-report", "--no-cloud-up", "--results", str(results))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert passed(results) >= 2


@pytest.mark.parametrize("how", ["OS_PASSWORD", "--os-password"])
def test_an_entry_without_password_takes_os_password(home, member, how):
    results = home[0] / "r"
    secret = member["auth"]["password"]
    given = {"env": {"OS_PASSWORD": secret}} if how == "OS_PASSWORD" else {}
    options = ["--os-password", secret] if how == "--os-password" else []
    proc = popek(home, "run", "cloud", "--os-cloud", "nopw", *options, "-k", FEW, "--no-report", "--results",
                 str(results), **given)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert passed(results) >= 2
    written = "".join(p.read_text(errors="replace") for p in results.rglob("*") if p.is_file())
    assert secret not in proc.stdout + proc.stderr + written


@pytest.mark.parametrize("cloud, text, expected", [
    ("mine", None, "injoignable"),
    ("nopw", None, "le mot de passe manque (le clouds.yaml téléchargé depuis Horizon n'en contient pas)"),
    ("region2", None, "la région « RegionTwo » (region_name / OS_REGION_NAME) n'est pas dans le catalogue"),
    ("x", "clouds: {x: 5}\n", "entrée « x »"),
    ("x", "clouds:\n  x:\n    auth_type: nosuchplugin\n    auth: {auth_url: 'http://127.0.0.1:9/v3'}\n", "auth_type"),
])
def test_an_unreachable_or_malformed_cloud_is_one_line(home, cloud, text, expected):
    if text:
        (home[0] / ".config" / "openstack" / "clouds.yaml").write_text(text)
    proc = popek(home, "run", "cloud", "--os-cloud", cloud, "--no-report", "--results", str(home[0] / "r"))
    assert proc.returncode != 0
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.fixture
def untrusted_https(tmp_path):
    """An https:// address on loopback whose certificate no CA of this host signed (a cloud behind a private
    CA, seen without its `cacert:`): a TLS server thread that only does handshakes."""
    import shutil
    import socket
    import ssl
    import subprocess
    import threading

    if not shutil.which("openssl"):
        pytest.skip("openssl absent : pas de certificat de test")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=tmp_path, check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                raw, _ = server.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                raw.close()     # the client refused the certificate: what this address is for
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.getsockname()[1]}/v3"
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.mark.parametrize("cacert, expected", [
    (None, "certificat non reconnu ("),
    ("/nowhere/ca.pem", "(cacert: / OS_CACERT) est introuvable ou illisible : /nowhere/ca.pem"),
])
def test_a_certificate_the_client_cannot_trust_is_one_line(home, untrusted_https, cacert, expected):
    entry = {"auth": {"auth_url": untrusted_https, "username": "me", "password": "pw-not-shown", "project_name": "p",
                      "user_domain_name": "Default", "project_domain_name": "Default"}}
    if cacert:
        entry["cacert"] = cacert
    (home[0] / ".config" / "openstack" / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {"tls": entry}}))
    proc = popek(home, "run", "cloud", "--os-cloud", "tls", "--no-report", "--results", str(home[0] / "r"))
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "pw-not-shown" not in proc.stdout + proc.stderr


@slow("un projet, deux réseaux externes et un run C24 (~1 min)", " (sous flock -s)")
def test_an_external_network_without_subnet_is_passed_over_for_floating_ips(tmp_path):
    """A cloud with two external networks, the one without subnet listed first (Neutron lists by id): the
    floating IPs come from the other one, and the evidence says why. The subnet-less one is external for
    this test's project only (an RBAC policy access_as_external), so no other run sees it. Measured by hX
    on 2026-12-07: before ab4ee26 both C24 scenarios ÉCHEC/broken (400 « does not contain any IPv4 subnet »)."""
    from test_foreign_project import _project, _run

    with _project() as (admin, project, name, _password, entry):
        public = next(iter(admin.network.networks(is_router_external=True, name="public")), None)
        if public is None:
            pytest.skip("le cloud embarqué n'a pas de réseau « public »")
        made = []
        try:
            for _ in range(12):     # one whose id sorts before public's, so Neutron lists it first
                net = admin.network.create_network(name=f"{name}-ext-vide")
                made.append(net)
                if net.id < public.id:
                    break
            admin.network.create_rbac_policy(object_type="network", object_id=made[-1].id,
                                             action="access_as_external", target_project_id=project.id)
            proc, found, written = _run(tmp_path, entry, "-n", "2", "--claim", "C24")
        finally:
            for net in made:
                for policy in admin.network.rbac_policies(object_id=net.id):
                    admin.network.delete_rbac_policy(policy, ignore_missing=True)
                admin.network.delete_network(net, ignore_missing=True)
    assert found and all(r["status"] == "passed" for r in found), [(r["name"], r["status"]) for r in found]
    assert proc.returncode == 0, proc.stderr[-2000:]
    if made[-1].id < public.id:
        assert f"{name}-ext-vide écarté : aucun sous-réseau" in written, "le choix du réseau externe n'est pas dit"
