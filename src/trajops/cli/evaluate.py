"""Placeholder: filled by its owner."""


def evaluate() -> None:
    """Not built yet."""
    raise SystemExit("not built yet")
