"""A list that one thread fills while others read it: the utterances and their speakers
of a dub whose requests start before the segmentation ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Growing(Generic[T]):
    """Items appended by one producer; a reader of item ``i`` waits until it is there or
    the producer has closed the list (then None), and gets the producer's error if it
    failed. Items are never changed once appended.

    >>> g = Growing.of([1, 2])
    >>> g.get(1), g.get(2)
    (2, None)
    """

    def __init__(self) -> None:
        self._items: list[T] = []
        self._closed = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()

    @classmethod
    def of(cls, items: Iterable[T]) -> Growing[T]:
        """A list already complete."""
        g = cls()
        g.extend(items)
        g.close()
        return g

    def extend(self, items: Iterable[T]) -> None:
        with self._changed:
            self._items.extend(items)
            self._changed.notify_all()

    def append(self, item: T) -> None:
        self.extend((item,))

    def close(self) -> None:
        """No more items."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        """The producer stopped on ``error``: readers waiting for more get it raised."""
        with self._changed:
            self._error, self._closed = error, True
            self._changed.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def get(self, i: int) -> T | None:
        """Item ``i``, once it is there; None if the list closed shorter."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) > i or self._closed)
            if len(self._items) > i:
                return self._items[i]
            self._raise()
            return None

    def until(self, enough: Callable[[Sequence[T]], bool]) -> list[T]:
        """The items once ``enough(items)`` holds or the list is closed (a copy)."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or enough(self._items))
            self._raise()
            return list(self._items)

    def all(self) -> list[T]:
        """Every item, once the list is closed."""
        return self.until(lambda _: False)
