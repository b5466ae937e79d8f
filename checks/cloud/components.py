"""The parts an OpenStack cloud is built from, seen from inside the embedded cloud (C31, C32):
its services' configuration names their database and message bus, and these answer in their own
protocols (MariaDB's handshake, RabbitMQ's AMQP greeting); its venv shows how it was installed.

Only the embedded cloud exposes this: through the API a member sees neither the database nor the bus.
Passwords inside URLs never leave this module (only schemes, hosts and paths do)."""
from __future__ import annotations

import configparser
import json
import os
import re
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

#: The services the course names, as Python distributions.
COURSE_DISTRIBUTIONS = ("nova", "neutron", "glance", "keystone", "cinder", "swift")


def _options(conf: Path) -> list[tuple[str, str, str]]:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read(conf)
    except configparser.Error:
        return []
    out = []
    for section in parser.sections() + ["DEFAULT"]:
        for key, value in (parser.defaults() if section == "DEFAULT" else parser[section]).items():
            if section != "DEFAULT" and key in parser.defaults() and parser.defaults()[key] == value:
                continue
            out.append((section, key, value))
    return out


def wiring(etc: Path) -> list[dict]:
    """Every database and message-bus URL in the services' configuration under `etc`, without secrets:
    [{"service", "fichier", "rôle": "base de données" | "bus de messages", "scheme", "host", "socket"}]."""
    rows = []
    for conf in sorted(etc.glob("*/*.conf")):
        for section, key, value in _options(conf):
            role = {"transport_url": "bus de messages", "connection": "base de données"}.get(key)
            if role is None or "://" not in value:
                continue
            url = urlsplit(value)
            rows.append({"service": conf.parent.name, "fichier": conf.name, "section": section, "rôle": role,
                         "scheme": url.scheme, "host": url.hostname, "port": url.port,
                         "socket": (parse_qs(url.query).get("unix_socket") or [None])[0]})
    return rows


def mysql_greeting(socket_path: str | None = None, host: str | None = None, port: int = 3306,
                   timeout: float = 3.0) -> str:
    """The server version a MySQL-protocol server announces in its handshake (no login needed)."""
    if socket_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(socket_path)
    else:
        sock = socket.create_connection((host or "127.0.0.1", port), timeout=timeout)
    with sock:
        packet = sock.recv(1024)
    # 3-byte length, 1-byte sequence, protocol version byte, then the NUL-terminated version string
    return packet[5:packet.index(b"\0", 5)].decode(errors="replace")


