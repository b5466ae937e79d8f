"""Copy-on-write kept shared across the cloud's forks: runs INSIDE the cloud's own venv, at every interpreter
start (the wheel's `popek_forkfreeze.pth`); popek itself never imports it.

The services fork after importing everything: cotyledon's master (oslo.service's threading backend: nova-
conductor, nova-scheduler, cinder-volume, the neutron agents and RPC server) forks its one worker, popek's
privsep fork server forks each privsep daemon. Both halves then hold the same pages until something writes
to them, and CPython's cyclic garbage collector writes into every container object it visits: the first full
collection in either half copies nearly every page of the heap. `gc.freeze()` just before the fork moves what
exists into the permanent generation, which the collector never visits, so those pages stay shared.

Measured here (nova.conductor.manager, nova.objects, oslo.messaging, sqlalchemy imported, then a fork and
three full collections in the child): parent + child 163 MiB PSS without, 107 MiB with.

Only the first fork of a process freezes: a process that forks often (processutils' preexec_fn, gunicorn
respawns) must not move its live objects out of the collector's reach each time. A child inherits the frozen
generation (its count is not 0), so it never freezes again either.

The hook runs before EVERY fork (os.fork, and subprocess with a preexec_fn: every oslo.concurrency execute),
so it must cost nothing after the first: gc.get_freeze_count() walks the whole permanent generation (CPython
3.11 counts the list), 11-12 ms for a privsep daemon's 228 000 frozen objects, measured, and pyroute2 forks
once per netlink socket opened in a namespace. A module flag, inherited by the fork, answers from then on.
"""
import gc
import os

_checked = False


def _freeze_once() -> None:
    global _checked
    if _checked:
        return
    _checked = True
    if gc.get_freeze_count() == 0:
        gc.freeze()


def install() -> None:
    os.register_at_fork(before=_freeze_once)
