"""What a scenario needs, and the one place where an unmet need becomes a skip reason: the registry.

A feature declares its needs as tags (`@needs:kvm`, `@needs:root`, `@needs:qemu-system`, …), like
kvm-unit-tests' unittests.cfg declares `accel` and `check`. Each need is a function registered here
that returns None when met, or the French reason why not. Host needs take no argument; cloud needs
take the cloud context as their one argument (the plugin passes it).

This module holds the registry alone and imports no need: the host's are in popek.checks.host.needs,
the cloud's in popek.checks.cloud.needs, each registering itself when imported (the plugin imports both).
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

Reason = Optional[str]
REQUIREMENTS: dict[str, Callable[..., Reason]] = {}


def requirement(name: str):
    """Register `fn` as the check of need `name` (returns None when met, else the reason)."""
    def register(fn):
        REQUIREMENTS[name] = fn
        return fn
    return register


def takes_cloud(name: str) -> bool:
    return bool(inspect.signature(REQUIREMENTS[name]).parameters)


def unmet(name: str, *args) -> Reason:
    """The reason why need `name` is not met, or None. An unknown need is a programming error."""
    try:
        fn = REQUIREMENTS[name]
    except KeyError:
        raise KeyError(f"unknown need {name!r}; known: {', '.join(sorted(REQUIREMENTS))}") from None
    return fn(*args)
