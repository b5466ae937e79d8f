"""The fence's watcher: popek's nftables table (fence.py) put back the moment something deletes it.

Debian's /etc/nftables.conf starts with `flush ruleset`: the owner's `systemctl reload nftables` (or any
`nft -f` of such a file) deletes every table, popek's too, and the guests are unfenced until the next
`popek cloud up` or `popek run`. This process, one more supervised service of the dataplane cloud
(dataplane.services: started with the cloud, stopped by `down`, restarted by `up`'s repair when it died,
shown by `status`), listens to `nft -j monitor tables` (the kernel announces each table deleted as it
happens) and, when popek's table is deleted, re-applies it (fence.apply: popek's table only, one
transaction; no other table is read or changed: the owner's ruleset stays as the owner loaded it).

Not a loop: fence.apply itself deletes and re-creates the table in one transaction, so every apply (ours,
`up`'s) is announced as a delete too. A delete event only leads to `nft list table inet popek`: the table is
re-applied only when nft says it is really gone (ABSENT). Our own re-application is then PRESENT when its
delete event is read. On top of that, at most MAX_REAPPLY re-applications per WINDOW seconds (someone
deleting it in a loop is said once in the log, not fought forever); the periodic check (every PERIOD s, and
each time the monitor starts: events before it listened are not announced) catches up afterwards.

One French line per re-application in its log (the cloud's log directory, fence-watch.log). The monitor
ending is said and it is started again; nft missing (or the monitor failing again and again) ends this
process with the reason in its log: `popek cloud status` then shows the service stopped, `up` restarts it.

Run as `python -m popek.checks.localcloud.fence_watch [--ovs-rundir=DIR] IFACE...` (the cloud's interfaces, as
`up` fences them; DIR: popek's Open vSwitch, whose integration bridge's ports are the guests' taps each
re-application puts back in the set guest_taps, fence.guest_taps).
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Callable

from popek.checks.localcloud import fence

#: Its name in the cloud's process table (and its log's).
SERVICE = "fence-watch"
FAMILY = "inet"
#: The rate bound: at most this many re-applications per WINDOW seconds.
MAX_REAPPLY = 10
WINDOW = 60.0
#: Seconds between two checks of the table when nft announces nothing.
PERIOD = 10.0
#: The monitor ended this many times within MONITOR_WINDOW s: nft cannot listen, this process ends.
MONITOR_FAILURES = 5
MONITOR_WINDOW = 30.0
MONITOR = ("nft", "-j", "monitor", "tables")


def deleted_table(line: str) -> tuple[str, str] | None:
    """(family, name) of the table a `delete` event of `nft -j monitor tables` announces, else None
    (an `add`, another object, a line that is not JSON)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    deleted = event.get("delete") if isinstance(event, dict) else None
    table = deleted.get("table") if isinstance(deleted, dict) else None
    if not isinstance(table, dict):
        return None
    return table.get("family"), table.get("name")


