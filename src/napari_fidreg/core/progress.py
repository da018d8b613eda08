"""Helpers for the engine's generators, whose yields are progress ticks and whose return
value is the result (the form the napari worker and the CLI progress bar both use)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

R = TypeVar("R")


def drain(gen: Generator[Any, None, R], on_tick: Callable[[Any], None] | None = None) -> R:
    """Run ``gen`` to the end, calling ``on_tick`` with each yielded item; return its value."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_tick is not None:
            on_tick(item)


def relabel(gen: Generator[Any, None, R], convert: Callable[[Any], Any]) -> Generator[Any, None, R]:
    """Yield ``convert(item)`` for each tick of ``gen`` and return its value (``yield from`` it)."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        yield convert(item)
