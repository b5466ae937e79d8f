"""neutron-api's WSGI entry point with its three subquery eager loads made selectin loads: runs INSIDE the
cloud's own venv, copied beside neutron-api's gunicorn.conf.py as `popek_neutronapi.py` (gunicorn's working
directory is on its sys.path), where gunicorn calls `load()`; popek never calls `load` itself.

Every Port that neutron loads (a port list, a floating IP with its fixed port, a router with its interfaces)
carries three one-to-one backrefs declared `lazy='subquery'` (neutron 29: db/models/port_hints.py,
port_trusted.py, port_hardware_offload_type.py). SQLAlchemy builds each subquery load anew from the parent
query, for every query that loads ports: a new aliased copy of the parent query and of its columns, in
Python, each time (sqlalchemy/orm/strategies.py, _SubqueryLoader._setup_query_from_rowproc). Measured with
py-spy (--gil) on this cloud's neutron-api: half of the worker's CPU for a floating IP list. A selectin load
asks the same rows by primary key (`WHERE port_id IN (...)`) with a statement SQLAlchemy caches: the same
objects, the same API answers (compared, list by list, between two neutron-api processes with and without
this change on one database; only the order of a security group's rules differs, as it does between two
processes of neutron as shipped). Neutron's own style check N350 (neutron/hacking/checks.py) asks for selectin
loads instead of subquery ones.

Only neutron-api's process is changed; the RPC server and the agents load neutron as shipped.
"""
from __future__ import annotations


def selectin_backrefs(orm) -> None:
    """Make `orm.backref(..., lazy='subquery')` (sqlalchemy.orm's) declare a selectin load instead; other
    arguments and other loading strategies are left as they are. Idempotent."""
    original = orm.backref
    if getattr(original, "popek_selectin", False):
        return

    def backref(name, **kwargs):
        if kwargs.get("lazy") == "subquery":
            kwargs["lazy"] = "selectin"
        return original(name, **kwargs)

    backref.popek_selectin = True
    orm.backref = backref


def load():
    """neutron's WSGI application (gunicorn's `wsgi_app = "popek_neutronapi:load()"`), its models declared
    after `selectin_backrefs`: this must run before anything imports neutron's models."""
    import sqlalchemy.orm

    selectin_backrefs(sqlalchemy.orm)
    from neutron.wsgi import api

    return api.application
