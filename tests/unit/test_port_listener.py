"""services.port_listener names the program that holds a port popek's services need (the message of a
refused `up`), from this machine's /proc: a real listener of this test, on 127.0.0.1 and on the IPv6
wildcard (which holds 127.0.0.1 too, as a dual-stack server does)."""
import os
import socket

from popek.checks.localcloud import services


def _listen(family, addr):
    s = socket.socket(family)
    s.bind((addr, 0))
    s.listen(1)
    return s


def test_the_listener_of_a_port_is_this_process_named_by_its_program_without_its_arguments():
    # an owner's server may carry a secret on its command line (redis-server --requirepass S): only the program
    program = os.path.basename(os.readlink("/proc/self/exe"))
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::")):
        with _listen(family, addr) as s:
            port = s.getsockname()[1]
            said = services.port_listener(port)
            assert said == f"le processus {os.getpid()} ({program})" and "python" in said
    assert services.port_listener(port) is None  # closed: nobody listens any more
