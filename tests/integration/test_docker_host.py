"""A good guest on a laptop that runs a real Docker (the most common thing on a student's machine).

Debian's own `docker.io` is installed with the machine's apt and `dockerd` started for real (in the
background, as on a host without systemd); an image is made locally with `docker import` from
busybox-static (Docker Hub is not needed), and two containers of the owner's serve a page: one on the
default bridge (docker0) publishing 18080, one on a user-defined bridge network publishing 18081, both
restarted by Docker itself (`--restart unless-stopped`). Docker turns on `net.ipv4.ip_forward`, sets the
FORWARD policy to DROP, adds its DOCKER chains, its DNAT of the published ports for every local address and
its MASQUERADE.

With that, and the embedded cloud up (dataplane), under `flock -x /tmp/popek-cloud.lock`:
- a tiny guest of the cloud on the shared network `public` reaches nothing of Docker's: neither the
  bridges' gateway addresses (172.17.0.1, the user network's) on the published ports, nor the containers'
  addresses, nor the published ports on the host's own addresses (the cloud's gateway 198.51.100.1, the
  uplink's) — Docker's DNAT would hand those to the containers;
- the control: with popek's fence lifted for a moment the same guest reaches the container (Docker's own
  FORWARD rules accept traffic to a published port from any interface), so the probe can see a leak;
- Docker's rules (iptables-save without counters) and its containers are as they were, and the containers
  answer from the host before, during and after;
- `dockerd` restarted while the cloud runs (it rewrites its chains): every service of the cloud still up,
  popek's fence still there, the guest still reaches nothing of Docker's, the containers back and answering.

At the end everything Docker brought is undone: containers, network, image, dockerd, its nftables tables,
docker0 and the user bridge, ip_forward and bridge-nf-call-* as recorded, the packages apt added purged, the
`docker` group and Docker's directories gone. Refuses to run when a Docker of the machine's already runs.

Opt-in (POPEK_SLOW_FAULTS=1): it installs and purges packages (apt must be reachable) and changes the host's
firewall for everyone; live 2026-12-07: 44 s (setup 17 s, call 21 s, teardown 4 s; 96 s before a stopped
dockerd was reaped at once). Not in CI: it needs apt, and its one teardown that broke half-way (a containerd
gone between pgrep and /proc, since tolerated) left Docker's firewall on the host until `... down` was rerun.

    python tests/integration/test_docker_host.py up      # Docker installed and running, the owner's containers
    python tests/integration/test_docker_host.py check   # the containers answer from the host
    python tests/integration/test_docker_host.py restart # dockerd stopped and started again (it rewrites its chains)
    python tests/integration/test_docker_host.py down    # everything Docker brought, gone
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults import slow  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.cloud,
              slow("un vrai Docker installé puis purgé (~1–2 min), le pare-feu de l'hôte changé pour tous",
                   " (sous flock -x)")]

DOCKER_APT = ("docker.io", "busybox-static")
DOCKER, DOCKERD = "/usr/bin/docker", "/usr/sbin/dockerd"
IMAGE = "popek-docker-busybox:local"
NET = "popek-docker-net"
WEB, NETWEB = "popek-docker-web", "popek-docker-netweb"
PORTS = {WEB: 18080, NETWEB: 18081}
PAGE = "popek-docker: the owner's page"
STATE = Path("/run/popek-docker-host")
SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
           "net/bridge/bridge-nf-call-arptables")
#: what Docker creates when it runs, removed at the end when it was not there before
DOCKER_DIRS = ("/var/lib/docker", "/var/lib/containerd", "/etc/docker", "/run/docker", "/run/containerd")
#: the account files apt's `groupadd docker` rewrites (with their `-` backups)
ACCOUNT_FILES = ("/etc/group", "/etc/group-", "/etc/gshadow", "/etc/gshadow-")


def _run(*argv: str, check: bool = True, input: str | bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=not isinstance(input, bytes), check=check,
                          timeout=timeout, input=input)


def _installed() -> set[str]:
    out = _run("dpkg-query", "-W", "-f=${Package} ${Status}\n").stdout
    return {l.split()[0] for l in out.splitlines() if l.endswith("install ok installed")}


def _nft_tables() -> list[str]:
    return [l.strip() for l in _run("nft", "list", "tables").stdout.splitlines() if l.strip()]


def _docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return _run(DOCKER, *args, check=check, timeout=timeout)


def docker_answers() -> bool:
    return _run(DOCKER, "info", check=False, timeout=20).returncode == 0


def foreign_docker() -> str | None:
    """Why a Docker of the machine's own is there (then this test leaves it alone), else None."""
    if Path("/var/run/docker.sock").exists() or Path("/run/docker.sock").exists():
        return "un démon Docker de la machine tourne déjà (/var/run/docker.sock)"
    if _run("pgrep", "-x", "dockerd", check=False).returncode == 0:
        return "un dockerd de la machine tourne déjà"
    if not _installed().isdisjoint({"docker.io", "docker-ce", "containerd", "containerd.io"}):
        if not STATE.joinpath("record.json").exists():
            return "Docker est déjà installé sur la machine (pas par ce test)"
    return None


