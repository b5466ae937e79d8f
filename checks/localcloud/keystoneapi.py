"""keystone's WSGI entry point with SQLite's foreign keys enforced: runs INSIDE the cloud's own venv, copied
beside keystone's gunicorn.conf.py as `popek_keystoneapi.py` (gunicorn's working directory is on its sys.path),
where gunicorn calls `load()`; popek never calls `load` itself.

keystone's schema leaves some deletions to the database: an application credential's roles and access rules,
a user's local_user and passwords… are `ON DELETE CASCADE`. SQLite enforces foreign keys only on a connection
that asks (PRAGMA foreign_keys=ON), and oslo.db asks only when the engine facade is configured with
sqlite_fk=True, which keystone does in its own unit tests (keystone.common.sql.core.enable_sqlite_foreign_key,
ksfixtures/database.py: its tested setting) and nowhere else. Without it, measured on this cloud (2026-12-07):
a deleted application credential left its role rows behind, SQLite gave its internal id to the next one, and
every application credential created after that failed with 409 "Duplicate entry" (UNIQUE
application_credential_role).

At each start, before serving, the rows that a cascade would have deleted while foreign keys were off (a
child whose parent is gone, through an ON DELETE CASCADE key) are deleted: what MariaDB would have done.
"""
from __future__ import annotations

import sqlite3
from contextlib import closing


def cascade_orphans(db: sqlite3.Connection) -> int:
    """Delete the rows whose parent is gone through an ON DELETE CASCADE foreign key, as the cascade would
    have; repeated until none is left (a deleted row may orphan its own children). Returns how many."""
    deleted = 0
    while True:
        doomed = set()
        for table, rowid, _parent, fkid in db.execute("PRAGMA foreign_key_check").fetchall():
            keys = db.execute(f'PRAGMA foreign_key_list("{table}")').fetchall()
            # rows of foreign_key_list: (id, seq, table, from, to, on_update, on_delete, match)
            if rowid is not None and any(k[0] == fkid and k[6].upper() == "CASCADE" for k in keys):
                doomed.add((table, rowid))
        if not doomed:
            return deleted
        for table, rowid in doomed:
            db.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
        db.commit()
        deleted += len(doomed)


def load():
    """keystone's application, its SQLite connections enforcing foreign keys (gunicorn's
    `wsgi_app = "popek_keystoneapi:load()"`)."""
    from keystone.common.sql import core

    core.enable_sqlite_foreign_key()  # before anything makes keystone's engine facade
    from keystone.wsgi import api  # parses keystone.conf, makes the application
    import keystone.conf

    url = keystone.conf.CONF.database.connection or ""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///"):])) as db:
            cascade_orphans(db)
    return api.application
