"""Placeholder until the model work lands (issue 3); registers nothing yet."""


def register(app) -> None:
    return None
