"""One waiting shape for the cloud checks, built on openstacksdk's `iterate_timeout` (issue #19): poll a
value until it is ready or the time is up, and give the caller the last value seen either way (the caller
decides what a timeout means: a False, a French message, an exception)."""
from __future__ import annotations

from typing import Callable, Optional, TypeVar

from openstack import exceptions
from openstack.utils import iterate_timeout

T = TypeVar("T")


def poll(fetch: Callable[[], T], ready: Callable[[T], bool], timeout: float, wait: float,
         final_look: bool = False) -> Optional[T]:
    """Call `fetch()` every `wait` s until `ready(value)` or `timeout` s pass; returns the last value
    (None if `fetch` was never called, i.e. `timeout` <= 0 without `final_look`).

    final_look: look once more when the time is up (for waits whose last word is a look after the
    deadline, e.g. "list again, then say what is there")."""
    value: Optional[T] = None
    try:
        for _ in iterate_timeout(timeout, "délai d'attente dépassé", wait=wait):
            value = fetch()
            if ready(value):
                return value
    except exceptions.ResourceTimeout:
        if final_look:
            value = fetch()
    return value
