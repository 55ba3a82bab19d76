"""Errors a user can act on. Each renders as one line naming the file and the problem."""

from __future__ import annotations


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