def _record() -> dict:
    STATE.mkdir(mode=0o700, exist_ok=True)
    path = STATE / "record.json"
    if path.exists():  # an `up` before this one: its record is the machine before Docker
        return json.loads(path.read_text())
    for f in ACCOUNT_FILES:
        if Path(f).exists():
            shutil.copy2(f, STATE / Path(f).name)
    record = {"packages": sorted(_installed()), "nft_tables": _nft_tables(),
              "sysctls": {k: Path("/proc/sys", k).read_text().strip() for k in SYSCTLS if Path("/proc/sys", k).exists()},
              "dirs": [d for d in DOCKER_DIRS if Path(d).exists()],
              "docker_group": _run("getent", "group", "docker", check=False).returncode == 0,
              "dockerd_pid": None}
    path.write_text(json.dumps(record))
    return record


def _save(record: dict) -> None:
    (STATE / "record.json").write_text(json.dumps(record))


def start_dockerd(record: dict) -> int:
    log = open(STATE / "dockerd.log", "ab")
    proc = subprocess.Popen([DOCKERD], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    record["dockerd_pid"] = proc.pid
    _STARTED[proc.pid] = proc
    _save(record)
    deadline = time.monotonic() + 60
    while not docker_answers():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dockerd ne répond pas : {(STATE / 'dockerd.log').read_text()[-800:]}")
        time.sleep(0.5)
    return proc.pid


def stop_dockerd(record: dict) -> None:
    pid = record.get("dockerd_pid")
    if pid and _alive(pid, "dockerd"):
        os.kill(pid, 15)
        deadline = time.monotonic() + 30
        while _alive(pid, "dockerd") and time.monotonic() < deadline:
            time.sleep(0.3)
        if _alive(pid, "dockerd"):
            os.kill(pid, 9)
    record["dockerd_pid"] = None
    _save(record)


#: the dockerd processes started here: {pid: Popen}, so that a stopped one is reaped (a zombie is no daemon)
_STARTED: dict[int, subprocess.Popen] = {}


def _alive(pid: int, name: str) -> bool:
    if pid in _STARTED:
        return _STARTED[pid].poll() is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return Path(f"/proc/{pid}/comm").read_text().strip() == name and stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _image_tar() -> bytes:
    """A root filesystem of one static busybox, its `sh` and a page, as a tar for `docker import`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "www", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add("/bin/busybox", "bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
        page = (PAGE + "\n").encode()
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(page), 0o644
        tar.addfile(info, io.BytesIO(page))
    return buf.getvalue()


def up(log=print) -> dict:
    """Docker installed (the machine's apt) and running, the owner's image, network and two containers.
    Returns {"containers": {name: {"ip", "gateway", "port"}}}."""
    why = foreign_docker()
    if why:
        raise RuntimeError(why)
    record = _record()
    new = [p for p in DOCKER_APT if p not in _installed()]
    if new:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *new], capture_output=True,
                              text=True, env=env, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"apt-get install {' '.join(new)} : {proc.stderr[-600:]}")
        log(f"apt : {' '.join(sorted(_installed() - set(record['packages'])))}")
    if not docker_answers():
        start_dockerd(record)
    if _docker("image", "inspect", IMAGE, check=False).returncode != 0:
        _run(DOCKER, "import", "-", IMAGE, input=_image_tar())
    if _docker("network", "inspect", NET, check=False).returncode != 0:
        _docker("network", "create", NET)
    for name, extra in ((WEB, []), (NETWEB, ["--network", NET])):
        if _docker("container", "inspect", name, check=False).returncode != 0:
            _docker("run", "-d", "--restart", "unless-stopped", "--name", name, *extra, "-p", f"{PORTS[name]}:80",
                    IMAGE, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
    return containers()


def containers(wait: float = 30) -> dict:
    """{name: {"ip", "gateway", "port", "pid"}} of the owner's containers once both run (waits `wait` s)."""
    deadline = time.monotonic() + wait
    while True:
        found = {}
        for name in (WEB, NETWEB):
            out = _docker("inspect", name, check=False)
            if out.returncode != 0:
                continue
            info = json.loads(out.stdout)[0]
            nets = list(info["NetworkSettings"]["Networks"].values())
            if info["State"]["Running"] and nets and nets[0]["IPAddress"]:
                found[name] = {"ip": nets[0]["IPAddress"], "gateway": nets[0]["Gateway"], "port": PORTS[name],
                               "pid": info["State"]["Pid"]}
        if len(found) == 2 or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def host_addresses() -> list[str]:
    """The host's own global IPv4 addresses (Docker's DNAT serves the published ports on each of them)."""
    out = json.loads(_run("ip", "-j", "-4", "addr", "show").stdout or "[]")
    return sorted({a["local"] for link in out for a in link.get("addr_info", []) if a.get("scope") == "global"})


def owner_answers(found: dict) -> dict[str, bool]:
    """The owner's page from the host: each container's address, each published port on 127.0.0.1 and on
    the host's addresses outside Docker's bridges."""
    import urllib.request

    gateways = {c["gateway"] for c in found.values()}
    urls = [f"http://{c['ip']}/" for c in found.values()]
    for address in ["127.0.0.1", *[a for a in host_addresses() if a not in gateways]]:
        urls += [f"http://{address}:{c['port']}/" for c in found.values()]
    seen = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                seen[url] = PAGE in r.read().decode()
        except OSError:
            seen[url] = False
    return seen


def docker_rules() -> list[str]:
    """Docker's rules: iptables-save (its nftables backend) without counters nor comments, sorted."""
    out = _run("iptables-save", check=False).stdout
    return sorted(re.sub(r" \[\d+:\d+\]", "", l) for l in out.splitlines() if l and not l.startswith("#"))


def restart_dockerd() -> dict:
    record = json.loads((STATE / "record.json").read_text())
    stop_dockerd(record)
    start_dockerd(record)
    return containers(wait=60)


def down(log=print) -> list[str]:
    """Everything `up` brought, gone; returns what still differs from the record (empty: the machine as before)."""
    path = STATE / "record.json"
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    if docker_answers():
        _docker("rm", "-f", WEB, NETWEB, check=False)
        _docker("network", "rm", NET, check=False)
        _docker("rmi", IMAGE, check=False)
    stop_dockerd(record)
    for name in ("containerd-shim-runc-v2", "containerd-shim", "containerd"):  # dockerd's own children, if left
        for pid in _run("pgrep", "-x", name, check=False).stdout.split():
            try:  # gone between pgrep and here: nothing to stop
                if os.readlink(f"/proc/{pid}/exe").startswith("/usr/bin/containerd"):
                    os.kill(int(pid), 15)
            except OSError:
                continue
    for table in _nft_tables():
        if table not in record["nft_tables"]:
            _run("nft", "delete", *table.split(), check=False)
    for link in json.loads(_run("ip", "-j", "link", "show").stdout or "[]"):
        name = link["ifname"]
        if name == "docker0" or re.fullmatch(r"br-[0-9a-f]{12}|veth[0-9a-f]{7}", name):
            _run("ip", "link", "delete", name, check=False)
    for key, value in record["sysctls"].items():
        Path("/proc/sys", key).write_text(value + "\n")
    for mount in sorted((l.split()[4] for l in Path("/proc/self/mountinfo").read_text().splitlines()), reverse=True):
        if mount.startswith(("/var/lib/docker", "/run/docker", "/var/lib/containerd", "/run/containerd")):
            _run("umount", mount, check=False)
    added = sorted(_installed() - set(record["packages"]))
    if added:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(["apt-get", "purge", "-y", *added], capture_output=True, text=True, env=env, timeout=600)
        log(f"apt purge {' '.join(added)} : rc {proc.returncode}")
    for d in DOCKER_DIRS:
        if d not in record["dirs"] and Path(d).exists():
            shutil.rmtree(d, ignore_errors=True)
    if not record["docker_group"] and _run("getent", "group", "docker", check=False).returncode == 0:
        _run("groupdel", "docker", check=False)
    for base in ("/etc/group", "/etc/gshadow"):  # groupadd/groupdel rewrote them and their `-` backups: both
        saved = STATE / Path(base).name               # back byte for byte when nothing but the docker group changed
        if not saved.exists() or not Path(base).exists():
            continue
        strip = lambda text: [l for l in text.splitlines() if not l.startswith("docker:")]  # noqa: E731
        if strip(Path(base).read_text()) == strip(saved.read_text()):
            for f in (base, base + "-"):
                if (STATE / Path(f).name).exists():
                    shutil.copy2(STATE / Path(f).name, f)
    left = []
    if sorted(_installed()) != record["packages"]:
        left.append(f"paquets : {sorted(set(_installed()) ^ set(record['packages']))}")
    if not record["docker_group"] and _run("getent", "group", "docker", check=False).returncode == 0:
        left.append("groupe docker")
    left += [f"{d} reste" for d in DOCKER_DIRS if d not in record["dirs"] and Path(d).exists()]
    if _nft_tables() != record["nft_tables"]:
        left.append(f"tables nft : {_nft_tables()} au lieu de {record['nft_tables']}")
    for key, value in record["sysctls"].items():
        if Path("/proc/sys", key).read_text().strip() != value:
            left.append(f"{key} != {value}")
    if not left:
        shutil.rmtree(STATE)
    return left


# --- the test ---------------------------------------------------------------------------------------

import test_fence  # noqa: E402  (its guest fixtures and probe, shared)

dp_cloud, public_guest, probe_from_guest = test_fence.dp_cloud, test_fence.public_guest, test_fence.probe_from_guest


@pytest.fixture
def docker_host():
    """The cloud's lock, exclusive (the host's firewall changes for everyone), then a real Docker; undone after."""
    from helpers import cloud_lock_exclusive

    if os.geteuid() != 0 or shutil.which("apt-get") is None or shutil.which("nft") is None:
        pytest.skip("il faut être root avec apt-get et nft (Docker installé puis purgé)")
    why = foreign_docker()
    if why:
        pytest.skip(f"{why} : ce test n'y touche pas")
    with cloud_lock_exclusive(900, "Docker change le pare-feu de l'hôte pour tous"):
        try:
            yield up(log=lambda line: None)
        finally:
            left = down(log=lambda line: None)
            assert not left, f"Docker pas entièrement défait : {left}"


def test_a_real_docker_keeps_its_containers_and_rules_and_popeks_guests_reach_none_of_it(docker_host, dp_cloud,
                                                                                         public_guest):
    from popek.checks.cloud import diagnosis
    from popek.checks.localcloud import bootstrap, fence, lifecycle

    state, _ = dp_cloud
    found = docker_host
    assert set(found) == {WEB, NETWEB}, f"conteneurs du propriétaire pas démarrés : {found}"
    assert all(owner_answers(found).values()), owner_answers(found)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    rules = docker_rules()
    assert ":FORWARD DROP" in rules and any("DNAT" in r for r in rules), rules
    assert fence.present(), "pas de table nftables inet popek : `popek cloud up` aurait dû la poser"
    saved = _run("nft", "list", "table", "inet", fence.TABLE).stdout
    gateway = bootstrap.PUBLIC_GATEWAY

    def targets() -> list[tuple[str, int]]:
        out = []
        for c in found.values():
            out += [(c["ip"], 80), (c["gateway"], c["port"])]
        for address in {gateway, *host_addresses()} - {c["gateway"] for c in found.values()}:
            out += [(address, c["port"]) for c in found.values()]
        return sorted(set(out))

    report = {"containers": found, "fence": probe_from_guest(public_guest, targets())}
    web = found[WEB]
    control = [(web["ip"], 80), (gateway, web["port"])]
    import contextlib

    from helpers import frozen
    from popek.checks.localcloud import fence_watch, services
    watched = services.read_pid(state, fence_watch.SERVICE) is not None  # else it puts the fence back at once
    with (frozen(state, fence_watch.SERVICE) if watched else contextlib.nullcontext()):
        fence.remove()
        try:
            report["no fence (control)"] = probe_from_guest(public_guest, control)
        finally:
            _run("nft", "-f", "-", input=f"table inet {fence.TABLE}\ndelete table inet {fence.TABLE}\n{saved}")
    report["rules unchanged"] = docker_rules() == rules
    # the host's own traffic to the guest (SSH and ping, traced): Docker's FORWARD DROP and chains drop none of it
    report["host firewall drops (diagnosis)"] = diagnosis.host_firewall_drops(public_guest["address"])
    report["owner answers"] = owner_answers(found)
    found_after = restart_dockerd()
    report["after dockerd restart"] = {"containers": found_after, "owner answers": owner_answers(found_after)}
    _, rows = lifecycle.status(state)
    report["after dockerd restart"]["cloud"] = f"{sum(r.ok for r in rows)}/{len(rows)}"
    report["after dockerd restart"]["fence present"] = fence.present()
    found = found_after
    report["after dockerd restart"]["fence"] = probe_from_guest(public_guest, targets())
    report["after dockerd restart"]["rules"] = sorted(set(docker_rules()) ^ set(rules))
    print(json.dumps(report, indent=1))

    assert not any(report["fence"].values()), f"joignable depuis l'instance malgré la clôture : {report['fence']}"
    assert all(report["no fence (control)"].values()), \
        f"contrôle : sans clôture l'instance aurait dû joindre le conteneur : {report['no fence (control)']}"
    assert report["rules unchanged"], sorted(set(docker_rules()) ^ set(rules))
    assert report["host firewall drops (diagnosis)"] is None, report["host firewall drops (diagnosis)"]
    assert all(report["owner answers"].values()), report["owner answers"]
    after = report["after dockerd restart"]
    assert set(found_after) == {WEB, NETWEB} and all(after["owner answers"].values()), after
    assert rows and all(r.ok for r in rows), [r for r in rows if not r.ok]
    assert after["fence present"] and not any(after["fence"].values()), after


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    if argv[:1] == ["up"]:
        print(json.dumps(up(), indent=1))
    elif argv[:1] == ["check"]:
        seen = owner_answers(containers(wait=0))
        print(json.dumps(seen, indent=1))
        return 0 if seen and all(seen.values()) else 1
    elif argv[:1] == ["restart"]:
        print(json.dumps(restart_dockerd(), indent=1))
    elif argv[:1] == ["down"]:
        left = down()
        print("\n".join(left) or "Docker défait, la machine comme avant")
        return 1 if left else 0
    else:
        print(__doc__.split("\n\n")[-1])
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
