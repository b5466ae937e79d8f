"""`popek cloud status` on a host whose IP forwarding is on (Docker, libvirt's "default" NAT network, a VPN: a
setting of the host's, never popek's): calm and true while popek's fence stops all routing from and to the
cloud, an alarm only without the fence (hG)."""
from popek.checks.localcloud import dataplane


def test_the_hosts_ip_forwarding_is_said_calmly_when_fenced_and_as_an_alarm_when_not():
    assert dataplane.forwarding_note("0", fenced=True) == dataplane.forwarding_note("0", fenced=False) == ""
    calm = dataplane.forwarding_note("1", fenced=True)
    assert "MAIS" not in calm and "pas de popek" in calm and "ne laisse rien router" in calm
    assert dataplane.forwarding_note("1", fenced=False).startswith("MAIS") and "clôture" in \
        dataplane.forwarding_note("1", fenced=False)
