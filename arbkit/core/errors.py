"""Errors a user can act on.

Every error arbkit raises for a user mistake or an environment problem derives from
`ArbkitError`; its message says what was wrong and what to do. The CLI prints the message
(never a traceback) and exits non-zero.
"""

from __future__ import annotations


class ArbkitError(Exception):
    """Base class: a problem the user can fix, with the fix in the message."""


class ConfigError(ArbkitError):
    """A setting (environment variable, option, credentials) is missing or wrong."""


class StorageError(ArbkitError):
    """A recording could not be written or read (path, permissions, disk space)."""


class ProtocolError(ArbkitError):
    """A venue sent something its protocol does not allow (kept raw, counted, reported)."""
