"""The opt-in tests/integration/test_foreign_project.py makes a project and a user on the embedded cloud:
its fixture must remove both whatever fails while emptying the project, and name them so that a leftover
is known as popek's (ledger.NAME_RE). The real fixture driven against a fake admin API; no cloud."""
import importlib.util
import pathlib
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import ledger

PATH = pathlib.Path(__file__).parents[1] / "integration" / "test_foreign_project.py"


@pytest.fixture
def fp():
    spec = importlib.util.spec_from_file_location("_foreign_project_under_test", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeIdentity:
    def __init__(self, calls, fail_user=False):
        self.calls, self.fail_user = calls, fail_user

    def create_project(self, name, domain_id):
        self.calls.append(("create_project", name))
        return NS(id="p1", name=name)

    def create_user(self, name, **kwargs):
        return NS(id="u1", name=name)

    def assign_project_role_to_user(self, *args):
        pass

    def find_role(self, name):
        return NS(id="r1", name=name)

    def delete_user(self, user, ignore_missing=True):
        self.calls.append(("delete_user", user.id))
        if self.fail_user:
            raise RuntimeError("keystone 503")

    def delete_project(self, project, ignore_missing=True):
        self.calls.append(("delete_project", project.id))


class Refusing:
    """Any call: Neutron's 409 (a network still in use) — emptying the project fails."""

    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise RuntimeError("409 Conflict: network in use")
        return call


class FakeVolumes:
    def __init__(self, calls):
        self.calls, self.left = calls, [NS(id="v1")]

    def backups(self, **kwargs):
        return []

    def volumes(self, all_projects, project_id):
        assert all_projects and project_id == "p1"
        return list(self.left)

    def delete_volume(self, volume, cascade=False):
        self.calls.append(("delete_volume", volume.id, cascade))
        self.left.remove(volume)


def drive(fp, monkeypatch, tmp_path, admin):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {popek: {auth: {auth_url: 'http://127.0.0.1:5000/v3'}}}\n")
    monkeypatch.setattr(fp.paths, "embedded_clouds_yaml", lambda: clouds)
    monkeypatch.setattr(fp.connection, "connect", lambda *a: NS(conn=admin))
    gen = fp.foreign.__wrapped__(tmp_path)
    _, project, name, _, _ = next(gen)
    return gen, name


def test_the_project_and_user_go_even_when_emptying_fails(fp, monkeypatch, tmp_path):
    calls = []
    admin = NS(identity=FakeIdentity(calls), network=Refusing(), compute=Refusing(), block_storage=Refusing())
    gen, name = drive(fp, monkeypatch, tmp_path, admin)
    with pytest.raises(RuntimeError, match="409"):
        gen.close()
    assert calls[-2:] == [("delete_user", "u1"), ("delete_project", "p1")]
    assert ledger.NAME_RE.match(name) and name.endswith("-fp")


def test_the_project_goes_even_when_its_user_cannot_be_deleted(fp, monkeypatch, tmp_path):
    calls = []
    admin = NS(identity=FakeIdentity(calls, fail_user=True), network=Refusing(), compute=Refusing(),
               block_storage=Refusing())
    gen, _ = drive(fp, monkeypatch, tmp_path, admin)
    with pytest.raises(RuntimeError):
        gen.close()
    assert calls[-1] == ("delete_project", "p1")


def test_the_projects_volumes_are_deleted_with_their_snapshots(fp):
    calls = []

    class Empty:
        def __getattr__(self, name):
            return lambda *a, **k: []

    admin = NS(network=Empty(), compute=Empty(), block_storage=FakeVolumes(calls))
    fp._empty(admin, "p1", None)
    assert calls == [("delete_volume", "v1", True)]
