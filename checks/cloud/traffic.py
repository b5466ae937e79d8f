"""Traffic from this host to an instance's floating IP: ping, TCP, SSH with a keypair (paramiko), as
Tempest's scenario tests do. "Blocked" is only ever concluded by the caller after the same guest was
seen reachable in the same scenario: a timeout alone proves nothing (no false pass)."""
from __future__ import annotations

import io
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from popek.checks.cloud.waits import poll


def ping(address: str, timeout: float = 2.0) -> bool:
    """One ICMP echo to `address`, answered within `timeout` seconds (uses the `ping` binary)."""
    wait = max(1, int(round(timeout)))
    result = subprocess.run(["ping", "-n", "-c", "1", "-W", str(wait), address],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return result.returncode == 0


def tcp_open(address: str, port: int = 22, timeout: float = 2.0) -> bool:
    """True when a TCP connection to address:port completes within `timeout` seconds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(probe, timeout: float, interval: float = 1.0) -> bool:
    """Call `probe()` until it returns True or `timeout` seconds pass."""
    return bool(poll(probe, bool, timeout, interval, final_look=True))


class GuestNotAlive(AssertionError):
    """The guest a negative check targets is not proven alive: "no reply" proves nothing then."""


#: Seconds between two rounds of probes in `blocked_each` (a blocked probe's round lasts its own timeout).
ROUND_PAUSE = 0.1


def blocked(probe: Callable[[], bool], alive: Callable[[], bool], grace: float = 30.0) -> bool:
    """True when `probe` fails twice in a row within `grace` s (a rule change takes a moment to apply) and
    `alive()` then proves that the target still runs; False when the probe keeps succeeding.

    Raises GuestNotAlive when the probe failed but the guest could not be proven alive afterwards: a dead
    guest never passes a negative check (no false pass). `alive()` is also asked first, so that the proof
    afterwards is a fresh one (a heartbeat newer than the probes)."""
    return blocked_each({"": probe}, alive, grace)[""]


def blocked_each(probes: dict[str, Callable[[], bool]], alive: Callable[[], bool],
                 grace: float = 30.0) -> dict[str, bool]:
    """`blocked` for several probes of the same guest at once: {name: True when that probe failed twice in
    a row within `grace` s}. The probes of a round run side by side, and the guest is proven alive once
    before and once after them all: two checks of one guest cost one round of timeouts, not two."""
    if not alive():
        raise GuestNotAlive("l'instance visée n'est pas prouvée vivante avant la vérification : "
                            "« bloqué » ne peut pas être conclu")
    streak = dict.fromkeys(probes, 0)

    def one_round() -> dict[str, int]:
        pending = [name for name in probes if streak[name] < 2]
        for name, answered in zip(pending, pool.map(lambda name: probes[name](), pending)):
            streak[name] = 0 if answered else streak[name] + 1
        return streak

    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        # a probe that keeps answering is asked again until `grace` is over: a negative check waits it out
        poll(one_round, lambda counts: all(n >= 2 for n in counts.values()), grace, ROUND_PAUSE)
    verdict = {name: count >= 2 for name, count in streak.items()}
    if any(verdict.values()) and not alive():
        raise GuestNotAlive("aucune réponse, mais l'instance visée n'est pas prouvée vivante : "
                            "« bloqué » ne peut pas être conclu")
    return verdict


class Liveness:
    """Proof that a guest still runs, from the compute API (member credentials): the server is ACTIVE
    and, where its image prints a heartbeat on the serial console (image property `popek_heartbeat`, the
    embedded cloud's tiny image), a newer heartbeat than the last one seen appears in the console log.

    conn: an openstack Connection; server: the server; marker: the heartbeat's prefix, or None."""

    def __init__(self, conn, server, marker: Optional[str], period: float = 3.0):
        self.conn, self.server, self.marker, self.period = conn, server, marker, period
        self.last = self._beat()

    def _beat(self) -> Optional[int]:
        from popek.checks.cloud.compute import console_log

        if not self.marker:
            return None
        # a driver without console output gives "": no heartbeat, status only
        beats = re.findall(re.escape(self.marker) + r" (\d+)", console_log(self.conn, self.server, length=40))
        return int(beats[-1]) if beats else None

    def __call__(self) -> bool:
        from popek.checks.cloud.compute import listed_in

        # with a heartbeat to prove it runs, ACTIVE is asked through the list without details (no Neutron
        # request behind it, compute.listed_in; that filter is Nova's vm_state, so a reboot in progress
        # counts as ACTIVE there: the heartbeat then decides); without one, the server's exact status
        active = listed_in(self.conn, self.server, "ACTIVE") if self.marker else None
        if active is None:
            active = self.conn.compute.get_server(self.server.id).status == "ACTIVE"
        if not active:
            return False
        if not self.marker:
            return True  # an image without heartbeat: ACTIVE is all the API can say
        def newer(beat: Optional[int]) -> bool:
            return beat is not None and (self.last is None or beat > self.last)

        beat = poll(self._beat, newer, 3 * self.period + 2, 1)
        if newer(beat):
            self.last = beat
            return True
        return False


def _pkey(private_key: str):
    import paramiko

    for kind in (paramiko.Ed25519Key, paramiko.RSAKey, paramiko.ECDSAKey):
        try:
            return kind.from_private_key(io.StringIO(private_key))
        except (paramiko.SSHException, ValueError):
            continue
    raise ValueError("clé privée illisible")


def ssh_run(address: str, user: str, private_key: str, command: str, timeout: float = 10.0) -> tuple[int, str]:
    """Run `command` over SSH as `user` with `private_key` (key only: no password, no agent).

    Returns (exit status, stdout+stderr). Raises paramiko.AuthenticationException when the key is refused
    and OSError/paramiko.SSHException when the guest cannot be reached."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh guest: nothing to pin yet
    try:
        client.connect(address, username=user, pkey=_pkey(private_key), timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, allow_agent=False, look_for_keys=False)
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode(errors="replace") + stderr.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), out
    finally:
        client.close()


#: Shell run inside a guest: read the SSH banner of ADDRESS:22 (a new TCP connection each time), with
#: whatever the guest has (busybox or OpenBSD nc, else bash's /dev/tcp). Prints the banner when it answers.
#: `timeout` bounds the whole probe: busybox nc's -w does not bound a connect whose SYNs are dropped.
GUEST_TCP_BANNER = (
    "a={address}; if command -v nc >/dev/null; then timeout {timeout} nc -w {timeout} $a 22 </dev/null | head -c 40; "
    "else timeout {timeout} bash -c \"exec 3<>/dev/tcp/$a/22; head -c 40 <&3\"; fi")


def tcp_from_guest(address: str, user: str, private_key: str, target: str, timeout: float = 3.0) -> bool:
    """True when the guest at `address` (over SSH) opens TCP/22 on `target` and reads an SSH banner.

    The probe goes from guest to guest, across the cloud's own network: only a security group can stop it.
    Raises (like ssh_run) when the first guest itself cannot be reached, so a dead prober is never
    mistaken for a blocked target."""
    command = GUEST_TCP_BANNER.format(address=target, timeout=max(1, int(round(timeout))))
    _, out = ssh_run(address, user, private_key, command, timeout=timeout + 10)
    return "SSH-" in out


def ssh_attempt(address: str, user: str, private_key: str, timeout: float = 8.0) -> str:
    """One SSH login: "ok", "key-refused" (a server answered and refused the key) or "no-answer"."""
    import paramiko

    try:
        ssh_run(address, user, private_key, "true", timeout)
        return "ok"
    except paramiko.AuthenticationException:
        return "key-refused"
    except (OSError, paramiko.SSHException, EOFError):
        return "no-answer"


def ssh_refused(address: str, user: str, private_key: str, timeout: float = 10.0) -> Optional[str]:
    """None when the key is refused by an SSH server that answered; else what happened instead."""
    import paramiko

    try:
        ssh_run(address, user, private_key, "true", timeout)
    except paramiko.AuthenticationException:
        return None
    except (OSError, paramiko.SSHException) as exc:
        return f"pas de réponse SSH exploitable ({type(exc).__name__}: {exc})"
    return "la clé a été acceptée"


def wait_ssh(address: str, user: str, private_key: str, timeout: float = 180.0, command: str = "true") -> tuple[int, str]:
    """Retry ssh_run until it succeeds (a guest boots, dropbear starts) or `timeout` passes."""
    import paramiko

    deadline = time.monotonic() + timeout

    def attempt():
        try:
            return ssh_run(address, user, private_key, command, timeout=min(10.0, max(1.0, deadline - time.monotonic())))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            # AuthenticationException (an SSHException) too: sshd may answer before cloud-init installed the key
            return exc

    last = poll(attempt, lambda got: not isinstance(got, BaseException), timeout, 2)
    if last is not None and not isinstance(last, BaseException):
        return last
    last = last or TimeoutError("jamais tenté")
    raise TimeoutError(f"SSH vers {address} impossible en {timeout:.0f} s ({type(last).__name__}: {last})")