def amqp_greeting(host: str, port: int = 5672, timeout: float = 3.0) -> dict:
    """What an AMQP 0-9-1 broker says first (Connection.Start): its product and version properties."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        data = b""
        while len(data) < 7 or len(data) < 7 + int.from_bytes(data[3:7], "big") + 1:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    text = data.decode("latin-1")
    found = {}
    for key in ("product", "version", "platform"):
        at = text.find(key + "S")
        if at >= 0:
            length = int.from_bytes(data[at + len(key) + 1:at + len(key) + 5], "big")
            start = at + len(key) + 5
            found[key] = data[start:start + length].decode(errors="replace")
    return found


def silent_backends(etc: Path, timeout: float = 3.0) -> list[str]:
    """The database and message bus of the services under `etc` that do not greet within `timeout` s
    (frozen, dead, refusing), in French, each with its address and what was seen; [] when all answer.
    Behind an API that stops answering, these are the usual cause: every service waits on them (RabbitMQ
    frozen made Neutron's API time out; MariaDB frozen makes every API time out)."""
    seen, said = set(), []
    seconds = f"{timeout:g}".replace(".", ",")
    for row in wiring(etc):
        where = (row["scheme"], row["socket"] or row["host"], row["port"])
        if where in seen or row["scheme"] not in ("rabbit", "mysql+pymysql", "mysql"):
            continue
        seen.add(where)
        try:
            if row["scheme"] == "rabbit":
                name, address = "le bus RabbitMQ", f"{row['host']}:{row['port'] or 5672}"
                if not amqp_greeting(row["host"] or "127.0.0.1", row["port"] or 5672, timeout):
                    raise OSError("pas de Connection.Start AMQP")
            else:
                name = "la base de données MariaDB"
                address = f"unix:{row['socket']}" if row["socket"] else f"{row['host']}:{row['port'] or 3306}"
                mysql_greeting(row["socket"], row["host"], row["port"] or 3306, timeout)
        except (OSError, ValueError) as exc:
            what = "aucun salut" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            said.append(f"{name} ({address}) ne répond pas en {seconds} s ({what[:120]})")
    return said


#: Run by the embedded cloud's own Python (its services' PyMySQL; popek's venv has none): asks a MySQL-protocol
#: server whether it refuses writes. The connection's parameters, password included, come in on stdin (never on a
#: command line); only the answer goes out.
_READ_ONLY_QUERY = """
import json, sys
import pymysql
a = json.load(sys.stdin)
db = pymysql.connect(unix_socket=a["socket"], host=a["host"] or "localhost", port=a["port"], user=a["user"],
                     password=a["password"], connect_timeout=a["timeout"], read_timeout=a["timeout"])
with db.cursor() as cur:
    cur.execute("SELECT @@global.read_only")
    print(json.dumps({"read_only": str(cur.fetchone()[0])}))
"""


def _database_urls(etc: Path) -> dict[str, dict]:
    """One database server per address in the services' configuration under `etc`: its address (as said to a
    user, no secret) -> the parameters to log in as the first service configured with it (password included:
    for ask_read_only's stdin only)."""
    from urllib.parse import unquote

    found: dict[str, dict] = {}
    for conf in sorted(etc.glob("*/*.conf")):
        for _, key, value in _options(conf):
            if key != "connection" or not value.startswith(("mysql://", "mysql+pymysql://")):
                continue
            url = urlsplit(value)
            sock = (parse_qs(url.query).get("unix_socket") or [None])[0]
            address = f"unix:{sock}" if sock else f"{url.hostname}:{url.port or 3306}"
            found.setdefault(address, {"socket": sock, "host": url.hostname, "port": url.port or 3306,
                                       "user": unquote(url.username or ""), "password": unquote(url.password or "")})
    return found


def ask_read_only(python: Path, login: dict, timeout: float = 5.0) -> bool:
    """Whether the database server `login` points at refuses writes (SELECT @@global.read_only), asked with
    the embedded cloud's Python `python`. Raises OSError, subprocess.SubprocessError or ValueError when it
    cannot be asked (not answering, login refused: silent_backends names a server that does not greet)."""
    done = subprocess.run([str(python), "-c", _READ_ONLY_QUERY], input=json.dumps({**login, "timeout": timeout}),
                          capture_output=True, text=True, timeout=timeout + 10)
    if done.returncode != 0:   # its stderr may quote the login's user, never its password: not kept anyway
        raise ValueError(f"requête refusée (code {done.returncode})")
    return json.loads(done.stdout)["read_only"] not in ("0", "OFF", "False")


def read_only_databases(root: Path, ask=ask_read_only) -> list[str]:
    """The embedded cloud at `root`'s database servers that refuse every write (`SET GLOBAL read_only=ON`), in
    French; [] when none does or none can be asked. Such a server greets and answers every read: only the
    writes fail, each as an HTTP 500 of the API that tried (« Unexpected API Error »), with nothing frozen,
    dead or slow."""
    python = root / "venv" / "bin" / "python"
    said = []
    for address, login in _database_urls(root / "etc").items():
        if not python.exists():
            break
        try:
            refuses = ask(python, login)
        except (OSError, subprocess.SubprocessError, ValueError, KeyError):
            continue
        if refuses:
            said.append(f"la base de données MariaDB ({address}) refuse toute écriture (SELECT @@global.read_only : "
                        f"1, read_only en marche) : elle salue et répond aux lectures, mais chaque écriture d'un "
                        f"service échoue (HTTP 500 de son API)")
    return said


def behind_server_error(status, trouble) -> str:
    """For an API's answer `status` >= 500 (it failed inside), what is wrong inside the embedded cloud this
    process connected to (`trouble`: connection.embedded_trouble, asked only then), as a French tail for the
    verdict (" ; sur le cloud embarqué : swift-object ne tourne plus …", the database refusing writes…); "" for
    any other status, any other cloud, or nothing found."""
    if not isinstance(status, int) or status < 500:
        return ""
    found = trouble()
    return f" ; sur le cloud embarqué : {' ; '.join(found)}" if found else ""


def server_failed(exc, trouble) -> str | None:
    """The French verdict when a scenario ended on an API's 5xx (openstacksdk's HttpException, found along the
    exception's causes) while something is wrong inside the embedded cloud (`trouble`: connection.embedded_trouble,
    asked only then): the call that failed and that cause, e.g. « POST http://…:9696/v2.0/security-groups a échoué
    (HTTP 500) : … ; sur le cloud embarqué : la base de données MariaDB (…) refuse toute écriture … ». None for
    anything else, or when nothing inside is found wrong (the report stays as it was)."""
    seen, walked = exc, set()
    while seen is not None and id(seen) not in walked:
        walked.add(id(seen))
        code = getattr(seen, "status_code", None)
        if isinstance(code, int) and code >= 500 and type(seen).__module__.startswith("openstack"):
            behind = behind_server_error(code, trouble)
            if not behind:
                return None
            call = " ".join(str(p) for p in (getattr(seen, "method", None), getattr(seen, "url", None)) if p)
            said = str(getattr(seen, "details", None) or seen).strip().splitlines()[0][:300]
            return f"{call or 'un appel à l’API'} a échoué (HTTP {code}) : {said}{behind}"
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return None


def keystone_keys(etc: Path) -> list[str]:
    """What keeps the embedded Keystone configured under `etc` from making or reading any token, in French: its
    Fernet key repository ([fernet_tokens] key_repository) gone, or without any key (Keystone then answers every
    authentication and every token check « HTTP 500 An unexpected error… »: KeysNotFound in its log); [] when the
    keys are there, or cannot be seen (a repository this user may not read)."""
    conf = etc / "keystone" / "keystone.conf"
    repo = next((v for section, k, v in _options(conf) if section == "fernet_tokens" and k == "key_repository"), None) \
        if conf.is_file() else None
    if not repo:
        return []
    where = Path(repo)
    try:
        gone = ("n'existe pas" if not where.is_dir() else
                "est vide" if not any(p.name.isdigit() for p in where.iterdir()) else None)
    except OSError:   # not ours to read (its mode 0700, another user): nothing can be said
        return []
    if gone is None:
        return []
    return [f"Keystone n'a plus de clés Fernet ({where} {gone}) : il ne peut ni émettre ni vérifier "
            f"de jeton (HTTP 500 à chaque authentification)"]


#: RabbitMQ's own words (rabbit_alarm) when a resource alarm starts and ends; while one is set, it blocks every
#: connection that publishes: each RPC call of the cloud waits, with every process alive and the bus greeting.
_ALARM = re.compile(r"\b(memory|disk) resource limit alarm (set|cleared) on node")
#: The lines that say the measure behind an alarm (vm_memory_monitor, rabbit_disk_monitor).
_ALARM_DETAIL = {"memory": re.compile(r"vm_memory_high_watermark set\. (Memory used:\S+ allowed:\S+)"),
                 "disk": re.compile(r"(Free disk space is insufficient\. Free bytes: ?\S+ Limit: ?\S+)")}
#: A (re)start of the broker: no alarm survives it.
_BROKER_BOOT = "Running boot step rabbit_alarm"


def _active_alarms(log_text: str) -> dict[str, tuple[str, str | None]]:
    """The resource alarms in effect at the end of RabbitMQ's log `log_text`: kind -> (since, RabbitMQ's measure)."""
    active: dict[str, str] = {}
    detail: dict[str, str] = {}
    # only the lines that hold one of these words, in their order (str.find: a 4 MiB log of ~20 000 connection lines
    # is read in a few ms, where one regular expression over it took 300 ms)
    starts = set()
    for word in (_BROKER_BOOT, "resource limit alarm", "vm_memory_high_watermark set.", "Free disk space is insufficient"):
        at = log_text.find(word)
        while at >= 0:
            starts.add(log_text.rfind("\n", 0, at) + 1)
            at = log_text.find(word, at + len(word))
    for start in sorted(starts):
        end = log_text.find("\n", start)
        line = log_text[start:end if end >= 0 else len(log_text)]
        if _BROKER_BOOT in line:
            active.clear()
            detail.clear()
            continue
        for kind, pattern in _ALARM_DETAIL.items():
            found = pattern.search(line)
            if found:
                detail[kind] = found.group(1).rstrip(".")
        found = _ALARM.search(line)
        if found:
            if found.group(2) == "set":
                active[found.group(1)] = line[:19]
            else:
                active.pop(found.group(1), None)
    return {kind: (since, detail.get(kind)) for kind, since in active.items()}


_ALARM_NAMES = {"memory": "de mémoire", "disk": "d'espace disque", "file_descriptors": "de descripteurs de fichiers"}


def _say_alarm(kind: str, since: str, measure: str | None) -> str:
    return (f"le bus RabbitMQ a une alarme {_ALARM_NAMES.get(kind, kind)} en cours ({since}) : il bloque les "
            f"connexions qui publient, chaque appel RPC du cloud attend" + (f" ({measure})" if measure else ""))


def bus_alarms(log_text: str) -> list[str]:
    """The resource alarms (memory, disk) in effect at the end of RabbitMQ's log `log_text`, in French with
    RabbitMQ's own measure: "le bus RabbitMQ a une alarme de mémoire en cours : il bloque les connexions qui
    publient (Memory used:… allowed:…)"; [] when none is set (or the last one was cleared, or the broker
    restarted since)."""
    return [_say_alarm(kind, f"depuis {since}", measure) for kind, (since, measure) in _active_alarms(log_text).items()]


def broker_alarms(answer: str, log_text: str = "") -> list[str]:
    """The resource alarms the broker itself reports in `answer` (`rabbitmq-diagnostics -q alarms --formatter
    json`: {"alarms": [{"resource": "memory", "node": …}, …]}), in French; the time it was set and RabbitMQ's
    measure added from its log `log_text` when the log still holds them. Raises ValueError on an answer that
    is not that JSON."""
    found = json.loads(answer)
    if not isinstance(found, dict) or not isinstance(found.get("alarms"), list):
        raise ValueError(f"réponse inattendue : {answer[:200]!r}")
    logged = _active_alarms(log_text)
    said = []
    for alarm in found["alarms"]:
        kind = str(alarm.get("resource")) if isinstance(alarm, dict) else str(alarm)
        since, measure = logged.get(kind, (None, None))
        said.append(_say_alarm(kind, f"depuis {since}" if since else "signalée par le broker", measure))
    return said


#: RabbitMQ's diagnostics CLI (Debian's rabbitmq-server package), the embedded cloud's broker's own.
DIAGNOSTICS = "/usr/lib/rabbitmq/bin/rabbitmq-diagnostics"


def ask_broker_alarms(root: Path, timeout: float = 60) -> str:
    """The embedded cloud at `root`'s RabbitMQ asked for its alarms (`rabbitmq-diagnostics -q alarms --formatter
    json`, with its service's environment: its node name, epmd port and the $HOME of its Erlang cookie; never the
    host's own broker): 1-3 s. Raises OSError, subprocess.SubprocessError or RuntimeError when it cannot be asked."""
    from popek.checks.localcloud import services
    from popek.checks.localcloud.state import CloudState

    svc = next(s for s in services.core_services(CloudState(root)) if s.name == "rabbitmq")
    done = subprocess.run([DIAGNOSTICS, "-q", "alarms", "--formatter", "json"], env={**os.environ, **svc.env},
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(DIAGNOSTICS).name} alarms : code {done.returncode} "
                           f"{(done.stderr or done.stdout).strip()[-200:]}")
    return done.stdout


