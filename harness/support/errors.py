"""Errors a user can act on: the CLI prints their message, not a traceback."""
from __future__ import annotations


class ShowdownError(Exception):
    """A failure with a message that says what to do about it."""

    exit_code = 1


class WorkloadError(ShowdownError):
    """The workload file is invalid; nothing was started."""

    exit_code = 2


class SetupError(ShowdownError):
    """A tool the harness needs (Java, Maven, ...) is missing or failed."""


class ClusterError(ShowdownError):
    """A cluster or pipeline failed to start or died."""


class ResultsError(ShowdownError):
    """A path given on the command line is not a result the command can read."""

    exit_code = 2
