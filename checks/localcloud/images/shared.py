"""What every image recipe shares: the error type, the command runner, the suite and the kernel's
network options."""
from __future__ import annotations

import functools
from typing import Callable

from popek.checks.localcloud import runcmd

#: The suite the guests run.
SUITE = "trixie"

#: Kernel command line shared by both images (serial console for nova's console log; csum/gso off for
#: the OVS userspace datapath: it does not complete partial checksums, so a guest that offloads them sends
#: TCP segments that arrive with bad checksums and carry no data; the guest defuses the trap by itself).
GUEST_NET_CMDLINE = "virtio_net.csum=0 virtio_net.gso=0"

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step failed and why."""


#: Run one build command; on failure ImageBuildError with the end of its output (runcmd.run).
_run = functools.partial(runcmd.run, error=ImageBuildError, what="image : ")
