"""User-facing errors: the CLI prints their message on one line and exits non-zero (no traceback)."""

from __future__ import annotations


class DainError(Exception):
    """Base class for errors caused by user input (bad names, missing files, malformed data)."""


class UnknownNameError(DainError):
    """A registry lookup failed; the message lists the known names."""


class DataNotFoundError(DainError):
    """A dataset's files are not where we looked; the message says where and how to get them."""


class DataValidationError(DainError):
    """Data does not match its spec (shape, NaN/inf, labels); the message names the modality or file."""


class ConfigError(DainError):
    """A config file or override is malformed or names a key that does not exist."""


class DainWarning(UserWarning):
    """Something was done that the user should know about (an extrapolated budget, an undefined metric written as
    null, a pickle loaded): the CLI prints it as one ``warning:`` line."""
