"""A tiny project for the release pipeline to check and ship."""


def add(a: int, b: int) -> int:
    """The sum of a and b."""
    return a + b