class Watcher:
    """The decision: re-apply popek's table when, and only when, nft says it is gone.

    reading: fence.reading (PRESENT, ABSENT, UNREADABLE, NO_NFT); apply: puts the table back (fence.apply
    with the cloud's interfaces), returns its French line or raises fence.FenceError; log: one line each."""

    def __init__(self, reading: Callable[[], str], apply: Callable[[], str], log: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic, limit: int = MAX_REAPPLY, window: float = WINDOW):
        self.reading, self.apply, self.log, self.clock = reading, apply, log, clock
        self.limit, self.window = limit, window
        self.recent: list[float] = []   # clock() of each re-application within the window
        self.held_back = False          # the rate bound was said (once until it lifts)
        self.unreadable_said = False

    def event(self, line: str) -> bool:
        """One line of the monitor; True when it led to a re-application. Only the deletion of popek's own
        table (inet popek) is looked at: every other table's events are ignored."""
        if deleted_table(line) != (FAMILY, fence.TABLE):
            return False
        return self.check("suppression annoncée par nft monitor")

    def check(self, why: str) -> bool:
        """Re-apply when nft says the table is really gone; True when it was re-applied."""
        start = self.clock()
        seen = self.reading()
        if seen != fence.ABSENT:
            if seen in (fence.UNREADABLE, fence.NO_NFT) and not self.unreadable_said:
                self.unreadable_said = True
                self.log(f"garde de la clôture : {fence.status(seen)}")
            return False  # present: our own (or `up`'s) apply, or someone already put it back
        self.recent = [t for t in self.recent if start - t < self.window]
        if len(self.recent) >= self.limit:
            if not self.held_back:
                self.held_back = True
                self.log(f"clôture des instances supprimée {len(self.recent)} fois en moins de {self.window:.0f} s : "
                         "quelqu'un la retire en boucle ; remise suspendue jusqu'à la fin de cette fenêtre, puis "
                         f"reprise au contrôle suivant (toutes les {PERIOD:.0f} s)")
            return False
        self.held_back = False
        try:
            said = self.apply()
        except fence.FenceError as exc:
            self.log(f"clôture des instances absente ({why}) et pas remise : {exc}")
            return False
        self.recent.append(self.clock())
        self.log(f"clôture des instances retirée par le pare-feu de la machine ({why}) : remise par popek en "
                 f"{self.clock() - start:.2f} s, les autres tables de la machine non touchées — {said}")
        return True


def _log(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


def lines(fd: int, on_line: Callable[[str], None], on_idle: Callable[[], None], period: float = PERIOD) -> None:
    """Read `fd` until its end, one call of on_line per complete line; on_idle each `period` s of silence."""
    buf = b""
    while True:
        ready, _, _ = select.select([fd], [], [], period)
        if not ready:
            on_idle()
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        *complete, buf = (buf + chunk).split(b"\n")
        for raw in complete:
            on_line(raw.decode(errors="replace"))


#: popek's integration bridge (dataplane.INT_BRIDGE; not imported: this process imports fence only).
INT_BRIDGE = "popek-int"


def taps_of(rundir: str | None, interfaces: tuple[str, ...]) -> tuple[str, ...]:
    """The guests' taps to fence at a re-application: () without popek's Open vSwitch run directory."""
    if not rundir:
        return ()
    return fence.taps_now(rundir, INT_BRIDGE, interfaces)


def main(argv: list[str]) -> int:
    rundir = next((a.split("=", 1)[1] for a in argv if a.startswith("--ovs-rundir=")), None)
    interfaces = tuple(a for a in argv if not a.startswith("--"))
    if not interfaces:
        _log("garde de la clôture : aucune interface du cloud donnée")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `down`: the monitor (our session) goes too
    watcher = Watcher(fence.reading, lambda: fence.apply(interfaces, taps=taps_of(rundir, interfaces)), _log)
    ended: list[float] = []
    while True:
        try:
            monitor = subprocess.Popen(MONITOR, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        except OSError as exc:
            _log(f"garde de la clôture arrêtée : `{' '.join(MONITOR)}` ne démarre pas ({exc.strerror}) ; "
                 "paquet nftables ? `popek cloud up` la relance")
            return 1
        _log(f"garde de la clôture : à l'écoute de `{' '.join(MONITOR)}` (table {FAMILY} {fence.TABLE})")
        watcher.check("absence constatée au démarrage de l'écoute")   # a deletion before the monitor listened
        try:
            lines(monitor.stdout.fileno(), watcher.event, lambda: watcher.check("absence constatée au contrôle périodique"))
        finally:
            if monitor.poll() is None:
                monitor.kill()
            rc = monitor.wait()
        now = time.monotonic()
        ended = [t for t in ended if now - t < MONITOR_WINDOW] + [now]
        if len(ended) >= MONITOR_FAILURES:
            _log(f"garde de la clôture arrêtée : `{' '.join(MONITOR)}` s'est arrêté {len(ended)} fois en moins de "
                 f"{MONITOR_WINDOW:.0f} s (dernier code {rc}) ; `popek cloud up` la relance")
            return 1
        _log(f"`{' '.join(MONITOR)}` s'est arrêté (code {rc}) : relancé")
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
