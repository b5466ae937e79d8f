"""Pure logic of the embedded cloud: configuration as data, the process table, the driver's wheel."""
import hashlib
import zipfile
from pathlib import Path

import pytest
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
                    for one in (v if isinstance(v, list) else [v]):  # gunicorn binds a list of addresses too
                        assert str(one).startswith("127.0.0.1"), (k, v)
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


@h_given(lines=st.lists(st.text(min_size=1, max_size=5), max_size=40), jobs=st.integers(1, 8))
@settings(database=None, max_examples=60)
def test_every_resolved_file_is_dealt_to_one_download_once(lines, jobs):
    chunks = install.deal(lines, jobs)
    assert len(chunks) <= jobs and all(chunks)
    assert sorted(line for chunk in chunks for line in chunk) == sorted(lines)


def test_requirement_lines_read_uv_pip_compile_output():
    text = """# This file was autogenerated by uv via the following command:
#    uv pip compile --generate-hashes -o out.txt cloud-requirements.txt
--index-url https://pypi.example/simple
alembic==1.20.1 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via
    #   glance

oslo-config==10.1.0 \\
    --hash=sha256:cccc
    # via nova
pymysql==1.2.4
"""
    assert install.requirement_lines(text) == ["alembic==1.20.1 --hash=sha256:aaaa --hash=sha256:bbbb",
                                               "oslo-config==10.1.0 --hash=sha256:cccc", "pymysql==1.2.4"]


RESOLVED = ["a==1.0 --hash=sha256:aa", "b==1.0 --hash=sha256:bb", "c==1.0 --hash=sha256:cc"]


def _fake_tools(ran, fetched, fail_wheel_of=None, uv_fails=False):
    """runcmd.run standing in for uv and pip: uv's compile writes three pins with their hashes; `pip wheel -r
    <file>` records the file's lines, and fails when they hold `fail_wheel_of`."""
    from popek.checks.localcloud.errors import CloudError

    def run(argv, **kw):
        ran.append(argv)
        if argv[1:3] == ["pip", "compile"]:
            if uv_fails:
                raise CloudError("uv a échoué")
            Path(argv[argv.index("-o") + 1]).write_text(
                "".join(f"{pin} \\\n    {h}\n    # via x\n" for pin, h in (line.split() for line in RESOLVED)))
        if argv[1] == "wheel" and "--no-deps" in argv:
            lines = Path(argv[argv.index("-r") + 1]).read_text().splitlines()
            fetched.extend(lines)
            if fail_wheel_of and any(line.startswith(fail_wheel_of) for line in lines):
                raise CloudError("pip wheel a échoué")
    return run


def test_uv_resolves_and_pip_processes_fetch_side_by_side(tmp_path, monkeypatch):
    """uv only resolves (for the new venv's Python); pip fetches the pinned, hashed files, one process per
    share; the stamp is written, the work files are gone, a second call runs nothing."""
    from popek.checks.localcloud import runcmd

    ran, fetched = [], []
    monkeypatch.setattr(runcmd, "run", _fake_tools(ran, fetched))
    wheelhouse, pip = tmp_path / "wheels", str(tmp_path / "venv" / "bin" / "pip")
    install.ensure_wheelhouse(wheelhouse, pip, tmp_path / "pip.log", uv="/opt/uv")
    assert ran[0][:3] == ["/opt/uv", "pip", "compile"] and "--generate-hashes" in ran[0]
    assert ran[0][ran[0].index("--python") + 1] == str(tmp_path / "venv" / "bin" / "python")
    assert len(ran) == 4 and all(a[:2] == [pip, "wheel"] and a[-2:] == ["-w", str(wheelhouse)] for a in ran[1:])
    assert sorted(fetched) == RESOLVED
    assert sorted(p.name for p in wheelhouse.iterdir()) == ["popek-requirements.sha256"]
    ran.clear()
    install.ensure_wheelhouse(wheelhouse, pip, tmp_path / "pip.log", uv="/opt/uv")  # stamped: nothing runs
    assert ran == []


SERIAL = ["wheel", "--disable-pip-version-check", "-q", "-r", str(install.REQUIREMENTS), "-w"]


@pytest.mark.parametrize("how", ["no uv", "uv fails", "a download fails", "jobs 0"])
def test_the_wheelhouse_falls_back_to_one_serial_pip_wheel(tmp_path, monkeypatch, how):
    from popek.checks.localcloud import runcmd

    ran = []
    monkeypatch.setattr(runcmd, "run", _fake_tools(ran, [], fail_wheel_of="b==" if how == "a download fails" else None,
                                                   uv_fails=how == "uv fails"))
    wheelhouse, pip = tmp_path / "wheels", str(tmp_path / "venv" / "bin" / "pip")
    install.ensure_wheelhouse(wheelhouse, pip, tmp_path / "pip.log", jobs=0 if how == "jobs 0" else 6,
                              uv=None if how == "no uv" else "/opt/uv")
    assert ran[-1] == [pip, *SERIAL, str(wheelhouse)]
    assert len(ran) == {"no uv": 1, "jobs 0": 1, "uv fails": 2, "a download fails": 5}[how]
    assert "serial pip wheel" in (tmp_path / "pip.log").read_text()
    assert sorted(p.name for p in wheelhouse.iterdir()) == ["popek-requirements.sha256"]


def test_a_wheelhouse_pip_cannot_install_from_is_filled_again_by_pip_once(tmp_path, monkeypatch):
    """uv's resolution made a stamped wheelhouse that `pip install --no-index` refuses: the stamp goes, pip's own
    serial `pip wheel -r` fills it again, the install is tried once more (else every later `up` fails alike)."""
    from popek.checks.localcloud import runcmd
    from popek.checks.localcloud.errors import CloudError

    ran, installs = [], []
    tools = _fake_tools(ran, [])

    def run(argv, **kw):
        if argv[1] == "install" and "--find-links" in argv:
            installs.append(argv)
            if len(installs) == 1:
                raise CloudError("installation des services : pip a échoué")
        return tools(argv, **kw)
    monkeypatch.setattr(runcmd, "run", run)
    wheelhouse, venv = tmp_path / "wheels", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    assert install.ensure_venv(venv, tmp_path / "pip.log", wheelhouse, uv="/opt/uv")
    pip = str(venv / "bin" / "pip")
    assert ran[0][:3] == ["/opt/uv", "pip", "compile"]
    assert [pip, *SERIAL, str(wheelhouse)] in ran and len(installs) == 2
    assert "filled again by pip wheel -r" in (tmp_path / "pip.log").read_text()
    assert (wheelhouse / "popek-requirements.sha256").exists() and install.venv_ready(venv)
