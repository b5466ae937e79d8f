"""storage.wait_volume: a volume stuck in a transitional status names the embedded cloud's frozen or dead Cinder
service as soon as that evidence is there (after VOLUME_GRACE), instead of openstacksdk's bare timeout 120 s in.
Live (2026-12-07, cinder-volume frozen by SIGSTOP, C15/C23): see tests/integration/test_faults_more.py."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import connection, storage

CINDER_VOLUME_FROZEN = ["cinder-volume est gelé (processus 12655 à l'état T : arrêté par un signal)"]


class Volumes:
    """A block_storage proxy whose volume goes through `statuses` (the last one stays)."""

    def __init__(self, statuses):
        self.statuses, self.calls = list(statuses), 0

    def get_volume(self, _id):
        self.calls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return NS(id="v", name="popek-x-vol", status=status)


def conn(*statuses):
    return NS(block_storage=Volumes(statuses))


@pytest.fixture
def trouble(monkeypatch):
    seen = []
    monkeypatch.setattr(connection, "embedded_trouble", lambda: list(seen))
    monkeypatch.setattr(storage, "VOLUME_GRACE", 0.0)
    return seen


def test_a_frozen_cinder_volume_is_named_at_once_after_the_grace(trouble):
    trouble.extend(CINDER_VOLUME_FROZEN)
    c = conn("creating")
    with pytest.raises(AssertionError, match=r"reste « creating » depuis \d+ s \(création\) ; sur le cloud embarqué : "
                                             r"cinder-volume est gelé"):
        storage.wait_volume(c, NS(id="v", name="popek-x-vol"), "available", ("error",), 120, "création")
    assert c.block_storage.calls == 1


def test_a_frozen_service_off_the_volume_path_is_not_blamed(trouble):
    trouble.append("swift-proxy est gelé (processus 1 à l'état T : arrêté par un signal)")
    with pytest.raises(AssertionError, match=r"n'est pas « available » après 1 s \(création\) : il reste « creating »"):
        storage.wait_volume(conn("creating"), NS(id="v", name="popek-x-vol"), "available", ("error",), 1, "création")


def test_error_and_success(trouble):
    with pytest.raises(AssertionError, match="est passé en « error_attaching » \\(attachement"):
        storage.wait_volume(conn("attaching", "error_attaching"), NS(id="v", name="x"), "in-use",
                            ("error", "error_attaching"), 30, "attachement à s", storage.ATTACH_PATH)
    assert storage.wait_volume(conn("creating", "available"), NS(id="v", name="x"), "available", ("error",), 30,
                               "création").status == "available"


def test_nova_compute_frozen_is_named_for_an_attachment_only(trouble):
    trouble.append("nova-compute est gelé (processus 2 à l'état T : arrêté par un signal)")
    with pytest.raises(AssertionError, match="sur le cloud embarqué : nova-compute est gelé"):
        storage.wait_volume(conn("attaching"), NS(id="v", name="x"), "in-use", ("error",), 30, "attachement à s",
                            storage.ATTACH_PATH)
    with pytest.raises(AssertionError, match="n'est pas « available » après"):
        storage.wait_volume(conn("creating"), NS(id="v", name="x"), "available", ("error",), 1, "création")