def asked_bus_alarms(root: Path, ask=ask_broker_alarms) -> tuple[list[str], str]:
    """(alarms, source) of the embedded cloud at `root`'s RabbitMQ, for C31 (once per run): the broker asked
    (`ask`: however long ago its alarm was set, where the log's last 4 MiB can have lost it under the lines of
    retrying publishers); its log's tail only when the broker cannot be asked, and the source says so."""
    tail = _log_tail(root / "log" / "rabbitmq.log").decode(errors="replace")
    try:
        return broker_alarms(ask(root), tail), "rabbitmq-diagnostics alarms"
    except (OSError, subprocess.SubprocessError, RuntimeError, ValueError) as exc:
        return bus_alarms(tail), f"journal du broker (4 derniers Mio) seulement : broker non interrogé ({exc})"[:300]


def rabbit_alarms(root: Path) -> list[str]:
    """bus_alarms of the embedded cloud at `root` (its RabbitMQ's log, the last 4 MiB; parsed only when an alarm
    was logged there): ~10 ms, asked every few seconds by the waits (connection.embedded_trouble)."""
    tail = _log_tail(root / "log" / "rabbitmq.log")
    return bus_alarms(tail.decode(errors="replace")) if b"resource limit alarm" in tail else []


def _log_tail(path: Path, size: int = 4 << 20) -> bytes:
    """The last `size` bytes of the log at `path` (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read()
    except OSError:
        return b""


def _runs(pidfile: Path, program: str, mark: str) -> bool | None:
    """Whether the process a Neutron agent recorded in `pidfile` is still `program` started for `mark` (its
    uuid in the command line: a reused pid is not it); None when the file cannot be read."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return program in argv and mark in argv


