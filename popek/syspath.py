"""The system directories popek's commands are found in, whatever shell started it.

Debian's `su` without `-` (util-linux's, since Debian 10) keeps the user's PATH: a root shell of
/usr/local/bin:/usr/bin:/bin, without /usr/sbin or /sbin. popek runs nft, losetup, mkfs.ext4, chroot, sysctl…
by name: from such a shell `shutil.which("nft")` is None, and before this module `popek cloud status` said
« commande nft absente (paquet nftables) » of a fence in place, `up` refused the fence for the same false
reason and `down` left popek's nftables table and loop devices behind (measured 2026-12-07, hG3).
The CLI appends the system directories that are missing, after the user's own (theirs still win).
"""
from __future__ import annotations

import os

#: Debian's root PATH's system directories (login.defs ENV_SUPATH, sudo's secure_path), in that order.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def with_system_dirs(path: str | None) -> str:
    """`path` (a PATH value; None or "" when unset) with the SYSTEM_DIRS it lacks appended, in their order;
    its own entries keep their order and come first. An entry counts as present with or without a trailing /."""
    entries = [e for e in (path or "").split(os.pathsep) if e]
    have = {e.rstrip("/") or "/" for e in entries}
    return os.pathsep.join(entries + [d for d in SYSTEM_DIRS if d not in have])


def complete_environ(environ=os.environ) -> str:
    """Complete environ["PATH"] in place (see with_system_dirs); returns the new value."""
    environ["PATH"] = with_system_dirs(environ.get("PATH"))
    return environ["PATH"]
