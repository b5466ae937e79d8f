"""The embedded cloud's process table (data), and starting, watching and stopping its processes.

Hook contract for a dataplane (`popek.checks.localcloud.dataplane`)
-------------------------------------------------------------------
`lifecycle.up(state, dataplane=True)` calls, in this order:

- `config_overrides(state) -> {file: {section: {key: value}}}`: laid over `config.generate(state)`
  key by key before anything is written (file paths relative to `state.etc()`, e.g.
  `"nova/nova.conf"`, `"neutron/plugins/ml2/ml2_conf.ini"`; a value of None removes a key). This is
  where neutron switches to the openvswitch mechanism driver and nova-compute to libvirt/qemu.
- `prepare(state) -> None`: once the configuration is written and before any process starts
  (apt packages, OVS database, bridges, libvirtd's qemu.conf…). Must be idempotent.
- `services(state) -> list[Service]`: more processes, started with the core ones of the same `stage`
  (see STAGES); a returned Service whose name equals a core one REPLACES it (e.g. a nova-compute with
  another environment). Each is started, watched, reported and stopped exactly like the core ones.
- `smoke(state) -> float`: once the course's resources exist, a real guest proves the dataplane
  (raises CloudError with what the guest said when it does not deliver).
- `teardown(state) -> None`: after every process is stopped by `down` (remove taps, bridges…).
  Must tolerate "already gone".

A Service is pure data: `argv` (absolute paths), `env` (added to a minimal environment), `cwd`, `log`
(stdout and stderr of the process), `health` ("http://…" answered below 500, "tcp://host:port"
accepting, "unix:///path" accepting, several of them separated by spaces: each one, or "" = the process
is alive), `stage`. Every process started
here carries `POPEK_CLOUD=<state root>` in its environment, inherited by its children: that is how
`down` proves that nothing of ours is left running.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from popek.checks.localcloud import config
from popek.checks.localcloud.errors import CloudError
from popek.checks.secrets import REDACT
from popek.checks.localcloud.state import HOST, CloudState

#: Start order. 0: databases and message bus; 1: identity and placement; 2: the other services (their
#: service users exist by then: conductor and scheduler exit on a 401 otherwise); 3: compute.
STAGES = (0, 1, 2, 3)
#: WSGI apps of stage 1. Placement answers before nova-conductor and nova-scheduler start: both make their
#: Placement client as they start and exit for good when it does not answer ("Fatal error initializing
#: placement client", seen when conductor happened to start faster than Placement's worker).
STAGE_1_APIS = ("keystone", "placement-api")
ENV_MARK = "POPEK_CLOUD"


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    log: str = ""
    health: str = ""
    stage: int = 2
    #: TCP ports (on HOST) it binds besides those of its health check (RabbitMQ's distribution port, the
    #: OpenFlow port of the Open vSwitch agent): `up` checks them free before it starts anything.
    ports: tuple[int, ...] = ()
    #: It binds its ports on IPv6's loopback ::1 too, and dies when one is taken there (epmd: see holder).
    ipv6_loopback: bool = False


def _wsgi(state: CloudState, name: str, conf_env: dict[str, str]) -> Service:
    directory, _app, keys = config.WSGI_APPS[name]
    ports = state.ports
    # gunicorn gets no argument at all: oslo.config parses sys.argv too and would reject gunicorn's
    # (research pitfall 2). Its settings are ./gunicorn.conf.py in its working directory. An app on several
    # ports (nova-api: the compute and metadata APIs) is healthy when each of them answers.
    return Service(name, [state.bin("gunicorn")], env=conf_env, cwd=str(state.etc(directory) / f"gunicorn-{name}"),
                   log=str(state.log(name)), health=" ".join(f"http://{HOST}:{ports[k]}/" for k in keys),
                   stage=1 if name in STAGE_1_APIS else 2)


def core_services(state: CloudState) -> list[Service]:
    """The API-only cloud: fake compute driver, fake volume driver, always-bind ML2, no agents."""
    etc = state.etc()
    nova_conf = ["--config-file", str(etc / "nova/nova.conf")]
    cinder_conf = ["--config-file", str(etc / "cinder/cinder.conf")]
    nova_env = {"OS_NOVA_CONFIG_DIR": str(etc / "nova"), "OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf"}
    # (nova's WSGI loader takes its paste pipeline from the FIRST file of that list)
    ports = state.ports
    rabbit_env = {
        "RABBITMQ_NODE_IP_ADDRESS": HOST, "ERL_EPMD_ADDRESS": HOST, "RABBITMQ_NODENAME": "rabbit@localhost",
        "RABBITMQ_NODE_PORT": str(ports["rabbitmq"]), "RABBITMQ_DIST_PORT": str(ports["rabbitmq-dist"]),
        "ERL_EPMD_PORT": str(ports["epmd"]),  # our epmd's (rabbitmq-server and the erl it runs read it)
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(state.data("rabbitmq") / "mnesia"),
        "RABBITMQ_LOG_BASE": str(state.data("rabbitmq") / "log"), "RABBITMQ_LOGS": "-",
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(state.etc("rabbitmq") / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(state.etc("rabbitmq") / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(state.data("rabbitmq") / "rabbit.pid"),
        "HOME": str(state.data("rabbitmq")),  # its Erlang cookie lives in $HOME
    }
    mysqld = ["/usr/sbin/mariadbd", f"--defaults-file={etc / 'mariadb/my.cnf'}"]
    if os.geteuid() == 0:
        mysqld.append("--user=root")
    svc = [
        Service("mariadb", mysqld, log=str(state.log("mariadb")), health=f"unix://{state.mysql_socket}", stage=0),
        Service("epmd", ["/usr/bin/epmd", "-address", HOST, "-port", str(ports["epmd"])],
                log=str(state.log("epmd")), health=f"tcp://{HOST}:{ports['epmd']}", stage=0, ipv6_loopback=True),
        Service("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=rabbit_env, cwd=str(state.data("rabbitmq")),
                log=str(state.log("rabbitmq")), health=f"tcp://{HOST}:{ports['rabbitmq']}", stage=0,
                ports=(ports["rabbitmq-dist"],)),
        _wsgi(state, "keystone", {"OS_KEYSTONE_CONFIG_DIR": str(etc / "keystone")}),
        _wsgi(state, "glance-api", {"OS_GLANCE_CONFIG_DIR": str(etc / "glance")}),
        _wsgi(state, "placement-api", {"OS_PLACEMENT_CONFIG_DIR": str(etc / "placement")}),
        _wsgi(state, "nova-api", nova_env),  # and the metadata API (config.WSGI_APPS)
        _wsgi(state, "neutron-api", {"OS_NEUTRON_CONFIG_DIR": str(etc / "neutron"),
                                     "OS_NEUTRON_CONFIG_FILES": "neutron.conf;plugins/ml2/ml2_conf.ini"}),
        Service("nova-conductor", [state.bin("nova-conductor"), *nova_conf], log=str(state.log("nova-conductor"))),
        Service("nova-scheduler", [state.bin("nova-scheduler"), *nova_conf], log=str(state.log("nova-scheduler"))),
        Service("nova-compute", nova_compute_argv(state, nova_conf), log=str(state.log("nova-compute")), stage=3),
        _wsgi(state, "cinder-api", {"HOME": str(etc / config.CINDER_HOME)}),
        Service("cinder-scheduler", [state.bin("cinder-scheduler"), *cinder_conf], log=str(state.log("cinder-scheduler"))),
        Service("cinder-volume", [state.bin("cinder-volume"), *cinder_conf], log=str(state.log("cinder-volume"))),
    ]
    for kind in ("account", "container", "object"):
        svc.append(Service(f"swift-{kind}", [state.bin(f"swift-{kind}-server"), str(etc / f"swift/{kind}-server.conf")],
                           log=str(state.log(f"swift-{kind}")), health=f"tcp://{HOST}:{ports['swift-' + kind]}"))
    svc.append(Service("swift-proxy", [state.bin("swift-proxy-server"), str(etc / "swift/proxy-server.conf")],
                       log=str(state.log("swift-proxy")), health=f"http://{HOST}:{ports['swift']}/healthcheck"))
    return svc


#: nova-compute's launcher (novacompute.py): its first heartbeat as soon as it serves, not 5 s later.
NOVA_COMPUTE_SCRIPT = Path(__file__).with_name("novacompute.py")


def nova_compute_argv(state: CloudState, args: list[str]) -> list[str]:
    """nova-compute with `args` (its --config-file), through NOVA_COMPUTE_SCRIPT in the cloud venv's Python
    (-P: the script's folder, popek's modules, is not put on its sys.path)."""
    return [state.python, "-P", str(NOVA_COMPUTE_SCRIPT), *args]


def with_extra(core: list[Service], extra: list[Service]) -> list[Service]:
    """`core` where each Service of `extra` replaces the one of the same name, the others appended."""
    by_name = {s.name: s for s in extra}
    table = [by_name.pop(s.name, s) for s in core]
    return table + [s for s in extra if s.name in by_name]


# --- processes ---------------------------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/pid/stat), None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return _exited(Path(f"/proc/{pid}"), state)


def _exited(entry: Path, state: str) -> bool:
    """A zombie whose threads are all gone. A SIGKILLed multi-threaded process's leader shows "Z" while its
    other threads still exit, and they hold its files (its listening sockets) until the last one is gone:
    measured, a 31-thread Python listener killed, bind() on its port failed with EADDRINUSE 4 times in 8
    right after its leader turned "Z" (2 tasks left); an agent restarted then could not listen."""
    if state != "Z":
        return False
    try:
        return len(os.listdir(entry / "task")) <= 1
    except OSError:
        return True


def read_pid(state: CloudState, name: str) -> int | None:
    """The pid of service `name` if the process recorded at its start is still that process."""
    try:
        rec = json.loads(state.pidfile(name).read_text())
    except (OSError, ValueError):
        return None
    pid = rec.get("pid") if isinstance(rec, dict) else None
    if pid and _start_time(pid) == rec.get("start") and not _is_zombie(pid):
        return pid
    return None


def base_env(state: CloudState) -> dict[str, str]:
    """A small, predictable environment: no OS_* of the caller leaks into the services."""
    return {"PATH": f"{state.venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONUNBUFFERED": "1", ENV_MARK: str(state.root),
            # glibc's malloc (mallopt(3)): at most 2 arenas per process instead of 8 per core. Measured: the
            # threads' arenas 117-156 -> 31-34 MiB PSS, but most of it reappeared in the main heaps: the
            # services' total 3264 -> 3247 MiB, within noise (benchmarks/README.md); kept as the one bound
            "MALLOC_ARENA_MAX": "2"}


def start(state: CloudState, svc: Service) -> int:
    """Start `svc` in its own session (so it outlives `popek`), record its pid; returns the pid."""
    Path(svc.log).parent.mkdir(parents=True, exist_ok=True)
    Path(svc.cwd).mkdir(parents=True, exist_ok=True)
    env = base_env(state) | svc.env
    argv = list(svc.argv)
    with os.fdopen(os.open(svc.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        os.fchmod(log.fileno(), 0o600)  # a service may log its configuration, passwords included
        log.write(f"\n--- popek: start {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, cwd=svc.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    state.pidfile(svc.name).parent.mkdir(parents=True, exist_ok=True)
    state.pidfile(svc.name).write_text(json.dumps({"pid": proc.pid, "start": _start_time(proc.pid), "argv": argv}))
    return proc.pid


def health_targets(svc: Service) -> list[str]:
    """The targets of `svc.health`, in order ("" for none): "a://x b://y" is two (a path may hold spaces)."""
    return re.split(r"\s+(?=(?:https?|tcp|unix)://)", svc.health.strip()) if svc.health.strip() else []


def _probe(h: str, timeout: float) -> bool:
    try:
        if h.startswith("http"):
            try:
                with urllib.request.urlopen(h, timeout=timeout) as r:
                    return r.status < 500
            except urllib.error.HTTPError as exc:
                return exc.code < 500
        if h.startswith("tcp://"):
            host, port = h[6:].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        if h.startswith("unix://"):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(timeout)
                s.connect(h[7:])
                return True
    except OSError:
        return False
    return True


def healthy(svc: Service, timeout: float = 2.0) -> bool:
    """One probe of each target of `svc.health` (see the module docstring), all answered; "" means nothing
    beyond being alive."""
    return all(_probe(h, timeout) for h in health_targets(svc))


def ports_of(svc: Service) -> list[int]:
    """The TCP ports `svc` will listen on: those its health check names, then its other ones (`svc.ports`)."""
    ports = []
    for h in health_targets(svc):
        if h.startswith(("http://", "tcp://")):
            hostport = h.split("//", 1)[1].split("/", 1)[0]
            ports.append(int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 80)
    return ports + [p for p in svc.ports if p not in ports]


def port_taken(port: int, host: str = HOST) -> str | None:
    """Who holds TCP `port` so that a server of popek's could not listen on `host`:`port`, in French
    ("le processus PID (PROGRAM)", see port_listener), or None when the port is free for it.

    The test is the bind itself, with SO_REUSEADDR as the servers bind: a listener on `host`, on the IPv4
    wildcard or on a dual-stack IPv6 wildcard refuses it, one bound to another address of the machine does
    not. A refused bind with no listening socket on that port (only connections of an earlier run closing,
    TIME_WAIT) is no conflict of anyone's: None, the server's own bind decides. One socket, closed at once.
    An IPv6 `host` ("::1") is tried IPv6-only; a machine without IPv6 has nothing there: None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return None
    with sock as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return port_listener(port)
    return None  # free (any other refusal, e.g. no such address, is the server's own to report)


