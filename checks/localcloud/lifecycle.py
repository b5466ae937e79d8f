"""`up`, `down`, `status`, `destroy` of the embedded cloud: the order of things, nothing else.

Install (apt, venv) and the image builds run side by side; then configuration (data, see config.py),
the process table (services.py) stage by stage, the one-time setup steps (bootstrap.py) in between.
A dataplane module, when present and asked for, changes the configuration and adds processes through
the hooks documented in services.py.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from popek.checks.localcloud import bootstrap, config, install, services
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.services import STAGES, Service
from popek.checks.localcloud.state import CloudState

DATAPLANE_MODULE = "popek.checks.localcloud.dataplane"
API_ONLY = "API seulement (pilote fake)"


class Progress:
    """One line per long step: elapsed time since `up` began, the step, and its own duration."""

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
    """The dataplane hook module, or None when it is not in the tree."""
    if importlib.util.find_spec(DATAPLANE_MODULE) is None:
        return None
    return importlib.import_module(DATAPLANE_MODULE)


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
    mod = dataplane_module() if dataplane else None
    if not dataplane:
        reason = "plan de données désactivé (--no-dataplane)"
    elif mod is None:
        reason = "module dataplane absent (checks/localcloud/dataplane.py)"
    else:
        reason = ""
    return mod, {"dataplane": mod is not None, "reason": reason}


def running(state: CloudState, svc: list[Service]) -> bool:
    """True when every service of `svc` is alive and answers its health check."""
    return all(services.read_pid(state, s.name) is not None and services.healthy(s, 1.0) for s in svc)


def _build_images(state: CloudState, log):
    """The images of images.py, built or taken from the cache (a cache hit costs nothing; a recipe that
    changed with popek's code is rebuilt once, and `resources` replaces the image in Glance)."""
    from popek.checks.localcloud import images

    state.image_cache.mkdir(parents=True, exist_ok=True)
    return images.build_images(state.image_cache, log=lambda line: log(f"  images: {line}"))


def up(state: CloudState, dataplane: bool = True, log: Callable[[str], None] = print) -> dict:
    """Bring the cloud up (install on first use); a no-op returning quickly when it already runs.

    state: where the cloud lives; dataplane: use checks/localcloud/dataplane.py when it exists;
    log: receives one progress line per step. Returns the mode ({"dataplane": bool, "reason": str}).
    On a failure every process started is stopped and CloudError names the culprit and its log.
    """
    with exclusive(state, log):
        return _up(state, dataplane, log)


def _up(state: CloudState, dataplane: bool, log: Callable[[str], None]) -> dict:
    mod, mode = _choose_mode(dataplane)
    current = read_mode(state)
    if current and state.venv.exists():
        svc = table(state, dataplane_module() if current.get("dataplane") else None)
        if running(state, svc):
            if current.get("dataplane") != mode["dataplane"]:
                raise CloudError(f"le cloud tourne déjà ({mode_label(current)}) ; `popek cloud down` d'abord "
                                 "pour changer de mode")
            log(f"le cloud tourne déjà ({mode_label(current)}) : rien à faire")
            return current
    progress = Progress(log)
    state.mkdirs()
    with progress.step("paquets Debian (rabbitmq-server, mariadb-server)"):
        installed = install.ensure_apt()
    if installed:
        log(f"  installés : {' '.join(installed)}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        image_job = pool.submit(_build_images, state, log)
        try:
            with progress.step("environnement Python des services (venv)"):
                install.ensure_venv(state.venv, state.log("pip"), state.wheelhouse)
            _start_all(state, mod, mode, progress, log)
            with progress.step("images (construction ou cache)"):
                specs = image_job.result()
            with progress.step("ressources du cours (gabarits, images, réseaux, groupes de sécurité)"):
                bootstrap.resources(state, specs)
            if mode["dataplane"]:
                with progress.step("plan de données : une instance d'essai obtient son adresse et ses metadata"):
                    bootstrap.dataplane_smoke(state)
        except BaseException as exc:
            image_job.cancel()
            stop_all(state)
            from openstack import exceptions as sdk_exc

            if isinstance(exc, sdk_exc.SDKException):  # an API call of the setup failed: say which, no trace
                raise CloudError(f"appel d'API en échec pendant la mise en place : {exc} ; journaux dans "
                                 f"{state.root / 'log'}") from None
            raise
    log(f"[{time.monotonic() - progress.t0:6.1f} s] cloud prêt : {mode_label(mode)}")
    return mode


def _start_all(state: CloudState, mod, mode: dict, progress: Progress, log) -> None:
    with progress.step("configuration"):
        cfg = config.generate(state)
        if mod is not None:
            cfg = config.merge(cfg, mod.config_overrides(state))
        config.write(state, cfg)
        config.copy_shipped(state)
        bootstrap.once(state, "init-mariadb", bootstrap.init_mariadb, state)
        bootstrap.init_rabbitmq(state)
        bootstrap.write_client_config(state)
        (state.run_dir / "mode.json").write_text(json.dumps(mode))
    if mod is not None:
        with progress.step("plan de données : préparation"):
            mod.prepare(state)
    svc = table(state, mod)
    nova = cfg["nova/nova.conf"]["DEFAULT"]
    for stage in STAGES:
        group = [s for s in svc if s.stage == stage]
        if stage == 2:
            since = bootstrap.utcnow()
        if stage == 3:
            since = _before_compute(state, mode, nova, progress, since)
        with progress.step(f"démarrage : {', '.join(s.name for s in group)}"):
            for s in group:
                if services.read_pid(state, s.name) is None:
                    _check_port_free(s)
                    services.start(state, s)
            services.wait_healthy(state, group)
        if stage == 0:
            with progress.step("bases de données (schémas, une seule fois)"):
                bootstrap.databases(state)
        elif stage == 1:
            with progress.step("identité : utilisateurs, projets, rôles, catalogue"):
                bootstrap.once(state, "identity", bootstrap.identity, state)
    with progress.step("nova-compute « up » et découverte de l'hôte"):
        bootstrap.wait_compute(state, _alive(state, "nova-compute"), since)
    state.marker("compute-mode").write_text(_compute_mode(mode) + "\n")
    services.wait_healthy(state, svc, timeout=5)  # none died while the others started


def _compute_mode(mode: dict) -> str:
    return "dataplane" if mode["dataplane"] else "fake"


def _before_compute(state: CloudState, mode: dict, nova: dict, progress: Progress, since):
    """What nova-compute needs before it starts: conductor and scheduler consuming their queues, a clean
    compute host after a mode switch (the marker says which mode compute last came up in), the fake
    driver's identity file. Returns the time from which its heartbeat counts."""
    with progress.step("nova-conductor et nova-scheduler « up »"):
        bootstrap.wait_nova(state, {b: _alive(state, b) for b in ("nova-conductor", "nova-scheduler")}, since)
    last = state.marker("compute-mode")
    if last.exists() and last.read_text().strip() != _compute_mode(mode):
        with progress.step("changement de mode : anciennes instances et hôte de calcul oubliés"):
            bootstrap.forget_compute(state)
    if nova.get("compute_driver") == config.FAKE_COMPUTE_DRIVER:
        bootstrap.fake_compute_identity(state, nova["host"])
    return bootstrap.utcnow()


def _alive(state: CloudState, name: str):
    return lambda: services.read_pid(state, name) is not None


def _check_port_free(svc: Service) -> None:
    """A port already answering before we start `svc` belongs to someone else: say so clearly."""
    port = services.port_of(svc)
    if port is not None and services.healthy(Service(svc.name, [], health=f"tcp://127.0.0.1:{port}"), 0.5):
        raise CloudError(f"le port {port} de {svc.name} est déjà occupé par un autre processus")


def stop_all(state: CloudState) -> list[int]:
    """Stop every process we started: OpenStack services first, then the bus and the database."""
    names = sorted(p.stem for p in state.run_dir.glob("*.pid"))
    mode = read_mode(state)
    mod = dataplane_module() if mode.get("dataplane") else None
    stage_of = {s.name: s.stage for s in table(state, mod)} if state.venv.exists() else {}
    services.stop(state, [n for n in names if stage_of.get(n, 2) > 0])
    services.stop(state, [n for n in names if stage_of.get(n, 2) == 0])
    left = services.sweep(state)
    if mod is not None:
        mod.teardown(state)
    return left


def down(state: CloudState) -> list[int]:
    """Stop the cloud; returns the pids of ours still running afterwards (none expected)."""
    with exclusive(state):
        if not state.root.exists():
            return []
        return stop_all(state)


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
        mod_avail = dataplane_module()
        return {"dataplane": False, "reason": "jamais démarré" if mod_avail else
                "module dataplane absent (checks/localcloud/dataplane.py)"}, []
    mod = dataplane_module() if mode.get("dataplane") else None
    rows = []
    for s in table(state, mod):
        pid = services.read_pid(state, s.name)
        ok = pid is not None and services.healthy(s, 1.0)
        rows.append(Row(s.name, pid, s.health or "processus vivant", ok, s.log))
    return mode, rows
