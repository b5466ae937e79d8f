"""Configuration of the embedded cloud, as data first: {file: {section: {key: value}}}.

`generate(state)` returns that mapping (paths relative to `state.etc()`); `merge()` lays a dataplane's
overrides on top (a value of None deletes a key); `write()` renders INI files. Paste files that ship
in the service wheels are copied by `copy_shipped()`. Nothing listens outside 127.0.0.1.

Choices that matter, measured on this machine type: nova on MariaDB (sqlite locks on parallel boots),
the rest on sqlite; service users send service tokens; everything logs to stderr, which the process
table redirects to one log file per process.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

from popek.checks.localcloud.state import HOST, RABBIT_USER, RABBIT_VHOST, REGION, CloudState

Config = dict[str, dict[str, dict[str, object]]]

#: Paste files shipped by the wheels under <venv>/etc/<service>/ and used as they are.
SHIPPED = {"nova/api-paste.ini": "nova/api-paste.ini", "neutron/api-paste.ini": "neutron/api-paste.ini",
           "cinder/api-paste.ini": "cinder/api-paste.ini", "glance/glance-api-paste.ini": "glance/glance-api-paste.ini"}

#: nova's two APIs in one gunicorn worker (novaapis.py): the module's name beside nova-api's gunicorn.conf.py.
NOVA_APIS_MODULE = "popek_novaapis"
#: neutron's API with selectin loads for its three subquery ones (neutronapi.py), beside its gunicorn.conf.py.
NEUTRON_API_MODULE = "popek_neutronapi"
#: keystone's application with SQLite's foreign keys enforced (keystoneapi.py), beside its gunicorn.conf.py.
KEYSTONE_API_MODULE = "popek_keystoneapi"
#: gunicorn threads of a worker that serves several APIs (nova-api: the compute and the metadata API).
MULTI_API_THREADS = 4
#: Gunicorn apps: name -> (config dir, WSGI callable, port keys: gunicorn binds each, the first is the app's own).
#: A callable's `{key}` is the port of that key in the cloud's map (`state.ports`), filled in by generate().
WSGI_APPS = {
    # keystone's own application, its SQLite connections enforcing the schema's foreign keys (keystoneapi.py)
    "keystone": ("keystone", f"{KEYSTONE_API_MODULE}:load()", ("keystone",)),
    "glance-api": ("glance", "glance.wsgi.api:application", ("glance",)),
    "placement-api": ("placement", "placement.wsgi.api:application", ("placement",)),
    # the compute API and the metadata API, each on its own port, dispatched by the port that accepted the
    # connection: one process instead of two (its own gunicorn master and worker made the metadata API
    # ~118 MiB PSS; both in one worker take ~103 MiB less, measured before any request)
    "nova-api": ("nova", f"{NOVA_APIS_MODULE}:load({{nova}}, {{metadata}})", ("nova", "metadata")),
    # neutron's own application, loaded once three eager loads of every Port are made selectin (neutronapi.py)
    "neutron-api": ("neutron", f"{NEUTRON_API_MODULE}:load()", ("neutron",)),
    "cinder-api": ("cinder", "cinder.wsgi.api:application", ("cinder",)),
}
#: cinder's WSGI entry point reads only the default config locations, the first being
#: ~/.cinder/cinder.conf: its process gets this directory as HOME, where the file is linked.
CINDER_HOME = "cinder/home"


#: nova's FakeDriver draws a random node UUID at each start, and the second start then finds a
#: "duplicate compute node"; this one derives it from the host name (uuid5), so restarts keep it.
FAKE_COMPUTE_DRIVER = "fake.PredictableNodeUUIDDriver"
#: keystone's bcrypt cost for this cloud's passwords (see keystone.conf below).
KEYSTONE_HASH_ROUNDS = 4
#: The one compute host's name, shared by nova-compute and the neutron agents of a dataplane.
COMPUTE_HOST = "compute1"


def sqlite(state: CloudState, name: str) -> str:
    return f"sqlite:///{state.data(name) / (name + '.db')}"


def mysql(state: CloudState, database: str, password: str) -> str:
    return (f"mysql+pymysql://nova:{quote(password, safe='')}@localhost/{database}"
            f"?unix_socket={state.mysql_socket}&charset=utf8")


def rabbit_url(state: CloudState, password: str) -> str:
    """Our own RabbitMQ user and vhost (made at the node's first boot, see bootstrap.init_rabbitmq)."""
    return f"rabbit://{RABBIT_USER}:{password}@{HOST}:{state.ports['rabbitmq']}/{RABBIT_VHOST}"


def ksa(state: CloudState, user: str, password: str, **extra) -> dict:
    """A keystoneauth password section for service user `user` (project `service`)."""
    return {"auth_type": "password", "auth_url": state.url("keystone") + "/v3", "project_name": "service",
            "project_domain_name": "Default", "user_domain_name": "Default", "username": user,
            "password": password, "region_name": REGION, **extra}


def authtoken(state: CloudState, user: str, password: str) -> dict:
    """keystonemiddleware's section: validate tokens, and require a service token with role `service`."""
    return ksa(state, user, password, www_authenticate_uri=state.url("keystone"),
               service_token_roles_required=True, service_token_roles="service")


def generate(state: CloudState) -> Config:
    """The whole configuration of the API-only cloud (fake compute, fake volumes, always-bind ML2)."""
    pw = state.passwords()
    ports = state.ports
    lock = lambda name: {"lock_path": str(state.data(name) / "lock")}  # noqa: E731
    noop = {"driver": "noop"}
    cfg: Config = {}

    cfg["keystone/keystone.conf"] = {
        "DEFAULT": {"use_stderr": True},
        "database": {"connection": sqlite(state, "keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": str(state.etc("keystone") / "fernet-keys")},
        "fernet_receipts": {"key_repository": str(state.etc("keystone") / "fernet-keys")},
        "credential": {"key_repository": str(state.etc("keystone") / "credential-keys")},
        "oslo_messaging_notifications": noop,
        # no [cache] for keystone (tried in 5ebb8b1, not kept): oslo.cache's in-process backends hand out the
        # cached object itself (oslo_cache.dict's get returns the very list that was set: checked), so any
        # keystone code that edits a result it read would edit the cache for every later request; keystone is
        # run with memcached, which copies. Its gain, keystone's CPU in a warm `up` 6.6 -> 3.2 s, did not show
        # in the up's wall time beyond the spread (2026-12-07: 42.9-48.0 s without it, 43.3-52.8 s with it).
        # bcrypt's cost 12 (keystone's default) made each password login 0.33 s of the one keystone worker's
        # CPU here, and an `up` makes 21 of them (every service's first token, popek's own): 7 s, in series.
        # Every password of this cloud is drawn at random (secrets.json, 144 bits), where the cost adds
        # nothing against a guess; 4 is bcrypt's minimum. bootstrap.rehash_passwords gives an older install
        # the new cost (keystone applies it to passwords set from now on).
        "identity": {"password_hash_rounds": KEYSTONE_HASH_ROUNDS},
    }

    cfg["glance/glance-api.conf"] = {
        "DEFAULT": {"enabled_backends": "fs:file", "use_stderr": True,
                    "worker_self_reference_url": state.url("glance")},
        "database": {"connection": sqlite(state, "glance")},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": str(state.data("glance") / "images")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(state.data("glance") / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(state.data("glance") / "tasks")},
        "keystone_authtoken": authtoken(state, "glance", pw["glance"]),
        "paste_deploy": {"flavor": "keystone", "config_file": str(state.etc("glance") / "glance-api-paste.ini")},
        "oslo_messaging_notifications": noop,
        "oslo_concurrency": lock("glance"),
    }

    cfg["placement/placement.conf"] = {
        "DEFAULT": {"use_stderr": True},
        "placement_database": {"connection": sqlite(state, "placement")},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": authtoken(state, "placement", pw["placement"]),
    }

    nova_db = lambda db: mysql(state, db, pw["mariadb_nova"])  # noqa: E731
    cfg["nova/nova.conf"] = {
        "DEFAULT": {
            "transport_url": rabbit_url(state, pw["rabbitmq"]), "compute_driver": FAKE_COMPUTE_DRIVER, "host": COMPUTE_HOST,
            "my_ip": HOST, "state_path": str(state.data("nova")), "instances_path": str(state.data("nova") / "instances"),
            "osapi_compute_workers": 1, "metadata_workers": 1, "use_stderr": True,
            "osapi_compute_listen": HOST, "metadata_listen": HOST,
            # The fake driver plugs nothing: no vif-plugged event will come.
            "vif_plugging_is_fatal": False, "vif_plugging_timeout": 0,
            # The fake driver reports 2 vCPU / 8192 MB / 1028 GB: room for parallel boots of every flavor.
            "cpu_allocation_ratio": 16.0, "ram_allocation_ratio": 8.0, "disk_allocation_ratio": 4.0,
            "initial_cpu_allocation_ratio": 16.0, "initial_ram_allocation_ratio": 8.0,
            "initial_disk_allocation_ratio": 4.0,
        },
        "api_database": {"connection": nova_db("nova_api")},
        "database": {"connection": nova_db("nova")},
        "wsgi": {"api_paste_config": str(state.etc("nova") / "api-paste.ini")},
        "api": {"auth_strategy": "keystone"},
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1, "discover_hosts_in_cells_interval": 5},
        "keystone_authtoken": authtoken(state, "nova", pw["nova"]),
        "placement": ksa(state, "nova", pw["nova"]),
        "neutron": ksa(state, "nova", pw["nova"], service_metadata_proxy=False),
        "cinder": ksa(state, "nova", pw["nova"], os_region_name=REGION),
        "service_user": ksa(state, "nova", pw["nova"], send_service_user_token=True),
        "oslo_messaging_notifications": noop,
        "oslo_concurrency": lock("nova"),
        "vnc": {"enabled": False},
        "spice": {"enabled": False},
    }

    cfg["neutron/neutron.conf"] = {
        "DEFAULT": {
            # The same host name as nova-compute's: an agent binds ports of its own host only.
            "host": COMPUTE_HOST,
            "core_plugin": "ml2", "service_plugins": "router", "transport_url": rabbit_url(state, pw["rabbitmq"]),
            "auth_strategy": "keystone", "state_path": str(state.data("neutron")),
            "api_paste_config": str(state.etc("neutron") / "api-paste.ini"), "use_stderr": True,
            # rpc_* are read by neutron-rpc-server only (a dataplane's agents talk to it); the API under
            # gunicorn starts no RPC worker, so the API-only cloud pays nothing for them.
            "api_workers": 1, "rpc_workers": 1, "rpc_state_report_workers": 1,
            "notify_nova_on_port_status_changes": True, "notify_nova_on_port_data_changes": True,
        },
        "database": {"connection": sqlite(state, "neutron")},
        "keystone_authtoken": authtoken(state, "neutron", pw["neutron"]),
        "nova": ksa(state, "neutron", pw["neutron"]),
        # neutron loads its segments plugin at the first network delete whatever service_plugins says
        # (neutron/services/segments/db.py, _delete_segments_for_network), and with it a notifier that asks
        # Placement about the deleted segments: without this section each network delete ended in
        # MissingAuthPlugin ("An auth plugin is required to determine endpoint URL") in a thread.
        "placement": ksa(state, "neutron", pw["neutron"]),
        "oslo_messaging_notifications": noop,
        "oslo_concurrency": lock("neutron"),
        "agent": {"root_helper": "", "root_helper_daemon": ""},
    }
    cfg["neutron/plugins/ml2/ml2_conf.ini"] = {
        "ml2": {"type_drivers": "flat,vxlan,local", "tenant_network_types": "vxlan",
                "mechanism_drivers": "popek_alwaysbind", "extension_drivers": "port_security"},
        "ml2_type_flat": {"flat_networks": "public"},
        "ml2_type_vxlan": {"vni_ranges": "1:1000"},
    }

    cfg["cinder/cinder.conf"] = {
        "DEFAULT": {
            "transport_url": rabbit_url(state, pw["rabbitmq"]), "auth_strategy": "keystone", "my_ip": HOST,
            "osapi_volume_listen": HOST, "osapi_volume_listen_port": ports["cinder"], "osapi_volume_workers": 1,
            "enabled_backends": "fake", "state_path": str(state.data("cinder")), "host": "volume1",
            "api_paste_config": str(state.etc("cinder") / "api-paste.ini"), "use_stderr": True,
        },
        "database": {"connection": mysql(state, "cinder", pw["mariadb_nova"])},  # see bootstrap.cinder_db
        "fake": {"volume_driver": "cinder.tests.fake_driver.FakeLoggingVolumeDriver", "volume_backend_name": "fake"},
        "keystone_authtoken": authtoken(state, "cinder", pw["cinder"]),
        "nova": ksa(state, "cinder", pw["cinder"]),
        "oslo_messaging_notifications": noop,
        "oslo_concurrency": lock("cinder"),
    }

    swift_common = {"bind_ip": HOST, "swift_dir": str(state.etc("swift")), "devices": str(state.data("swift")),
                    "mount_check": False, "workers": 0}  # workers>=1 die silently without /dev/log
    cfg["swift/swift.conf"] = {
        "swift-hash": {"swift_hash_path_suffix": "popek", "swift_hash_path_prefix": "popek"},
        "storage-policy:0": {"name": "Policy-0", "default": "yes"},
    }
    for kind in ("account", "container", "object"):
        cfg[f"swift/{kind}-server.conf"] = {
            "DEFAULT": swift_common | {"bind_port": ports[f"swift-{kind}"]},
            "pipeline:main": {"pipeline": f"{kind}-server"},
            f"app:{kind}-server": {"use": f"egg:swift#{kind}"},
        }
    cfg["swift/proxy-server.conf"] = {
        "DEFAULT": {"bind_ip": HOST, "bind_port": ports["swift"], "swift_dir": str(state.etc("swift")), "workers": 0},
        "pipeline:main": {"pipeline": "catch_errors healthcheck proxy-logging authtoken keystoneauth proxy-logging "
                                      "proxy-server"},
        "filter:healthcheck": {"use": "egg:swift#healthcheck"},
        "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": True},
        "filter:catch_errors": {"use": "egg:swift#catch_errors"},
        "filter:proxy-logging": {"use": "egg:swift#proxy_logging"},
        "filter:keystoneauth": {"use": "egg:swift#keystoneauth", "operator_roles": "admin,member"},
        "filter:authtoken": {"paste.filter_factory": "keystonemiddleware.auth_token:filter_factory",
                             "delay_auth_decision": True, **authtoken(state, "swift", pw["swift"])},
    }

    cfg["mariadb/my.cnf"] = {
        "client": {"socket": str(state.mysql_socket)},
        "mysqld": {"datadir": str(state.data("mariadb")), "socket": str(state.mysql_socket),
                   "pid-file": str(state.data("mariadb") / "mariadbd.pid"), "skip-networking": True,
                   "skip-name-resolve": True, "performance_schema": "OFF", "innodb_buffer_pool_size": "64M",
                   "innodb_log_file_size": "32M", "max_connections": 200, "character-set-server": "utf8mb4",
                   "skip-log-bin": True,
                   # the MyISAM key cache and Aria's page cache (system tables, on-disk temporary tables):
                   # 128 MiB each by default, of which 29 MiB were resident here
                   "key_buffer_size": "8M", "aria_pagecache_buffer_size": "16M",
                   # nova's parallel boots contend on a project's default security group: a lock wait
                   # ends as a deadlock error that nova retries, better after 5 s than after 50.
                   "innodb_lock_wait_timeout": 5},
    }

    for name, (directory, app, keys) in WSGI_APPS.items():
        # gunicorn reads ./gunicorn.conf.py: one directory per app, the process's working directory.
        binds = [f"{HOST}:{ports[key]}" for key in keys]
        conf = {"bind": binds[0] if len(binds) == 1 else binds, "workers": 1, "wsgi_app": app.format(**ports),
                "timeout": 300,
                "control_socket_disable": True, "proc_name": name}
        if len(keys) > 1:
            # Two APIs in one worker (nova's): gunicorn's sync worker serves one request at a time, so a guest's
            # metadata read would wait for a POST /servers in flight (up to ~6 s measured), and the tiny image reads
            # its key and user data once, with a 5 s timeout. Threads (gunicorn's gthread worker) serve them side
            # by side; nova 34's APIs run in native threading mode ("Service is starting with native threading").
            conf["threads"] = MULTI_API_THREADS
        cfg[f"{directory}/gunicorn-{name}/gunicorn.conf.py"] = {"": conf}
    return cfg


