"""The error a user can fix: popek's commands raise it, the command line prints it (popek.cli)."""
from __future__ import annotations


class UserError(Exception):
    """A user's mistake (bad input, missing prerequisite): one message, exit code `code`, no traceback."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code
