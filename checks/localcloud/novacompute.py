"""nova-compute whose first heartbeat is sent as soon as it serves: runs INSIDE the cloud's own venv (its Python
runs this file with nova-compute's arguments); popek itself never imports it.

Why: nova's service group (nova.servicegroup.drivers.db) sends a service's first heartbeat
INITIAL_REPORTING_DELAY (5 s, a module constant, no option) after it joined, and `up` waits for a fresh
heartbeat of nova-compute (lifecycle.wait_nova: the scheduler does not place a guest on a host whose
heartbeat is stale). nova.service.Service.start() joins the group only once its RPC server consumes and
post_start_hook ran, so a heartbeat at once says no more than the process is ready: measured, those 5 s
were the `up`'s critical path (nothing else waited on). The later heartbeats keep report_interval.
"""
import os
import sys


def main() -> int:
    from nova.cmd import compute  # first, as the console script does (nova's own import order)
    from nova.servicegroup import api

    api.INITIAL_REPORTING_DELAY = 0
    sys.argv[0] = os.path.join(os.path.dirname(sys.executable), "nova-compute")  # oslo.config's program name
    return compute.main()


if __name__ == "__main__":
    sys.exit(main())
