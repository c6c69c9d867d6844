"""Change notices: whoever cares subscribes when it is built, the source tells them all.

So two parts of a daemon are wired by constructor arguments, in dependency
order, instead of one setting a callback attribute on the other afterwards:
the source owns a :class:`Notifier`, and the listener, built after it and
given it, subscribes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Notifier(Generic[P]):
    """Listeners told, in the order they subscribed, each time the notice is given."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: list[Callable[P, None]] = []

    def subscribe(self, listener: Callable[P, None]) -> None:
        """Tell ``listener`` of every notice from now on."""
        self._listeners.append(listener)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Give the notice: call every listener (none may block; none is expected to raise)."""
        for listener in self._listeners:
            listener(*args, **kwargs)
