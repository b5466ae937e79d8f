"""First-use installation of the embedded cloud: the services' own venv (their Debian packages, APT_PACKAGES,
go through apt.py).

The venv is rebuilt only when `cloud-requirements.txt` changes (its hash is kept in the venv), so a
second `up` costs one file read here.

The services go in with the venv's own pip, not uv, though uv fills it several times faster
(benchmarks/bench_install.py): claim C32 is that the cloud is installed by `pip install`, and the embedded
cloud is its evidence (each distribution's INSTALLER file says which tool installed it). uv may only
resolve which files the wheelhouse downloads (ensure_wheelhouse): pip installs them.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from popek.checks.localcloud import runcmd
from popek.checks.localcloud.errors import CloudError

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


def venv_install(venv: Path, args: list[str], log: Path, what: str, reinstall: bool = False) -> None:
    """pip-install `args` (requirements and index options) into `venv`, output appended to `log`; raises
    CloudError naming `what` and the log. reinstall: even when the same version is there.

    `--no-compile`: most of what is installed (the services' own test suites above all) is never imported;
    what is gets compiled at its first import.
    """
    runcmd.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "--no-compile",
                *(["--force-reinstall"] if reinstall else []), *args], log=log, what=f"{what} : ")


#: pip processes that fill the wheelhouse side by side, each fetching its share of the resolved files
DOWNLOAD_JOBS = 6


def ensure_wheelhouse(wheelhouse: Path, pip: str, log: Path, jobs: int = DOWNLOAD_JOBS,
                      uv: Optional[str] = None, again: bool = False) -> None:
    """Download (and build where needed) every pinned distribution into `wheelhouse`, once (`again`: even
    when it is stamped as filled).

    The wheelhouse lives in popek's cache, outside the cloud's state: after `destroy`, a cold `up`
    reinstalls from it without the network (and without resolving against an index).

    One serial `pip wheel -r` spends most of its time in pip's resolver, CPU-bound (it parses and compares
    every version on every index page: 75,000 links here), fetching one file after the other; pip's own
    dry run (`--report`) costs as much, so resolving with pip first and fetching in parallel was measured
    slower (benchmarks/README.md). With `uv` (the path of a uv binary, e.g. popek's venv's) the
    requirements are resolved by `uv pip compile` in seconds, then `jobs` `pip wheel --no-deps` processes
    fetch the pinned files, with their hashes, side by side. The services are still installed by pip
    (ensure_venv), which resolves again against the wheelhouse alone. One serial `pip wheel -r` without uv,
    when `jobs` is 0, or when that path fails (uv cannot resolve, a file that will not download).
    """
    stamp = wheelhouse / "popek-requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not again and stamp.exists() and stamp.read_text().strip() == digest:
        return
    wheelhouse.mkdir(parents=True, exist_ok=True)
    try:
        if jobs <= 0 or not uv:
            raise ValueError("no uv to resolve" if not uv else "serial download asked")
        fill_wheelhouse_parallel(wheelhouse, pip, log, uv, jobs)
    except (CloudError, OSError, ValueError) as exc:
        runcmd.note(log, f"serial pip wheel ({type(exc).__name__}: {exc})")
        runcmd.run([pip, "wheel", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS), "-w",
                    str(wheelhouse)], log=log, what="téléchargement des services (accès à PyPI ?) : ")
    stamp.write_text(digest + "\n")


def fill_wheelhouse_parallel(wheelhouse: Path, pip: str, log: Path, uv: str, jobs: int = DOWNLOAD_JOBS) -> None:
    """REQUIREMENTS resolved by `uv pip compile` (for the Python beside `pip`), then the pinned files fetched by
    `jobs` pip processes side by side."""
    work = wheelhouse / "popek-resolution"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        runcmd.run([uv, "pip", "compile", "-q", "--generate-hashes", "--system-certs", "--python",
                    str(Path(pip).with_name("python")), "-o", str(work / "resolved.txt"), str(REQUIREMENTS)],
                   log=log, what="résolution des services par uv : ")
        lines = requirement_lines((work / "resolved.txt").read_text())
        if not lines:
            raise ValueError("uv resolved nothing")
        files = []
        for i, chunk in enumerate(deal(lines, jobs)):
            files.append(work / f"download-{i}.txt")
            files[-1].write_text("".join(line + "\n" for line in chunk))
        with ThreadPoolExecutor(max_workers=len(files)) as pool:
            done = [pool.submit(runcmd.run, [pip, "wheel", "--disable-pip-version-check", "-q", "--no-deps",
                                             "-r", str(path), "-w", str(wheelhouse)], log=log,
                                what="téléchargement des services (accès à PyPI ?) : ") for path in files]
            for job in done:
                job.result()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements file (as `uv pip compile` writes it), one string each: continued
    lines joined, comments, blank lines and option lines (`--index-url …`) dropped."""
    reqs, cur = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cur.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            reqs.append(" ".join(cur))
            cur = []
    if cur:
        reqs.append(" ".join(cur))
    return [r for r in reqs if not r.startswith("-")]


def deal(lines: list[str], jobs: int) -> list[list[str]]:
    """`lines` dealt round robin into at most `jobs` non-empty lists (sizes are not known before download)."""
    jobs = max(1, min(jobs, len(lines)))
    return [lines[i::jobs] for i in range(jobs)] if lines else []


def bundled_uv() -> Optional[str]:
    """The uv binary installed beside this Python (popek's venv, by .ci/install), or None."""
    uv = Path(sys.executable).with_name("uv")
    return str(uv) if uv.is_file() and os.access(uv, os.X_OK) else None


def ensure_venv(venv: Path, log: Path, wheelhouse: Path, uv: Optional[str] = None) -> bool:
    """Create `venv` and install the pinned services into it from `wheelhouse` (filled on first use, its
    requirements resolved by `uv` when given: ensure_wheelhouse); False when it was already up to date.
    pip's output goes to `log`."""
    if venv_ready(venv):
        return False
    if not (venv / "bin" / "python").exists():
        runcmd.run([sys.executable, "-m", "venv", str(venv)], what="création du venv des services : ")
    log.parent.mkdir(parents=True, exist_ok=True)
    pip = str(venv / "bin" / "pip")
    ensure_wheelhouse(wheelhouse, pip, log, uv=uv)
    args = ["--no-index", "--find-links", str(wheelhouse), "-r", str(REQUIREMENTS)]
    try:
        venv_install(venv, args, log, "installation des services")
    except CloudError as exc:
        # a wheelhouse pip cannot install from (uv resolved what pip's resolver refuses, a file missing):
        # filled again once by pip's own serial `pip wheel -r`, else every later `up` would fail the same way
        runcmd.note(log, f"install from the wheelhouse failed ({exc}); filled again by pip wheel -r")
        ensure_wheelhouse(wheelhouse, pip, log, jobs=0, again=True)
        venv_install(venv, args, log, "installation des services")
    install_alwaysbind(venv, log)
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


def install_alwaysbind(venv: Path, log: Path) -> None:
    """Install popek's driver wheel into the cloud venv (reinstalled each time: it is tiny)."""
    wheel = alwaysbind_wheel(venv / "popek-wheels")
    venv_install(venv, ["--no-deps", "--no-index", str(wheel)], log, "installation des pilotes popek (ML2, Cinder)",
                 reinstall=True)
