"""Keep passwords, tokens and private keys out of every report, log and attachment.

A `Redactor` masks the secret values it was told about (a password read from clouds.yaml, a token)
and anything that looks like one (Keystone Fernet tokens, PEM private keys, `password=` pairs).
"""
from __future__ import annotations

import logging
import re

MASK = "***"
_PATTERNS = (
    re.compile(r"gAAAAA[A-Za-z0-9_\-=]{20,}"),                                     # Fernet tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)(\"?(?:password|passwd|secret|token|auth_token|application_credential_secret)\"?\s*[:=]\s*\"?)([^\s\"',}]+)"),
    re.compile(r"(?i)(X-(?:Auth|Subject)-Token:\s*)(\S+)"),
)


class Redactor:
    """Masks known secret values and secret-looking text."""

    def __init__(self):
        self._values: set[str] = set()

    def add(self, value) -> None:
        """Remember a secret value (ignored when empty or too short to be one)."""
        if isinstance(value, str) and len(value) >= 4:
            self._values.add(value)

    def __call__(self, text: str) -> str:
        if not isinstance(text, str):
            text = str(text)
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) + MASK) if m.re.groups >= 2 else MASK, text)
        return text


#: The process-wide redactor: the CLI and the pytest plugin feed it the secrets they load.
REDACT = Redactor()


def redact_data(obj, redactor: Redactor = REDACT):
    """`obj` (dicts, lists, tuples, strings, as json/attrs.asdict make them) with every string redacted."""
    if isinstance(obj, str):
        return redactor(obj)
    if isinstance(obj, dict):
        return {redact_data(k, redactor): redact_data(v, redactor) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_data(v, redactor) for v in obj)
    return obj


def redact_bytes(body: bytes, redactor: Redactor = REDACT) -> bytes:
    """UTF-8 text redacted; anything else (an image) as it is: it cannot hold a secret as text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    return redactor(text).encode("utf-8")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's formatted message."""

    def __init__(self, redactor: Redactor = REDACT):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = ()
        return True
