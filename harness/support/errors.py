"""Errors a user can act on: the CLI prints their message, not a traceback."""
from __future__ import annotations

import errno


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


class StorageError(ShowdownError):
    """The results cannot be written where they go: permissions, a file in the way, a full disk."""


_FULL = "free some space (old run folders, for one) and try again"
_ELSEWHERE = "write elsewhere (`--results` of run and sweep)"
_LOCKED = f"fix its permissions, or {_ELSEWHERE}"
_IN_THE_WAY = f"a file stands where a folder is needed: move it, or {_ELSEWHERE}"
# strerror says what happened (No space left on device, Read-only file system, ...); this, what to do.
STORAGE_ADVICE = {errno.ENOSPC: _FULL, errno.EDQUOT: _FULL, errno.EACCES: _LOCKED, errno.EPERM: _LOCKED,
                  errno.EROFS: _ELSEWHERE, errno.ENOTDIR: _IN_THE_WAY, errno.EEXIST: _IN_THE_WAY}


def storage_error(e: OSError) -> StorageError | None:
    """The StorageError for an OSError the user can act on (a full disk, no permission, a
    file in the way); None for any other, which is a bug and keeps its traceback."""
    advice = STORAGE_ADVICE.get(e.errno or 0)
    if advice is None:
        return None
    # A write to an open file (a log, say) fails without a file name.
    where = f"{e.filename}: " if e.filename else ""
    return StorageError(f"{where}{e.strerror}: {advice}")
