"""First-use installation of the embedded cloud: the services' own venv (their Debian packages, APT_PACKAGES,
go through apt.py).

The venv is rebuilt only when `cloud-requirements.txt` changes (its hash is kept in the venv), so a
second `up` costs one file read here. Packages go into it with uv when popek's environment has it (PyPI
package `uv`, a dependency of popek): from the wheelhouse, 13 s instead of pip's 59 s on this machine type
(benchmarks/README.md); with the venv's own pip otherwise.
"""
from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Optional

from popek.checks.localcloud import runcmd

REQUIREMENTS = Path(__file__).with_name("cloud-requirements.txt")
#: Debian packages the API-only cloud needs (MariaDB for nova, RabbitMQ for oslo.messaging).
APT_PACKAGES = ("rabbitmq-server", "mariadb-server")
DRIVER_DIST = "popek_alwaysbind"
DRIVER_VERSION = "1.1"
#: popek's own modules for the cloud venv, shipped in the one driver wheel: the always-bind ML2 driver,
#: the dataplane's loop-device Cinder driver and the fork-time gc.freeze (module name in the venv -> source
#: file beside this one).
DRIVER_MODULES = {DRIVER_DIST: "alwaysbind.py", "popek_loopvolume": "loopvolume.py",
                  "popek_forkfreeze": "forkfreeze.py"}
#: a .pth line that starts with "import" runs at every start of the venv's interpreter (site.py)
FORKFREEZE_PTH = b"import popek_forkfreeze; popek_forkfreeze.install()\n"


def _driver_sources() -> dict[str, bytes]:
    return {f"{mod}.py": Path(__file__).with_name(src).read_bytes() for mod, src in DRIVER_MODULES.items()}


def requirements_digest() -> str:
    """What the venv was built from: the pinned requirements and the drivers' sources."""
    return hashlib.sha256(REQUIREMENTS.read_bytes() + b"".join(_driver_sources().values()) + FORKFREEZE_PTH).hexdigest()


def venv_ready(venv: Path) -> bool:
    stamp = venv / "popek-requirements.sha256"
    return stamp.exists() and stamp.read_text().strip() == requirements_digest()


def uv_binary() -> Optional[str]:
    """The uv of popek's own environment (PyPI package `uv`), else one on PATH; None when there is none."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    try:
        return find_uv_bin()
    except FileNotFoundError:
        return shutil.which("uv")


def venv_install(venv: Path, args: list[str], log: Path, what: str, cache: Optional[Path] = None,
                 reinstall: bool = False, uv: bool = True) -> None:
    """Install `args` (pip's requirement and index options) into `venv`, output appended to `log`.

    uv: use uv when there is one (uv_binary()), else the venv's pip; False: pip. Nothing is compiled
    to bytecode (uv's default, pip's `--no-compile`): most of what is installed (the services' own test
    suites above all) is never imported; what is gets compiled at its first import. cache: uv's cache
    directory (popek's, beside the wheelhouse; uv's default when None); reinstall: reinstall even when the
    same version is there. Raises CloudError naming `what` and the log.
    """
    uv_bin = uv_binary() if uv else None
    if uv_bin:
        argv = [uv_bin, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                *(["--reinstall"] if reinstall else []), *args]
        runcmd.run(argv, log=log, what=f"{what} (uv) : ", env={"UV_CACHE_DIR": str(cache)} if cache else None)
    else:
        argv = [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "--no-compile",
                *(["--force-reinstall"] if reinstall else []), *args]
        runcmd.run(argv, log=log, what=f"{what} (pip) : ")


def uv_cache(wheelhouse: Path) -> Path:
    """uv's cache directory: in popek's cache, beside the wheelhouse (not the user's ~/.cache/uv)."""
    return wheelhouse.parent / "uv"


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
    runcmd.run([pip, "wheel", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS), "-w", str(wheelhouse)],
               log=log, what="téléchargement des services (accès à PyPI ?) : ")
    stamp.write_text(digest + "\n")


def ensure_venv(venv: Path, log: Path, wheelhouse: Path, uv: bool = True) -> bool:
    """Create `venv` and install the pinned services into it from `wheelhouse` (filled on first use);
    False when it was already up to date. The installers' output goes to `log`.

    uv: install with uv when there is one (see venv_install); False: with the venv's pip.
    """
    if venv_ready(venv):
        return False
    if not (venv / "bin" / "python").exists():
        runcmd.run([sys.executable, "-m", "venv", str(venv)], what="création du venv des services : ")
    log.parent.mkdir(parents=True, exist_ok=True)
    ensure_wheelhouse(wheelhouse, str(venv / "bin" / "pip"), log)
    venv_install(venv, ["--no-index", "--find-links", str(wheelhouse), "-r", str(REQUIREMENTS)], log,
                 "installation des services", cache=uv_cache(wheelhouse), uv=uv)
    install_alwaysbind(venv, log, cache=uv_cache(wheelhouse), uv=uv)
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
        "popek_forkfreeze.pth": FORKFREEZE_PTH,
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {DRIVER_DIST}\nVersion: {DRIVER_VERSION}\n"
                                  "Summary: popek's always-bind ML2 driver, loop-device Cinder driver, fork-time gc.freeze\n").encode(),
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


def install_alwaysbind(venv: Path, log: Path, cache: Optional[Path] = None, uv: bool = True) -> None:
    """Install popek's driver wheel into the cloud venv (reinstalled each time: it is tiny)."""
    wheel = alwaysbind_wheel(venv / "popek-wheels")
    venv_install(venv, ["--no-deps", "--no-index", str(wheel)], log, "installation des pilotes popek (ML2, Cinder)",
                 cache=cache, reinstall=True, uv=uv)
