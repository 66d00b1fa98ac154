"""Placeholder: filled by its owner."""


def serve() -> None:
    """Not built yet."""
    raise SystemExit("not built yet")
