"""The embedded cloud's state directory: where each thing lives, and the per-install passwords.

Layout under `root` (`popek.paths.embedded_cloud_dir()`):
  venv/            the services' own Python environment (cloud-requirements.txt)
  etc/<service>/   generated configuration           data/<service>/  databases, images, volumes
  log/<name>.log   one log per process               run/<name>.pid   one pid file per process
  secrets.json     generated passwords (mode 0600)   clouds.yaml, openrc-*  the client side
  ports.json       the TCP port of each service on 127.0.0.1, chosen at the first `up` (ports.py) and
                   written before anything binds it; absent: the standard ones (PORTS)
  host-record.json what popek made on the host outside this directory (links, mount points), each
                   written down before it is made, so that `down` removes those and nothing else
Built images and the services' wheels are cached beside it (`<root>/../cache`): they are not cloud
state, and `destroy` keeps them so that a cold `up` neither rebuilds a Debian nor needs PyPI.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from popek.checks.secrets import REDACT

#: Accounts whose passwords are generated per install. `admin` and `member` are people; the rest
#: are service users (keystone_authtoken, service tokens), the MariaDB account of nova and the RabbitMQ
#: user (another cloud on this machine, with the same ports, must not consume our RPC topics).
ACCOUNTS = ("admin", "member", "glance", "placement", "nova", "neutron", "cinder", "swift", "mariadb_nova",
            "rabbitmq")

HOST = "127.0.0.1"
#: The standard port of each service: what it takes when free on HOST at the first `up`. Every user reads
#: the cloud's own map, `CloudState.ports` (a service whose standard port was taken runs elsewhere).
PORTS = {
    "keystone": 5000, "glance": 9292, "placement": 8778, "nova": 8774, "metadata": 8775,
    "neutron": 9696, "cinder": 8776, "swift": 8080,
    "swift-account": 6202, "swift-container": 6201, "swift-object": 6200,
    "rabbitmq": 5672, "rabbitmq-dist": 25672, "epmd": 4369,
    # the Open vSwitch agent's OpenFlow controller (dataplane only): TCP on HOST, where popek's bridges connect
    # (`ss -ltnp`: 127.0.0.1:6633 neutron-openvsw); ovsdb-server and ovs-vswitchd listen on unix sockets only
    "openflow": 6633,
}
#: The keys of the map that only the dataplane binds (an API-only cloud neither probes nor moves them).
DATAPLANE_PORTS = ("openflow",)
REGION = "RegionOne"
RABBIT_USER = RABBIT_VHOST = "popek"
#: One data directory per OpenStack service (sqlite database, image store, lock files…); MariaDB's and
#: RabbitMQ's are made by their own initialisation (a stray directory in MariaDB's would be a database).
DATA_DIRS = ("keystone", "glance", "placement", "nova", "neutron", "cinder", "swift")
ADMIN_PROJECT, MEMBER_PROJECT, MEMBER_USER = "admin", "demo", "demo"


@dataclass(frozen=True)
class HostRecord:
    """What popek made on the host outside its state directory, by kind ("link", "dir"…): each name is
    added *before* the thing is made (a crash in between leaves a name of nothing, never a thing of no
    name), and discarded once it is gone again."""

    path: Path

    def load(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def names(self, kind: str) -> list[str]:
        return list(self.load().get(kind, []))

    def _save(self, data: dict[str, list[str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: v for k, v in data.items() if v}, indent=1))
        os.replace(tmp, self.path)

    def add(self, kind: str, name: str) -> None:
        data = self.load()
        if name not in data.get(kind, []):
            data.setdefault(kind, []).append(name)
            self._save(data)

    def discard(self, kind: str, name: str) -> None:
        data = self.load()
        if name in data.get(kind, []):
            data[kind].remove(name)
            self._save(data)


@dataclass(frozen=True)
class CloudState:
    """Paths of one embedded cloud rooted at `root`, and its passwords (loaded lazily)."""

    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def bin(self, name: str) -> str:
        """Path of console script `name` inside the cloud venv."""
        return str(self.venv / "bin" / name)

    @property
    def python(self) -> str:
        return self.bin("python")

    def etc(self, service: str = "") -> Path:
        return self.root / "etc" / service if service else self.root / "etc"

    def data(self, service: str = "") -> Path:
        return self.root / "data" / service if service else self.root / "data"

    def log(self, name: str) -> Path:
        return self.root / "log" / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.root / "run" / f"{name}.pid"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def image_cache(self) -> Path:
        return self.root.parent / "cache"

    @property
    def wheelhouse(self) -> Path:
        """The services' wheels, downloaded once and kept by `destroy` (cold `up` works offline)."""
        return self.root.parent / "cache" / "wheels"

    @property
    def mysql_socket(self) -> Path:
        return self.root / "run" / "mysqld.sock"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    def openrc(self, cloud: str) -> Path:
        return self.root / f"openrc-{cloud}"

    def marker(self, step: str) -> Path:
        """A file whose presence says a one-time step (db sync, bootstrap) already succeeded."""
        return self.root / "run" / "done" / step

    @property
    def host_record(self) -> HostRecord:
        return HostRecord(self.root / "host-record.json")

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def ports(self) -> dict[str, int]:
        """The TCP port of each service on HOST: the recorded map (ports.json) over the standard one (PORTS)."""
        try:
            recorded = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            recorded = {}
        if not isinstance(recorded, dict):
            recorded = {}
        return {key: recorded[key] if isinstance(recorded.get(key), int) and 0 < recorded[key] < 65536 else port
                for key, port in PORTS.items()}

    def record_ports(self, ports: dict[str, int]) -> None:
        """Write the port map (atomically: a reader sees the old map or the new one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.ports_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: ports[k] for k in PORTS if k in ports}, indent=1))
        os.replace(tmp, self.ports_file)

    def passwords(self) -> dict[str, str]:
        """The per-install passwords, generated on first call and kept in secrets.json (0600).

        Every value is fed to popek's redactor so that it never reaches a report or a log popek writes.
        """
        path = self.secrets_file
        stored = json.loads(path.read_text()) if path.exists() else {}
        missing = [a for a in ACCOUNTS if a not in stored]
        if missing:
            stored.update({a: secrets.token_urlsafe(18) for a in missing})
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(stored, f, indent=1)
        os.chmod(path, 0o600)
        for value in stored.values():
            REDACT.add(value)
        return stored

    def url(self, service: str) -> str:
        """Base URL of an HTTP service (`keystone`, `nova`, …) on the loopback address."""
        return f"http://{HOST}:{self.ports[service]}"

    def mkdirs(self) -> None:
        for d in (self.etc(), self.root / "log", self.run_dir, self.marker("x").parent):
            d.mkdir(parents=True, exist_ok=True)
        for name in DATA_DIRS:
            (self.data(name) / "lock").mkdir(parents=True, exist_ok=True)
        (self.data("nova") / "instances").mkdir(exist_ok=True)
