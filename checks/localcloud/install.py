"""First-use installation of the embedded cloud: the services' own venv (their Debian packages, APT_PACKAGES,
go through apt.py).

The venv is rebuilt only when `cloud-requirements.txt` changes (its hash is kept in the venv), so a
second `up` costs one file read here.

The services go in with the venv's own pip, not uv, though uv fills it several times faster
(benchmarks/bench_install.py): claim C32 is that the cloud is installed by `pip install`, and the embedded
cloud is its evidence (each distribution's INSTALLER file says which tool installed it). uv may only
resolve which files the wheelhouse downloads (ensure_wheelhouse) and which pins the pip processes install
(install_parallel): pip installs them.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import tempfile
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
#: pip processes that install the services' wheels side by side (2 cores; 2, 3, 4 measured: benchmarks/README.md)
INSTALL_JOBS = 2


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


def ensure_venv(venv: Path, log: Path, wheelhouse: Path, uv: Optional[str] = None, jobs: int = INSTALL_JOBS) -> bool:
    """Create `venv` and install the pinned services into it from `wheelhouse` (filled on first use, its
    requirements resolved by `uv` when given: ensure_wheelhouse); False when it was already up to date.
    pip's output goes to `log`.

    With `uv`, the services go in by `jobs` `pip install --no-deps` processes side by side
    (install_parallel); one `pip install -r` (pip's resolver against the wheelhouse) without uv, when `jobs`
    is 0, or when that path fails (then on a venv made anew)."""
    if venv_ready(venv):
        return False
    if not (venv / "bin" / "python").exists():
        _make_venv(venv)
    log.parent.mkdir(parents=True, exist_ok=True)
    pip = str(venv / "bin" / "pip")
    ensure_wheelhouse(wheelhouse, pip, log, uv=uv)
    try:
        if jobs <= 0 or not uv:
            raise ValueError("no uv to resolve" if not uv else "serial install asked")
        install_parallel(venv, wheelhouse, log, uv, jobs)
    except (CloudError, OSError, ValueError, ImportError) as exc:
        runcmd.note(log, f"serial pip install -r ({type(exc).__name__}: {exc})")
        if getattr(exc, "popek_venv_touched", False):  # a partial install: the serial one starts anew
            shutil.rmtree(venv, ignore_errors=True)
            _make_venv(venv)
        install_serial(venv, wheelhouse, log)
    install_alwaysbind(venv, log)
    (venv / "popek-requirements.sha256").write_text(requirements_digest() + "\n")
    return True


def _make_venv(venv: Path) -> None:
    runcmd.run([sys.executable, "-m", "venv", str(venv)], what="création du venv des services : ")


def install_serial(venv: Path, wheelhouse: Path, log: Path) -> None:
    """One `pip install -r REQUIREMENTS` against the wheelhouse alone (pip resolves: ~15 s of its ~35 s here)."""
    args = ["--no-index", "--find-links", str(wheelhouse), "-r", str(REQUIREMENTS)]
    try:
        venv_install(venv, args, log, "installation des services")
    except CloudError as exc:
        # a wheelhouse pip cannot install from (uv resolved what pip's resolver refuses, a file missing):
        # filled again once by pip's own serial `pip wheel -r`, else every later `up` would fail the same way
        runcmd.note(log, f"install from the wheelhouse failed ({exc}); filled again by pip wheel -r")
        ensure_wheelhouse(wheelhouse, str(venv / "bin" / "pip"), log, jobs=0, again=True)
        venv_install(venv, args, log, "installation des services")


def install_parallel(venv: Path, wheelhouse: Path, log: Path, uv: str, jobs: int = INSTALL_JOBS) -> None:
    """The services installed by pip from the wheelhouse, `jobs` processes side by side, then `pip check`.

    One `pip install -r` spends about half its time in pip's resolver (reading every wheel's metadata and
    scanning the installed distributions again for each requirement, CPU-bound). Here `uv pip compile` resolves
    against the wheelhouse alone (< 1 s), and pip installs the pins with `--no-deps`, by name and version (no
    direct-URL record: the venv reads as one `pip install -r` made it), in `jobs` shares of about equal size;
    the venv's own pip and setuptools (VENV_OWN) stay as they are, as with pip's resolver.
    Wheels that would write the same file (or console script) go in the same share: no two pip processes write
    one path. `pip check` then proves every dependency is met. A failure after the first pip process started
    is marked `popek_venv_touched` (ensure_venv makes the venv anew before its serial install).
    """
    work = Path(tempfile.mkdtemp(prefix="popek-resolution-", dir=wheelhouse))
    try:
        runcmd.run([uv, "pip", "compile", "-q", "--no-index", "--find-links", str(wheelhouse), "--python",
                    str(venv / "bin" / "python"), "-o", str(work / "resolved.txt"), str(REQUIREMENTS)],
                   log=log, what="résolution des services par uv : ")
        pins = pinned_wheels(requirement_lines((work / "resolved.txt").read_text()), wheelhouse)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # the venv's own pip and setuptools are kept, as pip's resolver keeps an installed version that satisfies
    # (the venv's setuptools 65, not the wheelhouse's newer one); `pip check` proves it does
    there = installed_projects(venv) & set(VENV_OWN)
    shares = install_shares({spec: wheel for spec, wheel in pins.items() if _project(spec) not in there}, jobs)
    pip = [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "--no-compile", "--no-deps",
           "--no-index", "--no-warn-conflicts", "--find-links", str(wheelhouse)]
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(shares))) as pool:
            done = [pool.submit(runcmd.run, [*pip, *share], log=log, what="installation des services : ")
                    for share in shares]
            for job in done:
                job.result()
        runcmd.run([str(venv / "bin" / "pip"), "check", "--disable-pip-version-check"], log=log,
                   what="installation des services (dépendances, pip check) : ")
    except (CloudError, OSError) as exc:
        exc.popek_venv_touched = True
        raise


#: what `python -m venv` puts in a new venv
VENV_OWN = ("pip", "setuptools")


def _project(spec: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(spec.split("==")[0])


def installed_projects(venv: Path) -> set[str]:
    """The projects installed in `venv` (its site-packages' .dist-info directories), names canonicalized."""
    from packaging.utils import canonicalize_name

    return {canonicalize_name(d.name[:-len(".dist-info")].rpartition("-")[0] or d.name)
            for d in venv.glob("lib/python*/site-packages/*.dist-info")}


def pinned_wheels(lines: list[str], wheelhouse: Path) -> dict[str, Path]:
    """{"name==version": its wheel in `wheelhouse`} for each pin of `lines` (requirement_lines of a resolution).
    ValueError for a line that is no `name==version` pin, or a pin with no wheel, or several, for this Python."""
    from packaging.tags import sys_tags
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    supported = set(sys_tags())
    found: dict[tuple[str, Version], list[Path]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        try:
            name, version, _build, tags = parse_wheel_filename(wheel.name)
        except ValueError:
            continue
        if supported & set(tags):
            found.setdefault((name, version), []).append(wheel)
    pins = {}
    for line in lines:
        spec = line.split()[0].split(";")[0]
        name, sep, version = spec.partition("==")
        if not sep or not name or not version:
            raise ValueError(f"not a pin: {line!r}")
        wheels = found.get((canonicalize_name(name), Version(version)), [])
        if len(wheels) != 1:
            raise ValueError(f"{spec}: {len(wheels)} wheels in {wheelhouse}")
        pins[spec] = wheels[0]
    return pins


def wheel_targets(wheel: Path) -> set[str]:
    """What installing `wheel` writes, as comparable keys: each file by install scheme (site-packages for
    root, purelib and platlib files; scripts; data; headers) and each console or GUI script pip generates."""
    import configparser

    targets = set()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            head, _, rest = name.partition("/")
            if head.endswith(".data") and rest:
                scheme, _, path = rest.partition("/")
                targets.add(f"{'lib' if scheme in ('purelib', 'platlib') else scheme}:{path}")
            else:
                targets.add(f"lib:{name}")
            if name.endswith(".dist-info/entry_points.txt") and name.count("/") == 1:
                eps = configparser.ConfigParser(delimiters=("=",), interpolation=None)
                eps.optionxform = str  # script names keep their case
                eps.read_string(zf.read(name).decode("utf-8"))
                for section in ("console_scripts", "gui_scripts"):
                    if eps.has_section(section):
                        targets.update(f"scripts:{script.strip()}" for script in eps[section])
    return targets


def install_shares(pins: dict[str, Path], jobs: int, targets=wheel_targets) -> list[list[str]]:
    """The pins dealt into at most `jobs` non-empty shares of about equal wheel size (largest first, each to
    the lightest share); pins whose wheels write a same path (`targets`) travel together in one share."""
    owner: dict[str, str] = {}
    parent = {spec: spec for spec in pins}

    def root(spec: str) -> str:
        while parent[spec] != spec:
            parent[spec] = parent[parent[spec]]
            spec = parent[spec]
        return spec

    for spec, wheel in pins.items():
        for target in targets(wheel):
            other = owner.setdefault(target, spec)
            if other != spec:
                parent[root(spec)] = root(other)
    groups: dict[str, list[str]] = {}
    for spec in pins:
        groups.setdefault(root(spec), []).append(spec)
    size = {spec: pins[spec].stat().st_size for spec in pins}
    weighted = sorted(groups.values(), key=lambda g: (-sum(size[s] for s in g), g))
    shares: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(weighted))))] if weighted else []
    loads = [0] * len(shares)
    for group in weighted:
        i = loads.index(min(loads))
        shares[i].extend(group)
        loads[i] += sum(size[s] for s in group)
    return shares


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
