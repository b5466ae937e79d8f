"""Debian 13 through an apt of its own: sources, lists, status and cache directories under the image
cache, pointed at the machine's own Debian mirror. The machine's apt setup is never touched."""
from __future__ import annotations

import re
import time
from pathlib import Path

from popek.checks.localcloud.images.shared import SUITE, ImageBuildError, _run


def machine_debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (first `.../debian` URI), so the guests come from the
    same registry as the host's packages."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    for text in texts:
        for m in re.finditer(r"(?m)^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            uri = m.group(1).rstrip("/")
            if uri.endswith("/debian"):
                return uri
    raise ImageBuildError("no Debian mirror found in /etc/apt/sources.list{,.d}")


class TrixieApt:
    """apt-get/apt-cache pointed at Debian 13 with its own sources, lists, status and cache under `root`.

    root: directory for apt's state; mirror: Debian mirror URI.
    """

    def __init__(self, root: Path, mirror: str):
        self.root = root
        self.mirror = mirror
        self.archives = root / "cache" / "archives"
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.archives / "partial").mkdir(parents=True, exist_ok=True)
        (root / "sources.list").write_text(
            f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {SUITE} main\n")
        (root / "status").touch()

    def _opts(self) -> list[str]:
        r = self.root
        return ["-o", f"Dir::Etc::SourceList={r}/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
                "-o", f"Dir::State::Lists={r}/lists", "-o", f"Dir::State::status={r}/status",
                "-o", f"Dir::Cache={r}/cache", "-o", "Dir::Etc::Preferences=/nonexistent",
                "-o", "Dir::Etc::PreferencesParts=/nonexistent", "-o", "APT::Sandbox::User=root"]

    def update(self, max_age_s: float = 6 * 3600) -> None:
        """Refresh the package lists unless they are younger than `max_age_s`."""
        stamp = self.root / "lists" / ".updated"
        if stamp.exists() and time.time() - stamp.stat().st_mtime < max_age_s:
            return
        _run(["apt-get", *self._opts(), "update"])
        stamp.touch()

    def depends(self, package: str) -> list[str]:
        """The names `package` depends on directly (first alternative of each)."""
        out = _run(["apt-cache", *self._opts(), "show", "--no-all-versions", package]).stdout
        m = re.search(r"(?m)^Depends: (.*)$", out)
        if not m:
            return []
        return [alt.split("|")[0].split("(")[0].strip() for alt in m.group(1).split(",")]

    def download(self, packages: list[str]) -> list[Path]:
        """Download `packages` (exact names, no dependencies) into the cache; returns the .deb files."""
        _run(["apt-get", *self._opts(), "download", *packages], cwd=self.archives)
        debs = []
        for pkg in packages:
            found = sorted(self.archives.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
            if not found:
                raise ImageBuildError(f"apt-get download {pkg}: no .deb in {self.archives}")
            debs.append(found[-1])
        return debs
