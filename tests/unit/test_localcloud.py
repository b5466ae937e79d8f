"""Pure logic of the embedded cloud: configuration as data, the process table, the driver's wheel."""
import hashlib
import zipfile

from hypothesis import given as h_given, settings, strategies as st

from popek.checks.localcloud import config, dataplane, install, services
from popek.checks.localcloud.services import Service
from popek.checks.localcloud.state import CloudState

keys = st.text("abcdefgh_", min_size=1, max_size=6)
values = st.one_of(st.integers(), st.booleans(), st.text("xyz", max_size=3))
sections = st.dictionaries(keys, st.dictionaries(keys, values, max_size=3), max_size=3)
configs = st.dictionaries(st.sampled_from(["a.conf", "b/c.ini"]), sections, max_size=2)


@settings(database=None, max_examples=60)
@h_given(configs, configs)
def test_merge_lays_overrides_key_by_key(base, overrides):
    merged = config.merge(base, overrides)
    for f, secs in overrides.items():
        for s, kv in secs.items():
            for k, v in kv.items():
                assert merged[f][s][k] == v
    for f, secs in base.items():  # untouched keys survive
        for s, kv in secs.items():
            for k, v in kv.items():
                if k not in overrides.get(f, {}).get(s, {}):
                    assert merged[f][s][k] == v


def test_merge_none_removes_and_base_is_not_mutated():
    base = {"nova/nova.conf": {"DEFAULT": {"compute_driver": "fake", "host": "compute1"}}}
    merged = config.merge(base, {"nova/nova.conf": {"DEFAULT": {"compute_driver": None, "x": 1}}})
    assert merged == {"nova/nova.conf": {"DEFAULT": {"host": "compute1", "x": 1}}}
    assert base["nova/nova.conf"]["DEFAULT"]["compute_driver"] == "fake"


def test_render_ini_cnf_and_gunicorn_python():
    assert config.render("x.conf", {"DEFAULT": {"a": True, "b": 1}}) == "[DEFAULT]\na = true\nb = 1\n"
    assert config.render("my.cnf", {"mysqld": {"skip-networking": True, "port": 0}}) == \
        "[mysqld]\nskip-networking\nport = 0\n"
    text = config.render("d/gunicorn.conf.py", {"": {"bind": "127.0.0.1:1", "workers": 1}})
    ns = {}
    exec(text, ns)  # noqa: S102 - our own rendering, checked to be valid Python
    assert ns["bind"] == "127.0.0.1:1" and ns["workers"] == 1


def test_generated_config_listens_on_loopback_only(tmp_path):
    state = CloudState(tmp_path)
    cfg = config.generate(state)
    listen_keys = {"bind", "bind_ip", "osapi_volume_listen", "osapi_compute_listen", "metadata_listen", "my_ip"}
    for secs in cfg.values():
        for kv in secs.values():
            for k, v in kv.items():
                if k in listen_keys:
                    assert str(v).startswith("127.0.0.1"), (k, v)
    assert cfg["neutron/plugins/ml2/ml2_conf.ini"]["ml2"]["mechanism_drivers"] == install.DRIVER_DIST
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_with_extra_replaces_by_name_and_appends():
    core = [Service("a", ["x"]), Service("b", ["y"])]
    extra = [Service("b", ["z"], stage=3), Service("c", ["w"])]
    table = services.with_extra(core, extra)
    assert [(s.name, s.argv) for s in table] == [("a", ["x"]), ("b", ["z"]), ("c", ["w"])]


def test_port_of_health_urls():
    assert services.port_of(Service("k", [], health="http://127.0.0.1:5000/")) == 5000
    assert services.port_of(Service("r", [], health="tcp://127.0.0.1:5672")) == 5672
    assert services.port_of(Service("m", [], health="unix:///tmp/s")) is None
    assert services.port_of(Service("c", [])) is None


def test_alwaysbind_wheel_declares_the_ml2_entry_point(tmp_path):
    wheel = install.alwaysbind_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        eps = zf.read(f"{install.DRIVER_DIST}-{install.DRIVER_VERSION}.dist-info/entry_points.txt").decode()
        record = zf.read(f"{install.DRIVER_DIST}-{install.DRIVER_VERSION}.dist-info/RECORD").decode()
    assert f"{install.DRIVER_DIST}.py" in names
    module, cls = dataplane.LOOP_VOLUME_DRIVER.split(".")
    assert f"{module}.py" in names  # cinder loads it by class path from the same wheel
    with zipfile.ZipFile(wheel) as zf:
        assert f"class {cls}(" in zf.read(f"{module}.py").decode()
    assert "[neutron.ml2.mechanism_drivers]" in eps and "AlwaysBindDriver" in eps
    assert all(n in record for n in names)


def test_the_services_venv_is_filled_by_its_own_pip(tmp_path, monkeypatch):
    """C32: the embedded cloud is the evidence that OpenStack installs with `pip install` (INSTALLER files);
    the services, the drivers' wheel and libvirt-python all go through the venv's pip."""
    from popek.checks.localcloud import runcmd

    ran = []
    monkeypatch.setattr(runcmd, "run", lambda argv, **kw: ran.append(argv))
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    (wheelhouse / "popek-requirements.sha256").write_text(
        hashlib.sha256(install.REQUIREMENTS.read_bytes()).hexdigest() + "\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    assert install.ensure_venv(venv, tmp_path / "pip.log", wheelhouse)
    pip = str(venv / "bin" / "pip")
    assert [argv[:2] for argv in ran] == [[pip, "install"]] * 2
    assert ran[0][-4:] == ["--find-links", str(wheelhouse), "-r", str(install.REQUIREMENTS)] and "--no-index" in ran[0]
    assert "--force-reinstall" in ran[1] and ran[1][-1].endswith("-py3-none-any.whl")
    assert install.venv_ready(venv)
