"""keystone's entry point (keystoneapi.py): gunicorn loads it from keystone's working directory, and the rows a
cascade would have deleted while SQLite's foreign keys were off are deleted at its start (a real SQLite file
with keystone's own two application-credential tables, as its schema declares them)."""
import sqlite3
from contextlib import closing
from pathlib import Path

from popek.checks.localcloud import config, keystoneapi, services
from popek.checks.localcloud.state import CloudState

SCHEMA = """
CREATE TABLE role (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255));
CREATE TABLE application_credential (internal_id INTEGER PRIMARY KEY, id VARCHAR(64), name VARCHAR(255));
CREATE TABLE application_credential_role (
    application_credential_id INTEGER NOT NULL, role_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (application_credential_id, role_id),
    FOREIGN KEY(application_credential_id) REFERENCES application_credential (internal_id) ON DELETE CASCADE);
CREATE TABLE audit (app_id INTEGER, FOREIGN KEY(app_id) REFERENCES application_credential (internal_id));
"""


def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO role VALUES (?, ?)", [("r1", "member"), ("r2", "reader")])
    db.execute("INSERT INTO application_credential VALUES (1, 'a', 'first')")
    db.executemany("INSERT INTO application_credential_role VALUES (?, ?)", [(1, "r1"), (1, "r2")])
    db.execute("INSERT INTO audit VALUES (1)")
    db.commit()
    return db


def test_a_deleted_credentials_roles_are_cascaded_and_its_id_can_be_used_again(tmp_path):
    with closing(_db(tmp_path / "keystone.db")) as db:
        db.execute("DELETE FROM application_credential WHERE internal_id = 1")  # foreign keys off: roles stay
        db.commit()
        assert db.execute("SELECT count(*) FROM application_credential_role").fetchone() == (2,)
        db.execute("INSERT INTO application_credential VALUES (1, 'b', 'second')")  # SQLite gives id 1 again
        try:
            db.execute("INSERT INTO application_credential_role VALUES (1, 'r1')")
            raise AssertionError("the orphan row should have made this insert fail")
        except sqlite3.IntegrityError:  # what keystone met: 409 "Duplicate entry"
            db.rollback()
        db.execute("DELETE FROM application_credential WHERE internal_id = 1")
        db.commit()
        assert keystoneapi.cascade_orphans(db) == 2
        # the orphan without ON DELETE CASCADE is not popek's to delete
        assert db.execute("SELECT count(*) FROM application_credential_role").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM audit").fetchone() == (1,)
        assert keystoneapi.cascade_orphans(db) == 0
        db.execute("INSERT INTO application_credential VALUES (1, 'b', 'second')")
        db.execute("INSERT INTO application_credential_role VALUES (1, 'r1')")  # now it goes in
        db.commit()


def test_keystone_loads_the_copied_module_from_its_working_directory(tmp_path, monkeypatch):
    state = CloudState(tmp_path)
    conf = config.generate(state)["keystone/gunicorn-keystone/gunicorn.conf.py"][""]
    assert conf["wsgi_app"] == f"{config.KEYSTONE_API_MODULE}:load()"
    table = {s.name: s for s in services.core_services(state)}
    path = config.keystone_api_path(state)
    assert path.parent == Path(table["keystone"].cwd) and path.stem == config.KEYSTONE_API_MODULE
    monkeypatch.setattr(config, "SHIPPED", {})  # the wheels' paste files: not in a unit test
    config.copy_shipped(state)
    assert path.read_text() == Path(keystoneapi.__file__).read_text()
