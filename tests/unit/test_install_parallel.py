"""The services' venv installed by several pip processes side by side (install.install_parallel): which wheel
each pin is, what each wheel writes, how the pins are shared out, and the fall back to one `pip install -r`."""
import hashlib
import zipfile
from pathlib import Path

import pytest
from hypothesis import given as h_given, settings, strategies as st

from popek.checks.localcloud import install, runcmd
from popek.checks.localcloud.errors import CloudError


def _wheel(folder: Path, filename: str, files: dict[str, str] | None = None) -> Path:
    """A wheel file `filename` in `folder` holding `files` (path -> text)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in (files or {"x.py": ""}).items():
            zf.writestr(name, text)
    return path


def test_each_pin_is_its_one_wheel_for_this_python(tmp_path):
    a = _wheel(tmp_path, "Foo_Bar-1.0-py3-none-any.whl")
    b = _wheel(tmp_path, "baz-2.0.post1-py2.py3-none-any.whl")
    _wheel(tmp_path, "baz-2.0.post1-cp27-cp27mu-linux_armv6l.whl")  # another Python's: not a candidate
    _wheel(tmp_path, "foo_bar-0.9-py3-none-any.whl")  # another version
    (tmp_path / "not-a-wheel.txt").write_text("")
    pins = install.pinned_wheels(["foo-bar==1.0 --hash=sha256:aa", "Baz==2.0.post1"], tmp_path)
    assert pins == {"foo-bar==1.0": a, "Baz==2.0.post1": b}


@pytest.mark.parametrize("line", ["missing==1.0", "baz>=2.0", "foo-bar==1.0"])
def test_a_pin_without_exactly_one_wheel_is_refused(tmp_path, line):
    _wheel(tmp_path, "Foo_Bar-1.0-py3-none-any.whl")
    _wheel(tmp_path, "foo.bar-1.0-py2.py3-none-any.whl")  # the same project and version twice
    _wheel(tmp_path, "baz-2.0-py3-none-any.whl")
    with pytest.raises(ValueError):
        install.pinned_wheels([line], tmp_path)


def test_installed_projects_are_read_from_the_dist_info_directories(tmp_path):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for name in ("pip-23.0.dist-info", "Foo_Bar-1.0.post1.dist-info", "pkg", "x-1.0.egg-info"):
        (site / name).mkdir(parents=True)
    assert install.installed_projects(tmp_path) == {"pip", "foo-bar"}


def test_wheel_targets_are_files_by_scheme_and_generated_scripts(tmp_path):
    wheel = _wheel(tmp_path, "pkg-1.0-py3-none-any.whl", {
        "pkg/__init__.py": "", "pkg-1.0.data/scripts/tool": "#!python", "pkg-1.0.data/platlib/fast.so": "",
        "pkg-1.0.data/data/etc/pkg.conf": "", "pkg-1.0.dist-info/entry_points.txt":
            "[console_scripts]\nPkg-Run = pkg:main\n[pkg.plugins]\nnot-a-script = pkg:x\n"})
    assert install.wheel_targets(wheel) == {
        "lib:pkg/__init__.py", "scripts:tool", "lib:fast.so", "data:etc/pkg.conf",
        "lib:pkg-1.0.dist-info/entry_points.txt", "scripts:Pkg-Run"}


pins_st = st.dictionaries(st.text("abcdef", min_size=1, max_size=4).map(lambda s: f"{s}==1"),
                          st.tuples(st.integers(1, 10_000), st.sets(st.sampled_from("PQRSTUVW"), max_size=2)),
                          max_size=12)


@h_given(pins=pins_st, jobs=st.integers(1, 5))
@settings(database=None, max_examples=80, deadline=None)
def test_shares_hold_every_pin_once_and_keep_wheels_writing_one_path_together(tmp_path_factory, pins, jobs):
    folder = tmp_path_factory.mktemp("w")
    files = {}
    for spec, (size, _) in pins.items():
        files[spec] = folder / f"{spec}.whl"
        files[spec].write_bytes(b"x" * size)
    shares = install.install_shares(files, jobs, targets=lambda wheel: pins[wheel.stem][1])
    assert len(shares) <= jobs and all(shares) and (bool(shares) == bool(pins))
    assert sorted(spec for share in shares for spec in share) == sorted(pins)
    where = {spec: i for i, share in enumerate(shares) for spec in share}
    for a, (_, ta) in pins.items():
        for b, (_, tb) in pins.items():
            if ta & tb:
                assert where[a] == where[b], (a, b)


def test_shares_are_of_about_equal_size(tmp_path):
    files = {}
    for i, size in enumerate([90, 50, 40, 30, 20, 10, 10, 10]):
        files[f"p{i}==1"] = tmp_path / f"p{i}.whl"
        files[f"p{i}==1"].write_bytes(b"x" * size)
    shares = install.install_shares(files, 3, targets=lambda wheel: set())
    sizes = sorted(sum(files[s].stat().st_size for s in share) for share in shares)
    assert sizes == [80, 90, 90]


def _setup(tmp_path):
    wheelhouse, venv = tmp_path / "wheels", tmp_path / "venv"
    for name in ("a-1.0-py3-none-any.whl", "b-1.0-py3-none-any.whl", "c-1.0-py3-none-any.whl",
                 "pip-99.0-py3-none-any.whl"):
        _wheel(wheelhouse, name, {f"{name.split('-')[0]}/__init__.py": ""})
    (wheelhouse / "popek-requirements.sha256").write_text(
        hashlib.sha256(install.REQUIREMENTS.read_bytes()).hexdigest() + "\n")
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "pip-23.0.dist-info").mkdir(parents=True)  # as `python -m venv` made it
    (site / "c-0.5.dist-info").mkdir(parents=True)  # left by an older venv: replaced by the pin
    return wheelhouse, venv


def _fake_run(ran, fail=None):
    def run(argv, **kw):
        ran.append(argv)
        if argv[1:3] == ["pip", "compile"]:
            Path(argv[argv.index("-o") + 1]).write_text("a==1.0\n    # via x\nb==1.0\nc==1.0\npip==99.0\n")
        if fail and fail(argv):
            raise CloudError("échec simulé")
    return run


def test_the_services_go_in_by_parallel_pip_processes_then_pip_check(tmp_path, monkeypatch):
    """uv resolves against the wheelhouse alone; pip installs (C32: INSTALLER stays pip's) every pin once with
    --no-deps, except the projects the new venv has (its pip stays); `pip check` proves the dependencies; the
    drivers and the stamp."""
    ran = []
    monkeypatch.setattr(runcmd, "run", _fake_run(ran))
    wheelhouse, venv = _setup(tmp_path)
    assert install.ensure_venv(venv, tmp_path / "pip.log", wheelhouse, uv="/opt/uv", jobs=2)
    pip = str(venv / "bin" / "pip")
    assert ran[0][:3] == ["/opt/uv", "pip", "compile"] and "--no-index" in ran[0]
    assert ran[0][ran[0].index("--find-links") + 1] == str(wheelhouse)
    installs = [a for a in ran if a[:2] == [pip, "install"] and "--no-deps" in a and "--find-links" in a]
    assert len(installs) == 2
    specs = [a for argv in installs for a in argv if "==" in a]
    assert sorted(specs) == ["a==1.0", "b==1.0", "c==1.0"] and "--no-index" in installs[0]
    assert ran[-2][:3] == [pip, "check", "--disable-pip-version-check"]
    assert ran[-1][-1].endswith("-py3-none-any.whl") and "--force-reinstall" in ran[-1]
    assert install.venv_ready(venv) and not list(wheelhouse.glob("popek-resolution*"))


@pytest.mark.parametrize("how", ["pip check fails", "a share fails", "no uv", "jobs 0", "uv fails"])
def test_the_services_fall_back_to_one_pip_install_r(tmp_path, monkeypatch, how):
    """A failure after pip started installing: the venv is made anew, then one `pip install -r`; before (no uv,
    jobs 0, uv cannot resolve): straight to `pip install -r` in the same venv."""
    ran = []
    fails = {"pip check fails": lambda a: a[1] == "check",
             "a share fails": lambda a: a[1] == "install" and "b==1.0" in a,
             "uv fails": lambda a: a[1:3] == ["pip", "compile"]}.get(how)
    monkeypatch.setattr(runcmd, "run", _fake_run(ran, fails))
    wheelhouse, venv = _setup(tmp_path)
    (venv / "marker").touch()
    assert install.ensure_venv(venv, tmp_path / "pip.log", wheelhouse, uv=None if how == "no uv" else "/opt/uv",
                               jobs=0 if how == "jobs 0" else 3)
    pip = str(venv / "bin" / "pip")
    serial = [a for a in ran if a[:2] == [pip, "install"] and a[-2:] == ["-r", str(install.REQUIREMENTS)]]
    assert len(serial) == 1 and "--no-index" in serial[0]
    remade = [a for a in ran if a[1:3] == ["-m", "venv"]]
    assert bool(remade) == (how in ("pip check fails", "a share fails"))
    assert (venv / "marker").exists() == (not remade)
    assert "serial pip install -r" in (tmp_path / "pip.log").read_text()
    assert install.venv_ready(venv)
