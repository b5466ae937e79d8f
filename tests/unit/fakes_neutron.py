"""Stand-ins for openstacksdk objects shared by the Neutron unit tests (pure logic, no cloud): the run's
ledger, and the quota details a network proxy answers."""
from types import SimpleNamespace as NS


class Ledger:
    """The run's ledger: `entries` lists the kinds recorded or created, in order."""

    def __init__(self):
        self.entries = []

    def create(self, kind, what, make, id_attr="id"):
        self.entries.append(kind)
        return make(f"popek-test-{what}")

    def record(self, kind, name, **fields):
        self.entries.append(kind)
        return NS(name=name)


class QuotaDetails:
    """conn.network's get_quota(project, details=True) for the project "p1": `self.quota` (openstacksdk's
    QuotaDetails), or raised when it is an exception (a policy, an older Neutron)."""

    quota = None

    def get_quota(self, project, details=False):
        assert details and project == "p1"
        if isinstance(self.quota, Exception):
            raise self.quota
        return self.quota
