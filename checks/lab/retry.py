"""Retry an idempotent cloud call when the cloud answers with a transient error.

A one-host teaching cloud under a class's load answers now and then with a 5xx (Neutron on sqlite:
"database is locked") or a 409 (a port still being released by a server being deleted). Reading a
project, provisioning a student (idempotent) and deleting a resource can simply be tried again.
"""
from __future__ import annotations

import time


def transient(exc: BaseException) -> bool:
    """True for an HTTP 5xx or 409 from the SDK or keystoneauth."""
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None) or \
        getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 409)


def retry(fn, *args, attempts: int = 4, pause: float = 1.0, **kwargs):
    """fn(*args, **kwargs), tried again (up to `attempts` times, pauses growing from `pause` s) while
    the error is transient(); any other error, or the last one, is raised."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts - 1 or not transient(exc):
                raise
            time.sleep(pause * (attempt + 1))