def port_taken_loopback(port: int) -> str | None:
    """port_taken on 127.0.0.1, then on ::1: for a server that binds both (epmd, even with `-address
    127.0.0.1`: measured, an IPv6-only listener on [::1]:P made `epmd -address 127.0.0.1 -port P` exit at once,
    silently, while 127.0.0.1:P was free)."""
    return port_taken(port) or port_taken(port, "::1")


def holder(svc: Service, port: int, host: str = HOST) -> str | None:
    """Who holds `port` of `svc` so that it could not start (port_taken; on ::1 too for an ipv6_loopback one)."""
    return port_taken_loopback(port) if svc.ipv6_loopback and host == HOST else port_taken(port, host)


def taken_ports(svcs: list[Service], host: str = HOST) -> list[tuple[int, str, str]]:
    """(port, service, who holds it) for each TCP port of `svcs` (ports_of) that is taken (port_taken)."""
    found = []
    for svc in svcs:
        for port in ports_of(svc):
            who = holder(svc, port, host)
            if who is not None:
                found.append((port, svc.name, who))
    return found


def check_ports_free(svcs: list[Service], host: str = HOST) -> None:
    """Refuse, before anything of `svcs` starts, every port of theirs that a program of the machine holds:
    one French CloudError naming each port, the service of popek's that needs it and its holder (popek
    stops nothing of the owner's)."""
    taken = taken_ports(svcs, host)
    if not taken:
        return
    what = " ; ".join(f"le port {port} ({name}) est occupé par {who}" for port, name, who in taken)
    raise CloudError(f"{what} ; popek n'y touche pas et ne démarre rien : libérez "
                     f"{'ce port' if len(taken) == 1 else 'ces ports'} (arrêtez ce programme), puis relancez "
                     "`popek cloud up`")


