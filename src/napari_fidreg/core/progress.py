"""The one progress type, and how the engine's generators report it.

Long computations are generators: each ``yield`` is a :class:`Progress` tick and a
point where the caller may stop (a napari worker's ``quit()``, Ctrl-C in the CLI);
the generator's return value is the result. Every front end (the CLI's progress
line, the napari worker, a dask batch) consumes the same ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Progress:
    """A progress tick: ``done`` of ``total`` steps of ``stage``, for ``item`` (a stack's name, in batches)."""

    stage: str
    done: int
    total: int
    item: str = ""

    @property
    def label(self) -> str:
        """``"item: stage"``, or the stage alone."""
        return f"{self.item}: {self.stage}" if self.item else self.stage

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def about(self, item: str) -> Progress:
        """The same tick, said of ``item``."""
        return replace(self, item=item)


ProgressFn = Callable[[Progress], None]
"""A callback that receives each tick."""


class Ticker:
    """Counts the steps of a computation whose number of steps can grow (an extra pass)."""

    def __init__(self, total: int):
        self.done = 0
        self.total = total

    def tick(self, stage: str, steps: int = 1) -> Progress:
        self.done += steps
        return Progress(stage, self.done, self.total)


def drain(gen: Generator[Any, None, R], on_tick: ProgressFn | None = None) -> R:
    """Run ``gen`` to the end, calling ``on_tick`` with each yielded tick; return its value."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_tick is not None:
            on_tick(item)
