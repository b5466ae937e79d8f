"""components.read_only_databases / behind_server_error (hF3, round 3): a MariaDB set read-only
(`SET GLOBAL read_only=ON`) greets and reads, and every write of a service fails as an HTTP 500 of its API
(live: « server create refusé par Nova (HTTP 500) : Unexpected API Error … OperationalError », C31 RÉUSSI).
The database is asked by the embedded cloud's own Python; here the asking is faked, the parsing is real."""
import json
import subprocess

from popek.checks.cloud import components

SOCK = "/x/run/mysqld.sock"


def _cloud(tmp_path):
    for service, db in (("nova", "nova"), ("neutron", "neutron")):
        (tmp_path / "etc" / service).mkdir(parents=True)
        (tmp_path / "etc" / service / f"{service}.conf").write_text(
            f"[database]\nconnection = mysql+pymysql://nova:s%40cret@localhost/{db}?unix_socket={SOCK}&charset=utf8\n"
            "[DEFAULT]\ntransport_url = rabbit://nova:pw@127.0.0.1:5672/\n")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").write_text("")
    return tmp_path


def test_one_login_per_database_server(tmp_path):
    urls = components._database_urls(_cloud(tmp_path) / "etc")
    assert list(urls) == [f"unix:{SOCK}"]
    assert urls[f"unix:{SOCK}"]["user"] == "nova" and urls[f"unix:{SOCK}"]["password"] == "s@cret"


def test_a_read_only_server_is_named_without_its_password(tmp_path):
    asked = []
    said = components.read_only_databases(_cloud(tmp_path), ask=lambda py, login: asked.append(login) or True)
    assert len(asked) == 1 and said == [
        f"la base de données MariaDB (unix:{SOCK}) refuse toute écriture (SELECT @@global.read_only : 1, read_only "
        "en marche) : elle salue et répond aux lectures, mais chaque écriture d'un service échoue (HTTP 500 de son API)"]
    assert "s@cret" not in said[0]


def test_a_writable_or_unasked_server_says_nothing(tmp_path):
    root = _cloud(tmp_path)
    assert components.read_only_databases(root, ask=lambda py, login: False) == []

    def refused(py, login):
        raise ValueError("requête refusée (code 1)")
    assert components.read_only_databases(root, ask=refused) == []
    (root / "venv" / "bin" / "python").unlink()      # no embedded venv: nothing asked
    assert components.read_only_databases(root, ask=lambda py, login: True) == []


def test_the_password_goes_on_stdin_not_the_command_line(tmp_path, monkeypatch):
    seen = {}

    def run(argv, input, **kw):
        seen["argv"], seen["input"] = argv, input
        return subprocess.CompletedProcess(argv, 0, json.dumps({"read_only": "1"}), "")
    monkeypatch.setattr(subprocess, "run", run)
    login = {"socket": SOCK, "host": "localhost", "port": 3306, "user": "nova", "password": "s@cret"}
    assert components.ask_read_only(tmp_path / "python", login) is True
    assert "s@cret" not in " ".join(seen["argv"]) and json.loads(seen["input"])["password"] == "s@cret"
    monkeypatch.setattr(subprocess, "run", lambda argv, input, **kw: subprocess.CompletedProcess(
        argv, 0, json.dumps({"read_only": "0"}), ""))
    assert components.ask_read_only(tmp_path / "python", login) is False


def test_a_server_error_gets_what_is_wrong_inside_the_embedded_cloud():
    dead = lambda: ["swift-object ne tourne plus (son fichier pid reste, sans processus)"]  # noqa: E731
    assert components.behind_server_error(503, dead) == \
        " ; sur le cloud embarqué : swift-object ne tourne plus (son fichier pid reste, sans processus)"

    def not_asked():
        raise AssertionError("demandé pour une réponse qui n'est pas une panne")
    assert components.behind_server_error(404, not_asked) == ""     # a refusal, not a failure inside
    assert components.behind_server_error(None, not_asked) == ""
    assert components.behind_server_error(500, lambda: []) == ""    # another cloud, or nothing found


def _http_error(code: int, url="http://127.0.0.1:9696/v2.0/security-groups"):
    import requests
    from openstack import exceptions

    response = requests.Response()
    response.status_code = code
    response.request = requests.Request("POST", url).prepare()
    return exceptions.HttpException("HttpException: 500", response=response,
                                    details="Request Failed: internal server error while processing your request.")


READ_ONLY = ["la base de données MariaDB (unix:/x/run/mysqld.sock) refuse toute écriture (…)"]


