"""Errors a user can act on. Each renders as one line naming the file and the problem."""

from __future__ import annotations

import errno
import functools


class VidcolorError(Exception):
    """A problem with the user's input, output or settings (exit code 2), or a failed run (1)."""

    exit_code = 2

    def __init__(self, subject: str | None, problem: str):
        self.subject = subject
        self.problem = problem
        super().__init__(f"{subject}: {problem}" if subject else problem)


class BadInputError(VidcolorError):
    pass


class RunFailedError(VidcolorError):
    exit_code = 1


DISK_FULL_TEXT = "No space left on device"  # strerror(ENOSPC), also as ffmpeg and Ray relay it


class DiskFullError(RunFailedError):
    """A disk (the output's, the store's or the temp folder's) filled up: resumable once space is
    freed, since every finished piece of the run is kept."""

    def __init__(self, subject: str | None):
        super().__init__(subject, "no space left on device; free space and run again (the run resumes "
                                  "where it stopped)")


def is_disk_full(error: BaseException | str) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return DISK_FULL_TEXT in str(error)


def names_disk_full(method):
    """Turn a full disk met anywhere below ``method`` into one DiskFullError line."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except DiskFullError:
            raise
        except (OSError, RunFailedError) as e:
            if not is_disk_full(e):
                raise
            subject = getattr(e, "filename", None) or getattr(e, "subject", None)
            raise DiskFullError(str(subject) if subject else None) from None

    return wrapper
