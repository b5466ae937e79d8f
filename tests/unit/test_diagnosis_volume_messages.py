"""A volume gone to « error » is said with what Cinder told the project about it (its user messages, GET
/messages at 3.3), e.g. no backend with room. Forged Cinder answers."""
from types import SimpleNamespace as NS

from popek.checks.cloud import storage

NO_ROOM = {"resource_uuid": "v1", "user_message": "schedule allocate volume:Could not find any available weighted "
                                                  "backend.", "event_id": "VOLUME_000001",
           "created_at": "2026-12-07T13:40:01.000000"}


class Cinder:
    def __init__(self, messages, status=200, fail=False):
        self.messages, self.status, self.fail, self.asked = messages, status, fail, []

    def get_volume(self, vid):
        return NS(id=vid, name="popek-hF-vol", status="error")

    def get(self, path, microversion=None, raise_exc=True):
        self.asked.append((path, microversion))
        if self.fail:
            raise ConnectionError("cinder down")
        return NS(status_code=self.status, json=lambda: {"messages": self.messages})


def failure(cinder) -> str:
    conn = NS(block_storage=cinder)
    try:
        storage.wait_volume(conn, NS(id="v1", name="popek-hF-vol"), "available", ("error",), 5, "création")
    except AssertionError as exc:
        return str(exc)
    raise AssertionError("no failure")


def test_the_error_is_said_with_cinders_message_about_this_volume():
    other = {**NO_ROOM, "resource_uuid": "v2", "user_message": "autre volume"}
    cinder = Cinder([NO_ROOM, other, dict(NO_ROOM)])
    said = failure(cinder)
    assert said == ("le volume popek-hF-vol est passé en « error » (création) ; Cinder dit (openstack volume message "
                    "list) : « schedule allocate volume:Could not find any available weighted backend. » "
                    "(VOLUME_000001, 2026-12-07T13:40:01.000000)")
    assert cinder.asked == [("/messages?sort=created_at:desc&limit=50", "3.3")]


def test_without_messages_or_api_the_error_is_said_alone():
    plain = "le volume popek-hF-vol est passé en « error » (création)"
    assert failure(Cinder([])) == plain
    assert failure(Cinder([], status=404)) == plain
    assert failure(Cinder([], fail=True)) == plain


def test_volume_messages_oldest_first():
    later = {**NO_ROOM, "user_message": "deuxième", "created_at": "2026-12-07T13:41:00"}
    assert [m.split(" »")[0] for m in storage.volume_messages({"messages": [later, NO_ROOM]}, "v1")] == \
        ["« schedule allocate volume:Could not find any available weighted backend.", "« deuxième"]
    assert storage.volume_messages({}, "v1") == [] and storage.volume_messages(None, "v1") == []