def test_a_scenario_ended_by_an_apis_500_names_what_is_wrong_inside():
    try:
        try:
            raise _http_error(500)
        except Exception as exc:
            raise RuntimeError("the step's own wrapper") from exc
    except RuntimeError as exc:
        said = components.server_failed(exc, lambda: READ_ONLY)
    assert said == ("POST http://127.0.0.1:9696/v2.0/security-groups a échoué (HTTP 500) : Request Failed: internal "
                    "server error while processing your request. ; sur le cloud embarqué : " + READ_ONLY[0])


def test_other_failures_keep_their_report():
    nothing = lambda: []  # noqa: E731
    assert components.server_failed(_http_error(500), nothing) is None           # nothing found inside
    assert components.server_failed(_http_error(409), lambda: READ_ONLY) is None  # a refusal: its own words
    assert components.server_failed(AssertionError("x"), lambda: READ_ONLY) is None
    assert components.server_failed(None, lambda: READ_ONLY) is None
    try:    # an assertion that already said its cause, raised `from None` inside the handler of a 500
        try:
            raise _http_error(500)
        except Exception:
            raise AssertionError("server create refusé par Nova (HTTP 500) : … ; sur le cloud embarqué : …") from None
    except AssertionError as exc:
        assert components.server_failed(exc, lambda: READ_ONLY) is None


def _keystone(tmp_path, keys=("0", "1")):
    (tmp_path / "etc" / "keystone").mkdir(parents=True)
    repo = tmp_path / "etc" / "keystone" / "fernet-keys"
    (tmp_path / "etc" / "keystone" / "keystone.conf").write_text(f"[token]\nprovider = fernet\n[fernet_tokens]\n"
                                                                 f"key_repository = {repo}\n")
    repo.mkdir()
    for key in keys:
        (repo / key).write_text("x")
    return tmp_path / "etc", repo


def test_keystone_without_its_fernet_keys_is_named(tmp_path):
    etc, repo = _keystone(tmp_path)
    assert components.keystone_keys(etc) == []
    for key in ("0", "1"):
        (repo / key).unlink()
    assert components.keystone_keys(etc) == [
        f"Keystone n'a plus de clés Fernet ({repo} est vide) : il ne peut ni émettre ni vérifier de jeton "
        "(HTTP 500 à chaque authentification)"]
    repo.rmdir()
    assert "n'existe pas" in components.keystone_keys(etc)[0]
    assert components.keystone_keys(tmp_path / "nowhere") == []   # no Keystone configured there


NET = "72c004ae-8b44-47b2-900f-f47df56e38b9"
ROUTER = "197a672f-87ff-4f36-8f73-5ccaa856c264"


def test_a_networks_dead_metadata_proxy_is_named_not_its_live_dhcp_server(tmp_path):
    import sys

    data = tmp_path / "data" / "neutron"
    (data / "dhcp" / NET).mkdir(parents=True)
    (data / "external" / "pids").mkdir(parents=True)
    # a live « dnsmasq » of this network (its command line names the program and the network, as dnsmasq's does)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "dnsmasq", f"--pid-file={NET}"])
    try:
        for _ in range(200):    # until it has exec'd: before, its command line is still this pytest's
            with open(f"/proc/{live.pid}/cmdline", "rb") as cmdline:
                if b"dnsmasq" in cmdline.read():
                    break
            __import__("time").sleep(0.01)
        (data / "dhcp" / NET / "pid").write_text(f"{live.pid}\n")
        (data / "external" / "pids" / f"{NET}.pid.haproxy").write_text("999999999\n")      # gone
        (data / "external" / "pids" / f"{ROUTER}.pid.haproxy").write_text(f"{live.pid}\n")  # a pid now not haproxy
        said = components.neutron_children(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert said == [
        f"le proxy de metadata de Neutron (haproxy) de {uuid} (réseau ou routeur) ne tourne plus (son fichier pid "
        "reste, sans processus) : 169.254.169.254 ne répond pas aux instances de ce réseau tant que son agent ne le "
        "relance pas" for uuid in (ROUTER, NET)]   # sorted by file name


def test_a_dead_dhcp_server_is_named_and_an_unreadable_pid_file_is_not(tmp_path):
    data = tmp_path / "data" / "neutron"
    (data / "dhcp" / NET).mkdir(parents=True)
    (data / "dhcp" / NET / "pid").write_text("999999999\n")
    (data / "dhcp" / ROUTER).mkdir(parents=True)
    (data / "dhcp" / ROUTER / "pid").write_text("")      # being written: nothing can be said
    assert components.neutron_children(tmp_path) == [
        f"le serveur DHCP de Neutron (dnsmasq) du réseau {NET} ne tourne plus (son fichier pid reste, sans processus) : "
        "aucun bail sur ce réseau tant que l'agent DHCP ne le relance pas"]
    assert components.neutron_children(tmp_path / "elsewhere") == []
