"""nova's compute and metadata APIs in one gunicorn worker: the port dispatch, the configuration that binds
both ports, the process table's one nova-api row checking both endpoints."""
import socket
import types
from pathlib import Path

from popek.checks.localcloud import config, novaapis, services
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import PORTS, CloudState


def app(tag):
    def wsgi(environ, start_response):
        start_response("200 OK", [])
        return [tag]
    return wsgi


def call(application, **environ):
    seen = []
    body = application(environ, lambda status, headers: seen.append(status))
    return seen[0], b"".join(body)


def test_each_request_goes_to_the_app_of_the_port_that_accepted_it_whatever_its_host_header():
    dispatch = novaapis.dispatcher({"8774": app(b"compute"), "8775": app(b"metadata")})
    assert call(dispatch, SERVER_PORT="8775", HTTP_HOST="127.0.0.1:8774") == ("200 OK", b"metadata")
    assert call(dispatch, SERVER_PORT="8774", HTTP_HOST="127.0.0.1:8775") == ("200 OK", b"compute")
    status, _ = call(dispatch, SERVER_PORT="9999")
    assert status.startswith("404")


def test_load_pairs_the_ports_with_novas_two_entry_points(monkeypatch):
    import sys
    fake = {"nova": types.ModuleType("nova"), "nova.wsgi": types.ModuleType("nova.wsgi"),
            "nova.wsgi.osapi_compute": types.SimpleNamespace(application=app(b"compute")),
            "nova.wsgi.metadata": types.SimpleNamespace(application=app(b"metadata"))}
    fake["nova.wsgi"].osapi_compute = fake["nova.wsgi.osapi_compute"]
    fake["nova.wsgi"].metadata = fake["nova.wsgi.metadata"]
    for name, mod in fake.items():
        monkeypatch.setitem(sys.modules, name, mod)
    dispatch = novaapis.load(8774, 8775)
    assert call(dispatch, SERVER_PORT="8775")[1] == b"metadata" and call(dispatch, SERVER_PORT="8774")[1] == b"compute"


def test_nova_api_binds_both_ports_and_calls_the_copied_module(tmp_path):
    cfg = config.generate(CloudState(tmp_path))
    conf = cfg["nova/gunicorn-nova-api/gunicorn.conf.py"][""]
    assert conf["bind"] == [f"127.0.0.1:{PORTS['nova']}", f"127.0.0.1:{PORTS['metadata']}"]
    assert conf["wsgi_app"] == f"popek_novaapis:load({PORTS['nova']}, {PORTS['metadata']})"
    assert not any("gunicorn-nova-metadata" in f for f in cfg)
    assert cfg["keystone/gunicorn-keystone/gunicorn.conf.py"][""]["bind"] == f"127.0.0.1:{PORTS['keystone']}"
    ns = {}
    exec(config.render("g/gunicorn.conf.py", {"": conf}), ns)  # noqa: S102 - our own rendering
    assert ns["bind"] == conf["bind"]
    # gunicorn imports the module from its working directory: the copy sits there, the same text as ours
    state = CloudState(tmp_path)
    table = {s.name: s for s in services.core_services(state)}
    path = config.nova_apis_path(state)
    assert path.parent == Path(table["nova-api"].cwd) and path.stem == config.NOVA_APIS_MODULE


def test_one_nova_api_row_checks_the_compute_and_the_metadata_endpoints(tmp_path):
    table = {s.name: s for s in services.core_services(CloudState(tmp_path))}
    assert "nova-metadata" not in table
    nova = table["nova-api"]
    assert services.health_targets(nova) == [f"http://127.0.0.1:{PORTS['nova']}/", f"http://127.0.0.1:{PORTS['metadata']}/"]
    assert services.ports_of(nova) == [PORTS["nova"], PORTS["metadata"]] and services.port_of(nova) == PORTS["nova"]


def test_health_with_several_targets_needs_each_of_them():
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
        up, down = listening.getsockname()[1], closed.getsockname()[1]
        assert services.healthy(Service("a", [], health=f"tcp://127.0.0.1:{up}"), 0.5)
        assert not services.healthy(Service("b", [], health=f"tcp://127.0.0.1:{up} tcp://127.0.0.1:{down}"), 0.5)
        assert not services.healthy(Service("c", [], health=f"tcp://127.0.0.1:{down} tcp://127.0.0.1:{up}"), 0.5)
    assert services.healthy(Service("d", []))  # no target: being alive is enough
    assert services.health_targets(Service("e", [], health="unix:///a b/s tcp://h:1")) == ["unix:///a b/s", "tcp://h:1"]


def test_only_the_worker_serving_two_apis_gets_threads_so_a_slow_compute_request_never_holds_a_metadata_read(tmp_path):
    cfg = config.generate(CloudState(tmp_path))
    nova = cfg["nova/gunicorn-nova-api/gunicorn.conf.py"][""]
    assert nova["threads"] == config.MULTI_API_THREADS > 1 and nova["workers"] == 1
    others = [f for f in cfg if "/gunicorn-" in f and "gunicorn-nova-api" not in f]
    assert others and all("threads" not in cfg[f][""] for f in others)
