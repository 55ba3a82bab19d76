"""Placeholder: the colorize command is being written."""


def register(app) -> None:
    return None