def neutron_children(root: Path) -> list[str]:
    """The processes Neutron's agents run for each network and router of the embedded cloud at `root` that are
    gone while their pid file stays: a network's DHCP server (dnsmasq, data/neutron/dhcp/<network>/pid) or a
    metadata proxy (haproxy, data/neutron/external/pids/<network or router>.pid.haproxy), in French. The agent
    respawns them at its next check (check_child_processes_interval, 60 s by default): until then, no lease or
    no answer at 169.254.169.254 on that network, with every agent alive. Neutron removes these files with
    their network or router."""
    data, said = root / "data" / "neutron", []
    for pidfile in sorted((data / "dhcp").glob("*/pid")):
        if _runs(pidfile, "dnsmasq", pidfile.parent.name) is False:
            said.append(f"le serveur DHCP de Neutron (dnsmasq) du réseau {pidfile.parent.name} ne tourne plus (son "
                        "fichier pid reste, sans processus) : aucun bail sur ce réseau tant que l'agent DHCP ne le "
                        "relance pas")
    for pidfile in sorted((data / "external" / "pids").glob("*.pid.haproxy")):
        uuid = pidfile.name.split(".", 1)[0]
        if _runs(pidfile, "haproxy", uuid) is False:
            said.append(f"le proxy de metadata de Neutron (haproxy) de {uuid} (réseau ou routeur) ne tourne plus (son "
                        "fichier pid reste, sans processus) : 169.254.169.254 ne répond pas aux instances de ce réseau "
                        "tant que son agent ne le relance pas")
    return said


def stalled_services(root: Path) -> list[str]:
    """The embedded cloud's services (pid files under `root`/run) that are frozen (a process of theirs in
    the stopped state T: SIGSTOP) or dead (pid file left, its process gone), in French; [] when all run.
    A frozen ovs-vswitchd or RabbitMQ leaves no other trace an API can see in time. First, a resource alarm
    of its RabbitMQ (its log, bus_alarms): every process alive and greeting, every publisher blocked; and a
    database server that refuses writes (read_only_databases): it greets and reads, every write fails; and
    Keystone without its Fernet keys (keystone_keys): every token refused with an HTTP 500.
    Only what lies on an API's or a guest's path is evidence behind a request's failure: the services of
    OFF_PATH (fence-watch: `popek cloud status` names it) are not said. Neither are the DHCP servers and
    metadata proxies of Neutron's networks (neutron_children): they explain a guest without lease or
    metadata (connection.guest_trouble), never an API call or a boot."""
    from popek.checks.localcloud import services
    from popek.checks.localcloud.state import CloudState

    state, said = CloudState(root), rabbit_alarms(root) + read_only_databases(root) + keystone_keys(root / "etc")
    for pidfile in sorted((root / "run").glob("*.pid")):
        if pidfile.stem in off_path():
            continue
        pid = services.read_pid(state, pidfile.stem)
        if pid is None:
            said.append(f"{pidfile.stem} ne tourne plus (son fichier pid reste, sans processus)")
        elif stopped := services.stopped_members(pid):
            frozen = ", ".join(str(p) for p in stopped[:4])
            said.append(f"{pidfile.stem} est gelé (processus {frozen} à l'état T : arrêté par un signal)")
    return said


def off_path() -> frozenset[str]:
    """The embedded cloud's services on no API or guest path (their pid files under run/): fence-watch
    re-applies popek's nftables table when the host's firewall deletes it, and exits by design when nft is
    missing; no request waits on it."""
    from popek.checks.localcloud import fence_watch

    return frozenset({fence_watch.SERVICE})


def volume_backends(etc: Path) -> list[str]:
    """The volume drivers Cinder is configured with (an RBD driver means Ceph)."""
    conf = etc / "cinder" / "cinder.conf"
    return sorted({v for _, k, v in _options(conf) if k == "volume_driver"}) if conf.exists() else []


def site_packages(venv: Path) -> list[Path]:
    return sorted(venv.glob("lib/python3*/site-packages"))


def installed(venv: Path, names=COURSE_DISTRIBUTIONS) -> dict[str, dict]:
    """Distribution -> {"version", "installer"} for `names` in the venv at `venv` (installer from the
    INSTALLER file pip writes into each .dist-info), plus the total count under key "*"."""
    dists = list(metadata.distributions(path=[str(p) for p in site_packages(venv)]))
    out = {}
    for dist in dists:
        name = (dist.metadata["Name"] or "").lower()
        if name in names:
            out[name] = {"version": dist.version, "installer": (dist.read_text("INSTALLER") or "").strip() or None}
    out["*"] = {"distributions": len(dists)}
    return out
