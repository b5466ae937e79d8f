"""First-use installation of the embedded cloud: Debian packages (apt) and the services' own venv.

The venv is rebuilt only when `cloud-requirements.txt` changes (its hash is kept in the venv), so a
second `up` costs one file read here.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from popek.checks.localcloud.errors import CloudError

REQUIREMENTS = Path(__file__).with_name("cloud-requirements.txt")
#: Debian packages the API-only cloud needs (MariaDB for nova, RabbitMQ for oslo.messaging).
APT_PACKAGES = ("rabbitmq-server", "mariadb-server")
DRIVER_DIST = "popek_alwaysbind"
DRIVER_VERSION = "1.1"
#: popek's own modules for the cloud venv, shipped in the one driver wheel: the always-bind ML2 driver and
#: the dataplane's loop-device Cinder driver (module name in the venv -> source file beside this one).
DRIVER_MODULES = {DRIVER_DIST: "alwaysbind.py", "popek_loopvolume": "loopvolume.py"}


def _driver_sources() -> dict[str, bytes]:
    return {f"{mod}.py": Path(__file__).with_name(src).read_bytes() for mod, src in DRIVER_MODULES.items()}


def missing_packages(packages=APT_PACKAGES) -> list[str]:
    """The Debian packages of `packages` that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    missing = []
    for pkg in packages:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in out.stdout:
            missing.append(pkg)
    return missing


#: Debian's protocol for "no service may be started now": invoke-rc.d and deb-systemd-invoke ask
#: /usr/sbin/policy-rc.d, and exit status 101 means "action forbidden". popek's apt runs install packages
#: whose daemons it runs itself, on 127.0.0.1 and private state directories: Debian must not start (nor
#: enable) the machine-wide ones, listening on every interface.
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
POLICY_RC_D_TEXT = ("#!/bin/sh\n# popek: no service is started by a package popek installs "
                    "(this file goes when popek's apt run ends)\nexit 101\n")
#: Where Debian's maintainer scripts enable a service: systemd's wants links and sysvinit's start links.
ENABLED_GLOBS = ("/etc/systemd/system/*.wants/*", "/etc/rc[2-5].d/S*")
#: One apt run at a time: the image builds and the dataplane install from two threads (dpkg's own lock
#: would fail the second one).
_APT_LOCK = threading.Lock()


@contextmanager
def services_held_back(path: Path = POLICY_RC_D):
    """For the duration, `path` forbids every service start; afterwards the machine's own policy-rc.d is
    back byte for byte with its mode, or there is none if there was none."""
    before = path.read_bytes() if path.is_file() else None
    mode = path.stat().st_mode & 0o7777 if before is not None else None
    tmp = path.with_name(path.name + ".popek-tmp")
    tmp.write_text(POLICY_RC_D_TEXT)
    tmp.chmod(0o755)
    os.replace(tmp, path)
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            tmp.write_bytes(before)
            tmp.chmod(mode)
            os.replace(tmp, path)


def enabled_links(globs=ENABLED_GLOBS) -> set[str]:
    """The links by which services are enabled at boot (systemd wants, sysvinit rc2-5 start links)."""
    import glob

    return {p for g in globs for p in glob.glob(g)}


def planned_installs(simulation: str) -> list[str]:
    """The packages `apt-get install -s` (its stdout, `simulation`) would install or upgrade."""
    return [line.split()[1] for line in simulation.splitlines() if line.startswith("Inst ")]


def disable_new(before: set[str], log: Callable[[str], None], globs=ENABLED_GLOBS) -> list[str]:
    """Disable, the Debian way, every service a package script enabled since `before` was taken
    (deb-systemd-helper for systemd units, update-rc.d for init scripts). Returns their names."""
    names = []
    for link in sorted(enabled_links(globs) - before):
        name = Path(link).name
        if "/systemd/" in link:
            cmd = ["deb-systemd-helper", "disable", name] if shutil.which("deb-systemd-helper") else None
        else:
            name = name[3:]  # S01foo -> foo
            cmd = ["update-rc.d", name, "disable"] if shutil.which("update-rc.d") else None
        if name in names:
            continue
        if cmd is None or subprocess.run(cmd, capture_output=True).returncode != 0:
            Path(link).unlink(missing_ok=True)
        names.append(name)
    if names:
        log(f"apt : services désactivés au démarrage de la machine (popek lance les siens) : {' '.join(names)}")
    return names


def _apt_plan(missing: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", "--no-remove", *missing],
                          env=env, capture_output=True, text=True)


