"""User-facing errors.

Every error a user can trigger with bad input derives from :class:`MmfuseError` and carries one
sentence that names the file, row, column or option at fault and says what to do. The CLI prints
that sentence without a traceback.
"""

from __future__ import annotations


class MmfuseError(Exception):
    """Base class for errors caused by user input or configuration (not by a bug in mmfuse)."""


class UnknownNameError(MmfuseError, KeyError):
    """A registry was asked for a name it does not hold."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


class DataError(MmfuseError, ValueError):
    """A data file, row or column cannot be used as given."""


class ConfigError(MmfuseError, ValueError):
    """A configuration value or option is invalid."""
