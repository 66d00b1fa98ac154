"""Placeholder: filled by its owner."""


def train() -> None:
    """Not built yet."""
    raise SystemExit("not built yet")
