"""Exceptions with messages a person can act on.

Every error the library raises for a user mistake is a ``GatysError`` whose message is one line saying
what is wrong and what to do. The CLI prints it and exits with status 2; the app shows it in a ``gr.Error``.
"""

from __future__ import annotations


class GatysError(Exception):
    """Base class for user-facing errors (bad input, missing weights)."""


class ImageError(GatysError, ValueError):
    """An image could not be read or is unusable (corrupt, too small, too large, wrong type)."""


class WeightsError(GatysError, OSError):
    """Weights could not be found, downloaded or loaded."""


class ConfigError(GatysError, ValueError):
    """An argument is invalid (unknown layer, negative weight, unknown preset...)."""
