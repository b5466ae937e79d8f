"""Checks of the course's cloud claims against any OpenStack cloud (connection, ledger, one module per service)."""