def apt_install(packages, log: Callable[[str], None] = print) -> list[str]:
    """Install the missing ones of `packages` with the machine's apt, changing nothing else: what will be
    installed (dependencies included) is shown first, no package is removed (`--no-remove`), no recommends,
    no service is started (policy-rc.d) nor left enabled at boot. Returns the packages installed.

    Raises CloudError (one French sentence) when not root, without apt, or when apt refuses."""
    missing = missing_packages(packages)
    if not missing:
        return []
    if shutil.which("apt-get") is None:
        raise CloudError(f"paquets Debian manquants : {' '.join(missing)} ; apt-get est introuvable sur cette "
                         "machine, installez-les autrement")
    if os.geteuid() != 0:
        raise CloudError(f"paquets Debian manquants : {' '.join(missing)} ; relancez en root ou installez-les : "
                         f"apt-get install --no-install-recommends {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with _APT_LOCK:
        plan = _apt_plan(missing, env)
        if plan.returncode != 0:  # stale package lists: refresh once, then plan again
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            plan = _apt_plan(missing, env)
        if plan.returncode != 0:
            raise CloudError(f"apt-get install {' '.join(missing)} impossible sans retirer de paquet ou "
                             f"autrement : {(plan.stderr or plan.stdout).strip()[-400:]}")
        installs = planned_installs(plan.stdout)
        log(f"apt : installation de {len(installs)} paquet(s) : {' '.join(installs)}")
        enabled = enabled_links()
        with services_held_back():
            run = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "--no-remove", *missing],
                                 env=env, capture_output=True, text=True)
            disable_new(enabled, log)
    if run.returncode != 0:
        raise CloudError(f"apt-get install {' '.join(missing)} a échoué : {run.stderr.strip()[-400:]}")
    return installs


def ensure_apt(packages=APT_PACKAGES, log: Callable[[str], None] = lambda line: None) -> list[str]:
    """The API-only cloud's packages (MariaDB, RabbitMQ) through `apt_install`."""
    return apt_install(packages, log)


def requirements_digest() -> str:
    """What the venv was built from: the pinned requirements and the drivers' sources."""
    return hashlib.sha256(REQUIREMENTS.read_bytes() + b"".join(_driver_sources().values())).hexdigest()


def venv_ready(venv: Path) -> bool:
    stamp = venv / "popek-requirements.sha256"
    return stamp.exists() and stamp.read_text().strip() == requirements_digest()


def ensure_wheelhouse(wheelhouse: Path, pip: str, log: Path) -> None:
    """Download (and build where needed) every pinned distribution into `wheelhouse`, once.

    The wheelhouse lives in popek's cache, outside the cloud's state: after `destroy`, a cold `up`
    reinstalls from it without the network (and without resolving against an index).
    """
    stamp = wheelhouse / "popek-requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        rc = subprocess.run([pip, "wheel", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS),
                             "-w", str(wheelhouse)], stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise CloudError(f"téléchargement des services (pip wheel) en échec (code {rc}) : accès à PyPI ? "
                         f"voir {log}")
    stamp.write_text(digest + "\n")


def ensure_venv(venv: Path, log: Path, wheelhouse: Path) -> bool:
    """Create `venv` and install the pinned services into it from `wheelhouse` (filled on first use);
    False when it was already up to date. pip's output goes to `log`.

    `--no-compile`: most of what is installed (the services' own test suites above all) is never
    imported; what is gets compiled at its first import.
    """
    if venv_ready(venv):
        return False
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    pip = str(venv / "bin" / "pip")
    ensure_wheelhouse(wheelhouse, pip, log)
    with open(log, "ab") as out:
        rc = subprocess.run([pip, "install", "--disable-pip-version-check", "-q", "--no-compile", "--no-index",
                             "--find-links", str(wheelhouse), "-r", str(REQUIREMENTS)],
                            stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise CloudError(f"pip install des services a échoué (code {rc}), voir {log}")
    install_alwaysbind(venv)
    (venv / "popek-requirements.sha256").write_text(requirements_digest() + "\n")
    return True


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def alwaysbind_wheel(dest: Path) -> Path:
    """Write the wheel of popek's drivers (DRIVER_MODULES) into `dest` and return its path.

    A wheel is a zip with a dist-info; building it here needs no build backend in the cloud venv.
    """
    dist_info = f"{DRIVER_DIST}-{DRIVER_VERSION}.dist-info"
    files = {
        **_driver_sources(),
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {DRIVER_DIST}\nVersion: {DRIVER_VERSION}\n"
                                  "Summary: popek's always-bind ML2 driver and loop-device Cinder driver\n").encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: popek\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": (f"[neutron.ml2.mechanism_drivers]\n"
                                          f"{DRIVER_DIST} = {DRIVER_DIST}:AlwaysBindDriver\n").encode(),
    }
    record = "\n".join(_record_line(n, d) for n, d in files.items()) + f"\n{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{DRIVER_DIST}-{DRIVER_VERSION}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def install_alwaysbind(venv: Path) -> None:
    """pip-install popek's driver wheel into the cloud venv (reinstalled each time: it is tiny)."""
    wheel = alwaysbind_wheel(venv / "popek-wheels")
    run = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
                          "--no-deps", "--no-index", "--force-reinstall", str(wheel)], capture_output=True, text=True)
    if run.returncode != 0:
        raise CloudError(f"installation des pilotes popek (ML2, Cinder) impossible : {run.stderr.strip()[-400:]}")
