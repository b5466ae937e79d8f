"""The one error type of the embedded cloud: a message for the user (French), no traceback."""


class CloudError(Exception):
    """Something the user can act on: a missing package, a service that did not start (with its log)."""

