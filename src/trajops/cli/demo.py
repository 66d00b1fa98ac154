"""Placeholder: filled by its owner."""


def demo() -> None:
    """Not built yet."""
    raise SystemExit("not built yet")