def merge(base: Config, overrides: Config) -> Config:
    """`base` with `overrides` laid on top, key by key; an override value of None removes the key."""
    out = {f: {s: dict(kv) for s, kv in sections.items()} for f, sections in base.items()}
    for f, sections in overrides.items():
        for s, kv in sections.items():
            target = out.setdefault(f, {}).setdefault(s, {})
            for k, v in kv.items():
                if v is None:
                    target.pop(k, None)
                else:
                    target[k] = v
    return out


def render_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(path: str, sections: dict) -> str:
    """INI text of one file (a `.py` file, i.e. gunicorn's, is rendered as Python assignments)."""
    if path.endswith(".py"):
        return "".join(f"{k} = {v!r}\n" for kv in sections.values() for k, v in kv.items())
    lines = []
    for section, kv in sections.items():
        lines.append(f"[{section}]")
        for key, value in kv.items():
            text = render_value(value)
            # my.cnf flags are bare words; INI keys with an empty value stay "key =".
            lines.append(key if (path.endswith(".cnf") and value is True) else f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, from the first byte: the file is created 0600
    (never 0644 then chmod'ed) and an existing file loses its other modes before its new text lands."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def write(state: CloudState, cfg: Config) -> None:
    """Write every file of `cfg` under `state.etc()` (mode 0600 from creation: they hold passwords)."""
    for rel, sections in cfg.items():
        path = state.etc() / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render(rel, sections)
        if not path.exists() or path.read_text() != text:
            write_private(path, text)
        path.chmod(0o600)


def nova_apis_path(state: CloudState) -> Path:
    """Where nova-api's gunicorn imports NOVA_APIS_MODULE from."""
    return state.etc("nova") / "gunicorn-nova-api" / f"{NOVA_APIS_MODULE}.py"


def neutron_api_path(state: CloudState) -> Path:
    """Where neutron-api's gunicorn imports NEUTRON_API_MODULE from."""
    return state.etc("neutron") / "gunicorn-neutron-api" / f"{NEUTRON_API_MODULE}.py"


def keystone_api_path(state: CloudState) -> Path:
    """Where keystone's gunicorn imports KEYSTONE_API_MODULE from."""
    return state.etc("keystone") / "gunicorn-keystone" / f"{KEYSTONE_API_MODULE}.py"


def copy_shipped(state: CloudState) -> None:
    """Copy the paste files shipped in the wheels (under <venv>/etc) next to the generated configs,
    link cinder.conf where cinder's WSGI application looks for it (see CINDER_HOME), and put nova's
    two-API module, neutron's and keystone's API modules in their gunicorn directories (on their sys.path:
    gunicorn's working directory)."""
    for path, source in ((nova_apis_path(state), "novaapis.py"), (neutron_api_path(state), "neutronapi.py"),
                         (keystone_api_path(state), "keystoneapi.py")):
        path.parent.mkdir(parents=True, exist_ok=True)
        text = Path(__file__).with_name(source).read_text()
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    link = state.etc() / CINDER_HOME / ".cinder" / "cinder.conf"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(state.etc("cinder") / "cinder.conf")
    for src, dst in SHIPPED.items():
        target = state.etc() / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state.venv / "etc" / src, target)
