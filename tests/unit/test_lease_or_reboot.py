"""compute.lease_or_reboot: a tiny guest that missed its DHCP lease is hard-rebooted once, and said so."""
from types import SimpleNamespace

from popek.checks.cloud import compute

MARK = "popek-tiny: ready"


class FakeCompute:
    def __init__(self, consoles):
        self.consoles, self.reboots = list(consoles), []

    def get_server_console_output(self, server, length=400):
        return {"output": self.consoles.pop(0) if len(self.consoles) > 1 else self.consoles[0]}

    def reboot_server(self, server, kind):
        self.reboots.append(kind)

    def get_server(self, server_id):   # the reboot's wait_active: ACTIVE at once
        return SimpleNamespace(id=server_id, name="s", status="ACTIVE", task_state=None)


def _run(consoles):
    fake = FakeCompute(consoles)
    note = compute.lease_or_reboot(SimpleNamespace(compute=fake), SimpleNamespace(id="s", name="s"), MARK, timeout=5)
    return note, fake.reboots


def test_a_guest_with_its_lease_is_left_alone():
    assert _run([f"{MARK} g1 10.0.0.5/24\n"]) == (None, [])


def test_a_guest_without_lease_is_rebooted_once_and_it_is_told():
    first = f"udhcpc: no lease, failing\n{MARK} g1 \n"
    note, reboots = _run([first, first, first + f"{MARK} g1 10.0.0.5/24\n"])
    assert reboots == ["HARD"] and "10.0.0.5/24" in note and "DHCP" in note