def port_listener(port: int, proc: Path = Path("/proc")) -> str | None:
    """Who listens on TCP `port` in this network namespace (any address, IPv4 or IPv6), in French:
    "le processus PID (PROGRAM)" (its program's name, never its arguments: an owner's server may carry a
    secret there, as `redis-server --requirepass S`), read from /proc/net/tcp{,6} and the processes' file
    descriptors; None when nobody listens there. A listener whose process cannot be found (another user's,
    another PID namespace) is said as such."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                return f"le processus {entry.name} ({_program(entry)})"
        except OSError:
            continue
    return "un processus que popek ne voit pas"


def _program(entry: Path) -> str:
    """The name of the program process `entry` (/proc/PID) runs: its executable's file name, else its
    `comm` (the kernel's 15 characters), else "?"."""
    try:
        return os.path.basename(os.readlink(entry / "exe")) or "?"
    except OSError:
        pass
    try:
        return (entry / "comm").read_text().strip() or "?"
    except OSError:
        return "?"


def port_of(svc: Service) -> int | None:
    """The (first) TCP port `svc` will listen on, when its health check names one."""
    return next(iter(ports_of(svc)), None)


def wait_healthy(state: CloudState, services: list[Service], timeout: float = 120.0) -> None:
    """Wait until every service of `services` is alive and answers its health check.

    Raises CloudError naming the first one that died (or did not answer in `timeout` s) and its log.
    """
    pending = list(services)
    deadline = time.monotonic() + timeout
    while pending:
        for svc in list(pending):
            if read_pid(state, svc.name) is None:
                raise CloudError(f"le service {svc.name} s'est arrêté au démarrage ; voir {svc.log}")
            if healthy(svc, timeout=1.0):
                pending.remove(svc)
        if pending and time.monotonic() > deadline:
            svc = pending[0]
            raise CloudError(f"le service {svc.name} ne répond pas ({svc.health}) après {timeout:.0f} s ; voir {svc.log}")
        if pending:
            time.sleep(0.2)


def _sessions(state: CloudState) -> set[int]:
    """Session ids of the services recorded in run/*.pid (each was started as a session leader).

    A recorded pid now held by another process (different start time) is not ours. A dead leader's
    pid cannot be reused while members of its session live, so those members are still ours.
    """
    sids = set()
    for path in state.run_dir.glob("*.pid"):
        try:
            rec = json.loads(path.read_text())
            pid, start = rec["pid"], rec["start"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        now = _start_time(pid)
        if now is None or now == start:
            sids.add(pid)
    return sids


def _scan(match) -> list[int]:
    """Live processes (not zombies whose threads all exited) for which `match(pid, session_id, environ_bytes)`
    is true."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if not _exited(entry, fields[0]) and match(int(entry.name), int(fields[3]), entry):
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def ours(state: CloudState) -> list[int]:
    """Every live process of ours: carrying our mark in its environment, or in the session of a service
    we started (setproctitle, used by gunicorn and nova, overwrites /proc/pid/environ)."""
    mark = f"{ENV_MARK}={state.root}".encode()
    sids = _sessions(state)
    return _scan(lambda pid, sid, entry: sid in sids or mark in (entry / "environ").read_bytes().split(b"\0"))


def using_venv(state: CloudState) -> list[tuple[int, str]]:
    """Processes running a program of the cloud's venv (argv[0] or argv[1] under it), with their
    command line: after `down`, any left are shown (someone's `openstack` client, or a stray service)."""
    venv = str(state.venv) + "/"
    found = []
    for pid in _scan(lambda pid, sid, entry: any(a.startswith(venv.encode())
                                                for a in (entry / "cmdline").read_bytes().split(b"\0")[:2])):
        try:
            found.append((pid, Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]))
        except OSError:
            pass
    return found


def _kill(pids, sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop(state: CloudState, names: list[str], grace: float = 20.0) -> list[int]:
    """Stop services `names`, each with its whole session: SIGTERM, then SIGKILL after `grace` s.
    Returns the pids of those sessions still alive afterwards (none expected)."""
    sids = {pid for pid in (read_pid(state, n) for n in names) if pid is not None}
    members = lambda: _scan(lambda pid, sid, entry: sid in sids)  # noqa: E731
    _kill(members(), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and members():
        time.sleep(0.2)
    _kill(members(), signal.SIGKILL)  # a hung service
    time.sleep(0.1)
    left = members()
    for name in names:
        state.pidfile(name).unlink(missing_ok=True)
    return left


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid` (a service and every child it forked)."""
    return _scan(lambda pid, s, entry: s == sid)


def stopped_members(sid: int) -> list[int]:
    """Processes of session `sid` in the stopped state (T: SIGSTOP, t: traced): a frozen service."""
    found = []
    for pid in session_members(sid):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                found.append(pid)
        except OSError:
            continue
    return found


def kill_now(state: CloudState, names: list[str], timeout: float = 10.0) -> list[int]:
    """SIGKILL services `names` with their whole sessions at once (a frozen process never handles
    SIGTERM); waits until they are gone, forgets their pid files. Returns the pids still alive."""
    sids = {pid for pid in (read_pid(state, n) for n in names) if pid is not None}
    members = lambda: _scan(lambda pid, sid, entry: sid in sids)  # noqa: E731
    _kill(members(), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while members() and time.monotonic() < deadline:
        time.sleep(0.1)
    for name in names:
        state.pidfile(name).unlink(missing_ok=True)
    return members()


def log_tail(path: str, lines: int = 12) -> str:
    """The last `lines` lines of a service's log, redacted (for an error message)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(journal illisible : {exc.strerror})"
    return REDACT("\n".join(text.splitlines()[-lines:]))


def sweep(state: CloudState) -> list[int]:
    """SIGKILL whatever of ours is still alive after the services were stopped; returns what survived."""
    _kill(ours(state), signal.SIGKILL)
    time.sleep(0.2)
    return ours(state)


def process_rss_pss(pid: int) -> tuple[int, int]:
    """Resident and proportional set size of `pid` in KiB (from /proc/pid/smaps_rollup), 0s if gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss
