"""`up`, `down`, `status`, `destroy` of the embedded cloud: the order of things, and the waits between them.

Install (apt.py, install.py) and the image builds (images/) run side by side; then configuration (data,
see config.py), the process table (services.py) stage by stage, the one-time setup steps (bootstrap.py)
in between, and the runtime waits (nova's services "up" before the next stage; after a mode switch, the
other mode's compute host forgotten).
The dataplane module (dataplane.py), when asked for, changes the configuration and adds processes through
the hooks documented in services.py; its guests are fenced off the host by fence.py.

`up` on a cloud that runs (any of its processes alive) repairs it in place: only the services found
dead, frozen or not answering are restarted, in stage order, and a failure stops nothing else. Only
`down` and `destroy` stop a cloud.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from popek.checks.localcloud import apt, bootstrap, config, fence, images, install, ports, services
from popek.checks.localcloud import dataplane as dataplane_hooks  # `dataplane` is up()'s flag
from popek.checks.localcloud.errors import CloudError
from popek.checks.secrets import REDACT
from popek.checks.localcloud.services import STAGES, Service
from popek.checks.localcloud.state import DATAPLANE_PORTS, HOST, PORTS, RABBIT_USER, RABBIT_VHOST, CloudState

API_ONLY = "API seulement (pilote fake)"


class Progress:
    """One line per long step: elapsed time since `up` began, the step, and its own duration. A `log`
    with `begin(label)`/`end(label)` methods (popek.progress.Steps) is also told when each step starts
    and ends, so that a terminal shows the step running (the venv takes minutes on a first `up`)."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.t0 = time.monotonic()

    @contextmanager
    def step(self, label: str):
        start = time.monotonic()
        getattr(self.log, "begin", lambda _label: None)(label)
        try:
            yield
        finally:
            getattr(self.log, "end", lambda _label: None)(label)
        self.log(f"[{time.monotonic() - self.t0:6.1f} s] {label} ({time.monotonic() - start:.1f} s)")


@contextmanager
def exclusive(state: CloudState, log: Callable[[str], None] = print):
    """Hold the cloud's lock: one `up`, `down` or `destroy` at a time (others wait their turn).

    The lock file sits beside the state directory, since `destroy` removes that directory.
    """
    import fcntl

    state.root.parent.mkdir(parents=True, exist_ok=True)
    with open(state.root.parent / "cloud.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("un autre `popek cloud` est en cours : attente de sa fin…")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def dataplane_module():
    """The dataplane's hook module (dataplane.py), for the callers that hold a mode's module or None."""
    return dataplane_hooks


def read_mode(state: CloudState) -> dict:
    try:
        return json.loads((state.run_dir / "mode.json").read_text())
    except (OSError, ValueError):
        return {}


def mode_label(mode: dict) -> str:
    if mode.get("dataplane"):
        return "plan de données réel (dataplane)"
    return f"{API_ONLY} — {mode.get('reason', 'pas de plan de données')}"


def table(state: CloudState, dataplane_mod) -> list[Service]:
    core = services.core_services(state)
    return services.with_extra(core, list(dataplane_mod.services(state))) if dataplane_mod else core


def _choose_mode(dataplane: bool):
    if not dataplane:
        return None, {"dataplane": False, "reason": "plan de données désactivé (--no-dataplane)"}
    return dataplane_hooks, {"dataplane": True, "reason": ""}


def running(state: CloudState, svc: list[Service]) -> bool:
    """True when every service of `svc` is alive and answers its health check."""
    return all(services.read_pid(state, s.name) is not None and services.healthy(s, 1.0) for s in svc)


def _build_images(state: CloudState, log):
    """The images of images/, built or taken from the cache (a cache hit costs nothing; a recipe that
    changed with popek's code is rebuilt once, and `resources` replaces the image in Glance)."""
    state.image_cache.mkdir(parents=True, exist_ok=True)
    return images.build_images(state.image_cache, log=lambda line: log(f"  images: {line}"))


def up(state: CloudState, dataplane: bool | None = True, log: Callable[[str], None] = print,
       force: bool = False) -> dict:
    """Bring the cloud up (install on first use); on a cloud that runs, repair it in place (`repair`).

    state: where the cloud lives; dataplane: use checks/localcloud/dataplane.py (None:
    the mode the cloud last ran in); log: receives one progress line per step; force: let a mode switch
    delete servers popek did not make (else refused, naming them). Returns the mode ({"dataplane": bool,
    "reason": str}). On a failure CloudError names the culprit and its log; every process this call
    started is stopped then, unless the cloud was running before: a running cloud is never stopped.
    """
    with exclusive(state, log):
        if dataplane is None:
            dataplane = read_mode(state).get("dataplane", True)
        return _up(state, dataplane, log, force)


def protect_logs(state: CloudState) -> None:
    """The log directory readable by its owner only, and no password left in a setup log: an install made
    by an older popek logged nova-manage's command line, MariaDB password included, in a 0644 file."""
    logs = state.root / "log"
    if not logs.is_dir():
        return
    logs.chmod(0o700)
    values = [v for v in state.passwords().values() if v] if state.secrets_file.exists() else []
    for path in logs.glob("setup-*.log"):
        text = path.read_text(errors="replace")
        if any(v in text for v in values):
            config.write_private(path, REDACT(text))
        path.chmod(0o600)


#: In the run directory while `up` starts the cloud, removed once every service answers: an `up` killed on the
#: way (SIGKILL, power loss) leaves it beside the services it started, and the next `up` resumes the start (it
#: starts only what does not run, with the start's waits, priorities and smoke instance) instead of repairing a
#: half-started cloud as a running one (measured, hT 2026-12-07: DHCP and routers ~85 s after « cloud réparé »,
#: the agents' first RPC lost; volume and object services left at nice 19).
STARTING = "starting"


#: Services of an older popek that this one no longer has: the fork servers of the privsep daemons
#: (privsep_fork.py, removed when the agents and nova-compute began running their privsep contexts in-process).
RETIRED = ("privsep-fork-neutron", "privsep-fork-nova")
#: What the older popek wrote in neutron.conf / nova.conf (helper_command): a file that no longer exists.
RETIRED_HELPER = "privsep_fork.py"


def left_by_older_popek(state: CloudState, running: bool) -> str:
    """Why a cloud an older popek started cannot be repaired in place (one French line), else "". Its agents
    and nova-compute ask its fork servers (privsep_fork.py) for every new privsep daemon, and their helper_command
    execs that file once those are gone: a repair, which neither regenerates the configuration nor knows those
    servers, would leave every new router, DHCP namespace or instance port failing. `running`: a service of
    the table runs (the configuration on disk is then the one it read)."""
    alive = [n for n in RETIRED if services.read_pid(state, n) is not None]
    confs = []
    if running:
        for name in ("neutron/neutron.conf", "nova/nova.conf"):
            try:
                if RETIRED_HELPER in (state.etc() / name).read_text(errors="replace"):
                    confs.append(name.split("/")[1])
            except OSError:
                continue
    if not alive and not confs:
        return ""
    seen = ([f"{', '.join(alive)} en marche"] if alive else []) + \
        ([f"{' et '.join(confs)} demandent {RETIRED_HELPER}"] if confs else [])
    return (f"ce cloud a été démarré par une version précédente de popek ({' ; '.join(seen)}) : ses agents "
            f"Neutron et nova-compute obtiennent leurs privilèges par {RETIRED_HELPER}, qui n'existe plus (un "
            "nouveau routeur, réseau ou port d'instance échouerait) ; une réparation sur place ne suffit pas : "
            "redémarrez-le (`popek cloud down` puis `popek cloud up`)")


def _up(state: CloudState, dataplane: bool, log: Callable[[str], None], force: bool = False) -> dict:
    mod, mode = _choose_mode(dataplane)
    protect_logs(state)
    current = read_mode(state)
    was_running = False
    starting = state.run_dir / STARTING
    if current and state.venv.exists():
        current_mod = dataplane_hooks if current.get("dataplane") else None
        svc = table(state, current_mod)
        was_running = any(services.read_pid(state, s.name) is not None for s in svc)
        older = left_by_older_popek(state, was_running)
        if older:
            raise CloudError(older)
        if was_running and current.get("dataplane") != mode["dataplane"]:
            raise CloudError(f"le cloud tourne déjà ({mode_label(current)}) ; `popek cloud down` d'abord "
                             "pour changer de mode")
        if was_running and starting.exists():
            log("un `popek cloud up` précédent s'est arrêté en plein démarrage : on le reprend")
        elif was_running and state.marker("compute-mode").exists():
            repair(state, current_mod, svc, log, label=mode_label(current))
            if current_mod is not None:  # OVS ports whose Neutron port is gone (agents run: read twice)
                current_mod.clean_stale_ports(state, log)
                current_mod.install_conntrack_shim(state)
                current_mod.write_qemu_hook(state)  # the running libvirtd runs the file anew for each guest
                settle_smoke(state, current_mod, log)
            _fence_up(state, current_mod, log)
            return current
    # each service's port: its recorded (or standard) one, else a free one, recorded before anything binds it
    moves = settle_ports(state, mod, log)
    if was_running:  # a start resumed: a process still running on the old map starts again on the new one
        stop_readers(state, mod, {key for key, *_ in moves} | ports_unwritten(state), log)
    # every port of the services about to start, checked before anything is installed or started (hG)
    services.check_ports_free([s for s in table(state, mod) if services.read_pid(state, s.name) is None])
    progress = Progress(log)
    state.mkdirs()
    starting.write_text("")
    with progress.step("paquets Debian (rabbitmq-server, mariadb-server)"):
        installed = apt.install(install.APT_PACKAGES, log=lambda line: log(f"  {line}"))
    if installed:
        log(f"  installés : {' '.join(installed)}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        image_job = pool.submit(_build_images, state, log)
        try:
            with progress.step("environnement Python des services (venv)"):
                install.ensure_venv(state.venv, state.log("pip"), state.wheelhouse, uv=install.bundled_uv())
            looked: dict = {}  # the smoke instance's lookups, made while nova-compute starts

            def meanwhile() -> None:
                bootstrap.resources(state, image_job.result())
                if mode["dataplane"]:
                    looked.update(mod.smoke_lookup(state))
            _start_all(state, mod, mode, progress, log, force, meanwhile=meanwhile,
                       smoke=(lambda: mod.smoke(state, looked=looked)) if mode["dataplane"] else None)
        except BaseException as exc:
            image_job.cancel()
            if was_running:  # someone's running cloud, only partly started: left as it is
                log("échec : le cloud tournait déjà, il est laissé tel quel (seul `popek cloud down` l'arrête)")
            else:
                stop_all(state, log, settle=False)
            from openstack import exceptions as sdk_exc

            if isinstance(exc, sdk_exc.SDKException):  # an API call of the setup failed: say which, no trace
                raise CloudError(f"appel d'API en échec pendant la mise en place : {exc} ; journaux dans "
                                 f"{state.root / 'log'}") from None
            raise
    starting.unlink(missing_ok=True)
    log(f"[{time.monotonic() - progress.t0:6.1f} s] cloud prêt : {mode_label(mode)}")
    return mode


def _start_all(state: CloudState, mod, mode: dict, progress: Progress, log, force: bool = False,
               meanwhile: Callable[[], None] | None = None, smoke: Callable[[], None] | None = None) -> None:
    """Configuration, then the process table stage by stage, with the one-time setup steps in between.
    `meanwhile` (the course's resources: they need the APIs, not nova-compute) runs in a thread while
    nova-compute starts and reports "up"; its exception, if any, is raised here. `smoke` (the dataplane's
    guest) runs last, while the BACKGROUND services finish starting; every service answers at the end."""
    with progress.step("configuration"):
        cfg = write_config(state, mod)
        bootstrap.once(state, "init-mariadb", bootstrap.init_mariadb, state)
        bootstrap.init_rabbitmq(state)
        bootstrap.write_client_config(state)
        (state.run_dir / "mode.json").write_text(json.dumps(mode))
    if mod is not None:
        with progress.step("plan de données : préparation"):
            mod.prepare(state, log=lambda line: log(f"  {line}"))
        _fence_up(state, mod, log)
    svc = table(state, mod)
    nova = cfg["nova/nova.conf"]["DEFAULT"]
    deferred: list[Service] = []  # stage 2's services that nova-compute does not need, still starting
    background = [s for s in svc if s.stage == 2 and s.name in BACKGROUND]  # started low, awaited last
    bus = [s for s in svc if s.name == "rabbitmq"]  # booting while stage 1 starts, awaited there
    started_nice = os.getpriority(os.PRIO_PROCESS, 0)  # what a service started here inherits
    switching = state.marker("compute-mode").exists() and \
        state.marker("compute-mode").read_text().strip() != _compute_mode(mode)
    # nova-compute starts with stage 2 (its conductor's queue declared beforehand: EARLY_QUEUES), except on
    # a mode switch, where the other mode's compute host is forgotten first (stage 3, _before_compute)
    early = [] if switching else [s for s in svc if s.stage == 3]
    try:
        for stage in STAGES:
            group = [s for s in svc if s.stage == stage and s not in early]
            if stage == 2:
                since = utcnow()
            if stage == 3 and early:  # nova-compute already started with stage 2
                if deferred:
                    with progress.step("démarrage (fin) : les services dont nova-compute n'a pas besoin répondent"):
                        services.wait_healthy(state, deferred)
                continue
            if stage == 3:
                if switching:
                    services.wait_healthy(state, deferred + background)  # a mode switch asks every API first
                since = _before_compute(state, mode, nova, progress, since, force)
            with progress.step(f"démarrage : {', '.join(s.name for s in group + (early if stage == 2 else []))}"):
                if stage == 1 and bus:  # those that do not use the bus first; the others once it answers
                    group = sorted(group, key=lambda s: s.name not in BUS_FREE)
                for s in group:
                    if stage == 1 and bus and s.name not in BUS_FREE:
                        services.wait_healthy(state, bus)
                        bus = []
                    if services.read_pid(state, s.name) is None:
                        _check_port_free(s)
                        pid = services.start(state, s)
                        if s in background:
                            _set_nice(pid, BACKGROUND_NICE)
                if stage == 0:
                    services.wait_healthy(state, [s for s in group if s not in bus])
                elif stage == 2:  # nova-compute starts as soon as what it needs answers; the rest is awaited below
                    deferred = [s for s in group if s not in background]
                    if early and nova.get("compute_driver") == config.FAKE_COMPUTE_DRIVER:
                        bootstrap.fake_compute_identity(state, nova["host"])
                    for s in early:
                        if services.read_pid(state, s.name) is None:
                            _check_port_free(s)
                            services.start(state, s)
                else:
                    services.wait_healthy(state, group + bus)
            if stage == 3 and deferred:
                with progress.step("démarrage (fin) : les services dont nova-compute n'a pas besoin répondent"):
                    services.wait_healthy(state, deferred)
            if stage == 0:
                with progress.step("bases de données (schémas, une seule fois)"):
                    bootstrap.databases(state)
                if mod is not None:  # before the agents start: OVS ports whose Neutron port is gone
                    mod.clean_stale_ports(state, log=lambda line: log(f"  {line}"))
            elif stage == 1:
                rpc = [s.name for s in group if s.name == "neutron-rpc-server"]  # before its agents start (stage 2)
                if rpc or early:  # one helper process for both
                    label = " ; ".join((["neutron-rpc-server à l'écoute"] if rpc else [])
                                       + (["files de nova-conductor et nova-scheduler déclarées"] if early else []))
                    with progress.step(f"RabbitMQ : {label}"):
                        wait_consumers(state, {q: (rpc[0], _alive(state, rpc[0])) for q in NEUTRON_RPC_QUEUES}
                                       if rpc else {}, declare=EARLY_QUEUES if early else None)
                with progress.step("identité : utilisateurs, projets, rôles, catalogue"):
                    bootstrap.once(state, "identity", bootstrap.identity, state)
                    bootstrap.once(state, bootstrap.catalog_step(state),  # a port moved: the catalog follows
                                   lambda: bootstrap.repoint_catalog(state, log=lambda line: log(f"  {line}")))
                    bootstrap.once(state, f"password-hash-rounds-{config.KEYSTONE_HASH_ROUNDS}",
                                   bootstrap.rehash_passwords, state)
        with ThreadPoolExecutor(max_workers=1) as pool:
            side = pool.submit(_timed, meanwhile) if meanwhile is not None else None
            with progress.step("nova-compute « up » et découverte de l'hôte"
                               + (" ; en même temps : images, ressources du cours" if side else "")):
                wait_compute(state, _alive(state, "nova-compute"), since,
                             watch={b: _alive(state, b) for b in ("nova-conductor", "nova-scheduler")} if early else None)
            if side is not None:
                with progress.step("images (construction ou cache) et ressources du cours (gabarits, images, "
                                   "réseaux, groupes de sécurité) : fin"):
                    took = side.result()
                log(f"  images et ressources du cours : {took:.1f} s, pendant le démarrage de nova-compute")
        state.marker("compute-mode").write_text(_compute_mode(mode) + "\n")
        if smoke is not None:   # the BACKGROUND services still at the lowest priority: they wait for it
            with progress.step("plan de données : une instance d'essai obtient son adresse et ses metadata"):
                smoke()
    finally:  # their normal priority back once the smoke instance is done; also when a stage failed:
        for s in background:  # a cloud left as it is must not keep them at the lowest priority
            _set_nice(services.read_pid(state, s.name), started_nice, autogroup=0)
    if background:
        with progress.step(f"démarrage (fin) : {', '.join(s.name for s in background)} répondent"):
            services.wait_healthy(state, background)
    services.wait_healthy(state, svc, timeout=5)  # none died while the others started


#: Stage 1's services that do not use the message bus: they start once stage 0's others answer, while
#: RabbitMQ still boots (~8 s, about one core busy of the two: measured; the others wait for it).
#: nova-compute needs nothing of stage 2 answering when it starts (its privsep contexts run in-process), besides
#: nova-conductor's queue (declared ahead, EARLY_QUEUES) and stages 0-1 (Placement among them: its first
#: resource update, missed, comes again a minute later): it starts with the others of stage 2.
BUS_FREE = ("keystone", "placement-api")
#: Stage 2's services that neither nova-compute, the course's resources nor the smoke instance use (volumes,
#: objects): they start with stage 2 at the lowest CPU priority, so that the 17 sessions starting at once do
#: not share the two cores equally with them (the `up` is CPU-bound from stage 1 to its end: measured); they
#: run in the gaps (nova-compute's waits), get their normal priority back once the smoke instance has its
#: lease and metadata (measured, warm up: that step 14.1 -> 11.7 s, medians of 3), and are awaited last.
BACKGROUND = ("cinder-api", "cinder-scheduler", "cinder-volume",
              "swift-account", "swift-container", "swift-object", "swift-proxy")
BACKGROUND_NICE = 19
#: The RPC topic queues declared as soon as RabbitMQ answers ({exchange: [topic]}), as their servers declare
#: them (rpcready.py): nova-compute then starts with stage 2, beside nova-conductor and nova-scheduler, and its
#: first calls (the conductor ping of nova.service, the service record) wait in the conductor's queue until it
#: consumes instead of being dropped (a dropped ping costs a 10 s RPC timeout). Before, nova-compute started
#: only once both consumed, ~13 s after stage 2 began; then ~4 s after, once the (since removed) fork server of
#: nova's privsep daemons answered (measured, warm up: nova-compute "up" 3-4 s sooner); now with stage 2. What nova-compute sends the scheduler at start (fanout instance
#: info) is read again by the scheduler from the database at its own start.
EARLY_QUEUES = {"nova": ["conductor", "scheduler"]}
#: The queues of neutron-rpc-server that the agents call first (neutron_lib.agent.topics). An agent started
#: before the server consumes loses its first call and waits out a 60 s RPC timeout: measured, the DHCP
#: agent's first network sync, and the smoke instance then without a lease for 100 s. (Before BUS_FREE,
#: keystone's own start gave the server those seconds by chance.)
NEUTRON_RPC_QUEUES = ("q-plugin", "q-reports-plugin", "q-l3-plugin", "q-server-resource-versions")


def write_config(state: CloudState, mod, shipped: bool = True) -> dict:
    """Every service's configuration on the port map of the state (and the dataplane's overrides); returns it.
    shipped: the files copied from the wheels too (config.copy_shipped: none depends on a port)."""
    cfg = config.generate(state)
    if mod is not None:
        cfg = config.merge(cfg, mod.config_overrides(state))
    config.write(state, cfg)
    if shipped:
        config.copy_shipped(state)
    config_ports(state).parent.mkdir(parents=True, exist_ok=True)
    config_ports(state).write_text(json.dumps(state.ports))
    return cfg


def config_ports(state: CloudState) -> Path:
    """The port map the configuration was last written with (write_config): a repair compares it with the map."""
    return state.run_dir / "config-ports.json"


def ports_unwritten(state: CloudState) -> set[str]:
    """The keys of the map whose port the configuration does not name yet (a move recorded, then the `up` or
    repair interrupted before the configuration was written; ports.json edited by hand); none when unknown."""
    try:
        written = json.loads(config_ports(state).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(written, dict):
        return set()
    return {key for key, port in state.ports.items() if written.get(key, port) != port}


def _set_nice(pid: int | None, nice: int, autogroup: int | None = None) -> None:
    """The CPU priority (nice) of the session `pid` leads: its scheduler autogroup's (with autogroups on, as
    on Debian, each session started here is one group and the groups share the CPU equally whatever their
    threads' nice), `autogroup` if given, else `nice`; and every thread of its processes (nice is per thread:
    a thread keeps the value it was created with). Only with CAP_SYS_NICE, which raising a priority back
    needs: without it nothing is changed, so that no service stays low."""
    if pid is None or not _may_raise_priority():
        return
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice if autogroup is None else autogroup}\n")
    except OSError:  # no autogroups (kernel without them), or the process is gone
        pass
    for member in services.session_members(pid):
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
            except (OSError, ValueError):  # gone meanwhile
                continue


def _may_raise_priority(status: str | None = None) -> bool:
    """CAP_SYS_NICE (bit 23) in this process's effective capabilities (`status`: /proc/self/status's text):
    root is not enough in a container or a user namespace without it."""
    if status is None:
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 23 & 1)
    return False


def _timed(fn: Callable[[], None]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def _compute_mode(mode: dict) -> str:
    return "dataplane" if mode["dataplane"] else "fake"


def _before_compute(state: CloudState, mode: dict, nova: dict, progress: Progress, since, force: bool = False):
    """What nova-compute needs before it starts: conductor and scheduler consuming their queues, a clean
    compute host after a mode switch (the marker says which mode compute last came up in), the fake
    driver's identity file. Returns the time from which its heartbeat counts.

    The mode switch asks nova's API about services (forget_compute): there, conductor and scheduler must
    also be "up" (a heartbeat, 5 s after they consume); a plain start needs only their queues."""
    with progress.step("nova-conductor et nova-scheduler à l'écoute (files RabbitMQ)"):
        wait_consumers(state, {b.removeprefix("nova-"): (b, _alive(state, b))
                               for b in ("nova-conductor", "nova-scheduler")})
    last = state.marker("compute-mode")
    if last.exists() and last.read_text().strip() != _compute_mode(mode):
        foreign = servers_not_made_by_popek(state)
        if foreign and not force:
            raise CloudError(
                f"changement de mode ({last.read_text().strip()} -> {_compute_mode(mode)}) refusé : il supprimerait "
                f"{len(foreign)} instance(s) que popek n'a pas créées : {', '.join(foreign)} ; relancez avec "
                "--force pour les supprimer, ou `popek cloud up` dans l'autre mode pour les garder")
        with progress.step("changement de mode : anciennes instances et hôte de calcul oubliés"):
            wait_nova(state, {b: _alive(state, b) for b in ("nova-conductor", "nova-scheduler")}, since)
            forget_compute(state)
    if nova.get("compute_driver") == config.FAKE_COMPUTE_DRIVER:
        bootstrap.fake_compute_identity(state, nova["host"])
    return utcnow()


# --- runtime waits: nova's services up, the other mode's compute host forgotten --------------------

def utcnow():
    """Naive UTC now, as nova stores its heartbeats."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def forget_compute(state: CloudState) -> None:
    """Forget the compute host (and the private network) of the other mode (fake ↔ libvirt) before
    nova-compute starts again.

    nova-compute refuses a compute node whose hypervisor name changed ("possible rename"), and the fake
    servers of the API-only mode mean nothing to libvirt (nor libvirt's to the fake driver): delete every
    server, then the nova-compute service records (nova drops their nodes and resource providers).
    """
    conn = bootstrap.connect(state)
    computes = list(conn.compute.services(binary="nova-compute"))
    # nova-compute is stopped: marked forced-down, its servers are deleted by the API itself at once
    # (otherwise the deletion waits for a compute that will never answer).
    for svc in computes:
        conn.compute.update_service_forced_down(svc, forced=True)
    for server in list(conn.compute.servers(all_projects=True)):
        conn.compute.delete_server(server, force=True)
    for server in list(conn.compute.servers(all_projects=True)):
        conn.compute.wait_for_delete(server, wait=60)
    for svc in computes:
        conn.compute.delete_service(svc)
    _undefine_nova_domains(state)
    (state.data("nova") / "compute_id").unlink(missing_ok=True)
    state.marker("discover-hosts").unlink(missing_ok=True)
    # The member's private network was made with the other mode's project network type (vxlan for the
    # API-only cloud, which a dataplane without tunnels cannot bind): `resources` makes it again.
    member = bootstrap.connect(state, "popek")
    net = member.network
    router = net.find_router("router", project_id=member.current_project_id)
    private = net.find_network("private", project_id=member.current_project_id)
    if router is not None:
        for port in net.ports(device_id=router.id, device_owner="network:router_interface"):
            net.remove_interface_from_router(router, port_id=port.id)
        net.delete_router(router)
    if private is not None:
        for port in net.ports(network_id=private.id):
            net.delete_port(port)
        net.delete_network(private)


def _undefine_nova_domains(state: CloudState) -> None:
    """Remove the libvirt domains nova defined (`instance-*`) when popek's libvirtd runs: a nova-compute
    that finds domains but no service record of its own refuses to start ("existing instances"). Only
    popek's own libvirtd is asked (dataplane.libvirt_uri): a host's libvirt and its guests are not popek's."""
    if shutil.which("virsh") is None or not dataplane_hooks.libvirt_socket(state).exists():
        return
    virsh = ["virsh", "-c", dataplane_hooks.libvirt_uri(state)]
    names = subprocess.run([*virsh, "list", "--all", "--name"], capture_output=True, text=True, timeout=30)
    for name in names.stdout.split() if names.returncode == 0 else []:
        if name.startswith("instance-"):
            subprocess.run([*virsh, "destroy", name], capture_output=True, timeout=30)
            subprocess.run([*virsh, "undefine", "--nvram", name], capture_output=True, timeout=30)


def wait_nova(state: CloudState, binaries: dict, since, timeout: float = 120.0, watch: dict | None = None) -> None:
    """Wait until each nova service of `binaries` reports `up` with a heartbeat newer than `since`.

    binaries: {binary: alive} where alive() tells whether its process still runs (a stale `up` from
    before a restart must not count, nor a process that died after its first heartbeat); since: naive
    UTC datetime. Why wait for conductor and scheduler before nova-compute starts: a message sent to a
    topic before its consumer's queue exists is dropped, and the caller then waits out the 60 s RPC timeout.
    watch: {binary: alive} of services the wait also needs (nova-compute's conductor): one that dies raises.
    """
    since = since - timedelta(seconds=2)
    conn = bootstrap.connect(state)
    deadline = time.monotonic() + timeout
    pending = dict(binaries)
    last_error = ""
    while pending:
        for binary, alive in (watch or {}).items():
            if not alive():
                raise CloudError(f"le service {binary} s'est arrêté au démarrage ; voir {state.log(binary)}")
        for binary, alive in list(pending.items()):
            log = state.log(binary)
            if not alive():
                raise CloudError(f"le service {binary} s'est arrêté au démarrage ; voir {log}")
            try:
                fresh = [s for s in conn.compute.services(binary=binary)
                         if s.state == "up" and s.updated_at and datetime.fromisoformat(s.updated_at[:19]) >= since]
            except Exception as exc:  # noqa: BLE001 - APIs still warming up; the deadline decides
                # a connection whose first discovery failed keeps failing: the next try starts afresh
                last_error = f" ; dernière erreur de l'API : {type(exc).__name__}: {str(exc)[:200]}"
                conn = bootstrap.connect(state)
                fresh = []
            if fresh:
                del pending[binary]
        if pending and time.monotonic() > deadline:
            binary = next(iter(pending))
            raise CloudError(f"{binary} n'est pas « up » après {timeout:.0f} s ; voir {state.log(binary)}{last_error}")
        if pending:
            time.sleep(0.5)


#: The helper that polls RabbitMQ for consumers, run by the cloud venv's Python (py-amqp is there).
RPCREADY_SCRIPT = Path(__file__).with_name("rpcready.py")


def wait_consumers(state: CloudState, queues: dict, timeout: float = 120.0, declare: dict | None = None) -> None:
    """Wait until each RPC topic queue of `queues` ({queue: (binary, alive)}) has a consumer on the
    cloud's RabbitMQ (rpcready.py, in the cloud venv; the password goes through its stdin). A process
    that dies meanwhile, or a queue still without a consumer after `timeout` s, raises CloudError naming
    the service and its log. `declare` ({exchange: [topic, ...]}): topic queues declared first, as their
    server will declare them (EARLY_QUEUES); one that cannot be raises CloudError."""
    request = {"host": HOST, "port": state.ports["rabbitmq"], "user": RABBIT_USER, "vhost": RABBIT_VHOST,
               "password": state.passwords()["rabbitmq"], "queues": list(queues), "timeout": timeout,
               "declare": declare or {}}
    proc = subprocess.Popen([state.python, "-I", str(RPCREADY_SCRIPT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdin.write(json.dumps(request))
        proc.stdin.close()
        while proc.poll() is None:
            for binary, alive in queues.values():
                if not alive():
                    raise CloudError(f"le service {binary} s'est arrêté au démarrage ; voir {state.log(binary)}")
            time.sleep(0.1)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        answer = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CloudError(f"attente des files RabbitMQ impossible : {REDACT(out.strip()[-300:]) or 'aucune réponse'}") from None
    error = f" ; dernière erreur : {REDACT(answer['error'])}" if answer.get("error") else ""
    missing = [t for topics in (declare or {}).values() for t in topics if t not in answer.get("declared", [])]
    if missing:
        raise CloudError(f"files RabbitMQ {', '.join(missing)} non déclarées avant le démarrage de leurs serveurs{error}")
    if answer["pending"]:
        binary = queues[answer["pending"][0]][0]
        raise CloudError(f"{binary} n'écoute pas sa file RabbitMQ « {answer['pending'][0]} » après {timeout:.0f} s ; "
                         f"voir {state.log(binary)}{error}")


def wait_compute(state: CloudState, alive, since, timeout: float = 120.0, watch: dict | None = None) -> None:
    """Wait for nova-compute (see wait_nova; `watch`: the services it needs alive meanwhile) and its resource
    provider, then map its host into cell1 (discover_hosts, once)."""
    wait_nova(state, {"nova-compute": alive}, since, timeout, watch=watch)
    conn = bootstrap.connect(state)
    deadline = time.monotonic() + timeout
    while not list(conn.placement.resource_providers()):
        if time.monotonic() > deadline:
            raise CloudError(f"nova-compute n'a pas de fournisseur de ressources (placement) ; voir "
                             f"{state.log('nova-compute')}")
        time.sleep(0.5)
    bootstrap.once(state, "discover-hosts", bootstrap.run, state,
                   [state.bin("nova-manage"), "--config-file", str(state.etc("nova") / "nova.conf"), "cell_v2",
                    "discover_hosts"], "nova")


def servers_not_made_by_popek(state: CloudState) -> list[str]:
    """Servers of every project whose name is not popek's (`popek-…`): "name (id, projet …)"."""
    conn = bootstrap.connect(state)
    return [f"{s.name} ({s.id}, projet {s.project_id})" for s in conn.compute.servers(all_projects=True)
            if not (s.name or "").startswith("popek-")]


def _fence_taps(state: CloudState, mod) -> tuple[str, ...]:
    """The guests' taps that exist now (the QEMU hook adds those of guests started later)."""
    return mod.fence_taps(state) if hasattr(mod, "fence_taps") else ()


def _fence_up(state: CloudState, mod, log) -> None:
    """The guests' fence (fence.py) around the dataplane's interfaces and its guests' taps; one line says it is in place."""
    if mod is None:
        return
    try:
        log(fence.apply(mod.fence_interfaces(), taps=_fence_taps(state, mod)))
    except fence.FenceError as exc:
        raise CloudError(str(exc)) from None


def refence(state: CloudState, root: bool) -> str | None:
    """The guests' fence of a running dataplane cloud, checked before a run uses it (`popek run`, also with
    --no-cloud-up): the owner's `flush ruleset` (e.g. nftables.service reloading /etc/nftables.conf) takes
    it away and nothing else puts it back. Gone and root: put back (only popek's table, one transaction);
    gone or unreadable without root: the status line, so a run never uses unfenced guests silently.
    In place but its watcher (fence_watch.py) not running: said too (the next `flush ruleset` would not be followed).
    Returns the French line to show, or None (not a dataplane cloud, or the fence is in place and watched)."""
    if not read_mode(state).get("dataplane"):
        return None
    if not any(services.read_pid(state, p.stem) for p in state.run_dir.glob("*.pid")):
        return None     # stopped (`down` removed the fence): nothing to fence
    seen = fence.reading()
    if seen == fence.PRESENT:
        unwatched = dataplane_hooks.watch_note(
            [] if services.read_pid(state, dataplane_hooks.fence_watch.SERVICE) else [dataplane_hooks.fence_watch.SERVICE])
        return f"clôture des instances en place, {unwatched}" if unwatched else None
    if seen == fence.ABSENT and root:
        try:
            return "clôture des instances retirée par le pare-feu de la machine : remise — " + \
                fence.apply(dataplane_hooks.fence_interfaces(), taps=_fence_taps(state, dataplane_hooks))
        except fence.FenceError as exc:
            return str(exc)
    return fence.status(seen)


#: How long a restarted service has to answer its health check during a repair.
REPAIR_TIMEOUT = 60.0
NOVA_RPC = ("nova-conductor", "nova-scheduler", "nova-compute")


def diagnose(state: CloudState, svc: list[Service], probes: int = 3, timeout: float = 5.0) -> dict[str, str]:
    """The services of `svc` that need a restart, with why (French): not running, frozen (a process of
    its session is stopped, e.g. SIGSTOP: its listening socket still accepts, so only its state tells),
    or not answering its health check `probes` times in a row, `timeout` s each (a one-worker API busy
    with a long request answers late, not never: it must not be killed under a client's feet)."""
    sick = {}
    for s in svc:
        pid = services.read_pid(state, s.name)
        if pid is None:
            sick[s.name] = "arrêté"
        elif services.stopped_members(pid):
            sick[s.name] = "figé (processus stoppé)"
        elif not _answers(s, probes, timeout):
            sick[s.name] = f"ne répond pas ({s.health})"
    return sick


def _answers(svc: Service, probes: int, timeout: float) -> bool:
    for i in range(probes):
        if services.healthy(svc, timeout):
            return True
        if i < probes - 1:
            time.sleep(1.0)
    return False


def repair(state: CloudState, mod, svc: list[Service], log, label: str = "") -> list[str]:
    """Restart the services of a running cloud that `diagnose` finds sick, and only those: a frozen or
    hung one is killed first (its whole session), then each is started again in stage order and must
    answer its health check (nova's RPC services: report "up") before the next stage. Every other process,
    and every guest, is left as it was. Returns the names restarted.

    Raises CloudError naming the service that did not come back, with its log's last lines; that
    service alone is stopped again (it is the one half-started), nothing else."""
    sick = diagnose(state, svc)
    if not sick:
        log(f"le cloud tourne déjà ({label}) : rien à faire")
        return []
    t0 = time.monotonic()
    log("cloud dégradé : " + ", ".join(f"{n} {why}" for n, why in sick.items())
        + " ; réparation sur place (les autres processus et les instances ne sont pas touchés)")
    services.kill_now(state, [n for n in sick if services.read_pid(state, n) is not None])
    moved = _repair_ports(state, mod, svc, sick, log)
    if moved:  # the table on the new map: a health check, an argv (epmd's -port) at the old port would reach the squatter
        svc = table(state, mod)
    # neutron-rpc-server's topic queues, once it or the broker restarts, have no consumer (or do not exist: a
    # broker restarts without its transient queues) until the server consumes again: its agents started before
    # lose their first call and wait out a 60 s RPC timeout (measured: the DHCP and L3 agents' first sync
    # ~88 s after « cloud réparé »). As on a start, the next stage waits for the server's consumers.
    rpc = next((s for s in svc if s.name == "neutron-rpc-server"), None)
    rpc_wait = rpc is not None and bool({"rabbitmq", rpc.name} & set(sick))
    for stage in STAGES:
        group = [s for s in svc if s.stage == stage and s.name in sick]
        if rpc_wait and stage > rpc.stage and group:
            _repair_rpc_wait(state, rpc, t0, log)
            rpc_wait = False
        if not group:
            if moved and stage == 1:
                bootstrap.once(state, bootstrap.catalog_step(state),
                               lambda: bootstrap.repoint_catalog(state, log=lambda line: log(f"  {line}")))
            continue
        # A nova heartbeat counts from the second after the restart (nova stores whole seconds and
        # wait_nova allows 2 s of slack for it): the killed process's last one must not pass for the new one's.
        since = utcnow().replace(microsecond=0) + timedelta(seconds=3)
        for s in group:
            _check_port_free(s)
            services.start(state, s)
        try:
            services.wait_healthy(state, group, timeout=REPAIR_TIMEOUT)
            nova = {s.name: _alive(state, s.name) for s in group if s.name in NOVA_RPC}
            if nova:
                wait_nova(state, nova, since, timeout=REPAIR_TIMEOUT)
        except CloudError as exc:
            bad = [s for s in group if services.read_pid(state, s.name) is None or not services.healthy(s, 1.0)]
            bad = bad or group
            services.stop(state, [s.name for s in bad], grace=5)
            raise CloudError(f"réparation impossible : {', '.join(s.name for s in bad)} ne redémarre pas ({exc}) ; "
                             "les autres services tournent toujours.\n"
                             + "\n".join(f"--- dernières lignes de {s.log} :\n{services.log_tail(s.log)}" for s in bad)) from None
        log(f"[{time.monotonic() - t0:6.1f} s] redémarré(s) : {', '.join(s.name for s in group)}")
        if moved and stage == 1:  # keystone answers (running, or just restarted): before its readers start
            bootstrap.once(state, bootstrap.catalog_step(state),
                           lambda: bootstrap.repoint_catalog(state, log=lambda line: log(f"  {line}")))
        if any(s.name == "rabbitmq" for s in group):
            _repair_declare(state, t0, log)
    if rpc_wait:  # no stage after the server's
        _repair_rpc_wait(state, rpc, t0, log)
    log(f"[{time.monotonic() - t0:6.1f} s] cloud réparé : {', '.join(sick)} ; {label}")
    return list(sick)


def stop_readers(state: CloudState, mod, moved: set[str], log) -> list[str]:
    """Stop the running processes that read a port of `moved` (ports.readers), said in one French line: a start
    resumed (`up` interrupted, then `up` again) starts them again on the new map. Returns their names."""
    if not moved:
        return []
    again = [n for n in ports.readers(moved, [s.name for s in table(state, mod)])
             if services.read_pid(state, n) is not None]
    if again:
        log(f"ports déplacés : redémarrage de {', '.join(again)}, qui les lisent (configuration ou catalogue)")
        services.stop(state, again, grace=10)
    return again


def _repair_ports(state: CloudState, mod, svc: list[Service], sick: dict[str, str], log) -> set[str]:
    """During a repair, once the sick services are stopped: a port of theirs that someone else took meanwhile
    moves, as at `up` (settle_ports: said in French, the map written first); then the configuration, the
    swift rings and the client side (clouds.yaml, openrc) are written on the new map, and every running
    process that reads a moved port (ports.readers) is stopped and joins `sick` (started again by the
    repair, in stage order; the catalog is re-pointed once keystone answers). Without this, the restart
    failed on the squatted port, and a process that kept the old one would have sent its token there.
    A port the map holds but the configuration does not (ports_unwritten) counts as moved too.
    Returns the keys moved."""
    moved = {key for key, *_ in settle_ports(state, mod, log)} | ports_unwritten(state)
    if not moved:
        return moved
    names = [s.name for s in svc]
    again = [n for n in ports.readers(moved, names) if n not in sick]
    write_config(state, mod, shipped=False)
    bootstrap.write_client_config(state)
    if bootstrap.swift_rings_moved(state):
        bootstrap.swift_rings(state)
        state.marker("swift-rings").write_text(bootstrap.swift_ring_ports(state) + "\n")
    if again:
        log(f"ports déplacés : redémarrage de {', '.join(again)}, qui les lisent (configuration ou catalogue)")
        services.stop(state, [n for n in again if services.read_pid(state, n) is not None], grace=10)
        sick.update({n: "lit un port déplacé" for n in again})
    order = {n: i for i, n in enumerate(names)}
    sick_sorted = dict(sorted(sick.items(), key=lambda kv: order.get(kv[0], len(order))))
    sick.clear()
    sick.update(sick_sorted)
    return moved


#: The topic queues a repair that restarted RabbitMQ declares at once: its running RPC servers' (Nova's
#: conductor and scheduler, neutron-rpc-server's), lost with the broker's transient queues.
REPAIR_QUEUES = {**EARLY_QUEUES, "neutron": list(NEUTRON_RPC_QUEUES)}


def _repair_declare(state: CloudState, t0: float, log) -> None:
    """During a repair, once a restarted RabbitMQ answers: its RPC servers' topic queues (REPAIR_QUEUES)
    declared at once, as a start declares EARLY_QUEUES. The broker restarts without its transient queues; the
    services still running reconnect by themselves within a second or two, their clients publishing what they
    held back (a report, a periodic call) maybe before the server re-declares its queue: dropped, a 60 s RPC
    timeout (live, RabbitMQ SIGKILLed then `popek cloud up`: nova-compute's « Lost connection to
    nova-conductor » and update_available_resource timed out 60 s after the broker came back). A declared
    queue keeps it until its server consumes. A declaration that fails is said, and the repair goes on."""
    try:
        wait_consumers(state, {}, timeout=10.0, declare=REPAIR_QUEUES)
    except CloudError as exc:
        log(f"[{time.monotonic() - t0:6.1f} s] files RabbitMQ non déclarées d'avance ({exc})")
        return
    log(f"[{time.monotonic() - t0:6.1f} s] files RabbitMQ déclarées d'avance : "
        + ", ".join(t for topics in REPAIR_QUEUES.values() for t in topics))


def _repair_rpc_wait(state: CloudState, rpc: Service, t0: float, log) -> None:
    """During a repair: wait until neutron-rpc-server consumes its agents' queues (NEUTRON_RPC_QUEUES); if
    it does not, it alone is stopped (it is the one half-started, or deaf to the broker) and CloudError says so."""
    try:
        wait_consumers(state, {q: (rpc.name, _alive(state, rpc.name)) for q in NEUTRON_RPC_QUEUES},
                       timeout=REPAIR_TIMEOUT)
    except CloudError as exc:
        services.stop(state, [rpc.name], grace=5)
        raise CloudError(f"réparation impossible : {rpc.name} ne redémarre pas ({exc}) ; les autres services "
                         f"tournent toujours.\n--- dernières lignes de {rpc.log} :\n{services.log_tail(rpc.log)}") from None
    log(f"[{time.monotonic() - t0:6.1f} s] {rpc.name} à l'écoute (RabbitMQ)")


def _alive(state: CloudState, name: str):
    return lambda: services.read_pid(state, name) is not None


def settle_ports(state: CloudState, mod, log) -> list[tuple]:
    """The cloud's port map for this start (ports.choose): a port of the map that someone else holds moves,
    one line said per move; the map is written before any service binds it. The ports of the cloud's own
    running services are kept. Returns the moves."""
    held = {p for s in table(state, mod) if services.read_pid(state, s.name) is not None
            for p in services.ports_of(s)}
    before = state.ports
    try:
        standard = PORTS if mod is not None else {k: p for k, p in PORTS.items() if k not in DATAPLANE_PORTS}
        both = {s.name for s in table(state, mod) if s.ipv6_loopback}  # epmd: 127.0.0.1 and ::1
        chosen, moves = ports.choose(standard, before, services.port_taken, ports.ephemeral_range(),
                                     ours={k for k, p in before.items() if p in held},
                                     taken_by_key={k: services.port_taken_loopback for k, owner in ports.OWNER.items()
                                                   if owner in both})
    except ValueError as exc:
        raise CloudError(f"{exc} sur {HOST} : popek ne démarre rien") from None
    if moves or not state.ports_file.exists():
        state.record_ports(before | chosen)  # a key of the other mode's (OpenFlow's) kept as it was
    for line in ports.say(moves):
        log(line)
    return moves


def _check_port_free(svc: Service) -> None:
    """A port of `svc` taken before we start it belongs to someone else: say so clearly."""
    for port in services.ports_of(svc):
        who = services.holder(svc, port)
        if who is not None:
            raise CloudError(f"le port {port} de {svc.name} est déjà occupé par {who} ; popek n'y touche pas : "
                             "libérez ce port (arrêtez ce programme), puis relancez `popek cloud up`")


def settle_smoke(state: CloudState, mod, log, timeout: float = 120.0) -> None:
    """The last smoke instance, whose deletion `up` did not wait for, gone (dataplane.settle_smoke); one that
    cannot be deleted is said in one French line (its record kept: the next `up` or `down` tries again)."""
    if mod is None:
        return
    try:
        done = mod.settle_smoke(state, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - CloudError, or an API that refuses or does not answer: never in the way
        said = str(exc) if isinstance(exc, CloudError) else \
            f"instance d'essai : sa suppression n'a pas pu être vérifiée ({type(exc).__name__} : {REDACT(str(exc))[:300]})"
        log(f"{said} ; nouvel essai au prochain `popek cloud up` ou `down`")
        return
    if done:
        log(f"  {done}")


def stop_all(state: CloudState, log: Callable[[str], None] = print, settle: bool = True) -> list[int]:
    """Stop every process we started: OpenStack services first, then the bus and the database. The last
    smoke instance's deletion is awaited first while nova runs (its guest is killed with the others anyway),
    unless `settle` is False (a failed `up`: no time to wait on nova); it never prevents the stop."""
    names = sorted(p.stem for p in state.run_dir.glob("*.pid"))
    mode = read_mode(state)
    mod = dataplane_hooks if mode.get("dataplane") else None
    if settle and all(services.read_pid(state, n) is not None for n in ("nova-api", "nova-compute")):
        settle_smoke(state, mod, log, timeout=30)
    stage_of = {s.name: s.stage for s in table(state, mod)} if state.venv.exists() else {}
    services.stop(state, [n for n in names if stage_of.get(n, 2) > 0])
    services.stop(state, [n for n in names if stage_of.get(n, 2) == 0])
    left = services.sweep(state)
    if mod is not None:
        mod.teardown(state)
    fence.remove()  # after the guests are gone; also when the mode was lost (a table of ours left behind)
    return left


def down(state: CloudState, log: Callable[[str], None] = print) -> list[int]:
    """Stop the cloud; returns the pids of ours still running afterwards (none expected)."""
    with exclusive(state):
        if not state.root.exists():
            return []
        return stop_all(state, log)


def destroy(state: CloudState) -> None:
    """`down`, then remove the whole state directory (venv, configs, databases, logs, passwords)."""
    with exclusive(state):
        left = stop_all(state) if state.root.exists() else []
        if left:
            raise CloudError(f"processus encore en vie après l'arrêt : {left} ; état conservé")
        shutil.rmtree(state.root, ignore_errors=True)


@dataclass
class Row:
    name: str
    pid: int | None
    health: str
    ok: bool
    log: str


def status(state: CloudState) -> tuple[dict, list[Row]]:
    """The mode and one Row per service of the table (pid, health probe answered or not, log path)."""
    mode = read_mode(state)
    if not mode:
        return {"dataplane": False, "reason": "jamais démarré"}, []
    mod = dataplane_hooks if mode.get("dataplane") else None
    rows = []
    for s in table(state, mod):
        pid = services.read_pid(state, s.name)
        ok = pid is not None and services.healthy(s, 1.0)
        rows.append(Row(s.name, pid, s.health or "processus vivant", ok, s.log))
    return mode, rows
