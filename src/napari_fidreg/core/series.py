"""A series of rounds registered onto one reference round: the unit of work of an experiment.

Each round is registered on its own (:func:`.register.iter_register`): a round reads
its own data when its turn comes (a moving stack may be given as a function that
loads it), so a series of tens of 2048^2 rounds holds one round in memory at a time.
A round that cannot be registered (a damaged file, a blank stack) gets its error in
its :class:`Round` and the series goes on, as a batch of rounds should.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import FidregError
from .params import DEFAULT_WORKERS, Params
from .progress import Progress, drain
from .register import iter_register
from .result import Registration
from .validate import as_volume

STAGE = "rounds registered"

RoundFn = Callable[[int, "Round"], None]
"""Called with each round's index and :class:`Round` as soon as it is done."""


@dataclass
class Round:
    """One round of a series: its registration, or the error that stopped it."""

    name: str
    registration: Registration | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def register_series(reference, movings: Sequence[Any], params: Params | None = None, **options: Any) -> list[Round]:
    """Register every round of ``movings`` onto ``reference``; one :class:`Round` per round.

    Parameters
    ----------
    reference : array-like, (z, y, x)
        The reference round's fiducial stack.
    movings : sequence of array-like or of callables
        The other rounds' fiducial stacks, in round order; a callable is called
        (with no argument) when its round's turn comes and returns the stack, so
        that rounds are read one at a time. A 4D (round, z, y, x) array is a
        sequence of rounds too.
    params : Params, optional
        Parameters shared by every round; keyword arguments named like its fields
        override them (``block_size=256`` ...), as for :func:`~napari_fidreg.core.register`.
    names : sequence of str, optional, keyword-only
        Round names (recorded as each result's ``moving``); default ``round 0``, ...
    on_round : callable, optional, keyword-only
        ``on_round(index, round)`` as soon as a round is done (to write its
        results, update a drift table ...).
    reference_name, subvolume, voxel_size, workers : keyword-only
        As for :func:`napari_fidreg.core.register`, shared by every round.
    projections_out : dict, optional, keyword-only
        As for :func:`napari_fidreg.core.register`, shared by every round: the reference's
        QC projections are kept from round to round (made again after a round that covers
        part of the stacks only, which empties the dict), and ``'moving'`` holds those of
        the round last registered (read it in ``on_round``); a round that failed leaves no
        ``'moving'``.

    Returns
    -------
    list of Round
        In the order of ``movings``; a round that failed on its input carries its
        error (a one-line message) and no registration.
    """
    return drain(iter_register_series(reference, movings, params, **options))


def iter_register_series(
    reference,
    movings: Sequence[Any],
    params: Params | None = None,
    *,
    names: Iterable[str] | None = None,
    on_round: RoundFn | None = None,
    reference_name: str = "",
    subvolume=None,
    voxel_size=None,
    workers: int = DEFAULT_WORKERS,
    projections_out: dict | None = None,
    **overrides: Any,
) -> Generator[Progress, None, list[Round]]:
    """Generator form of :func:`register_series`: yields :class:`Progress`, returns the rounds.

    Each round's ticks are said of its name (``tick.item``); a ``rounds registered``
    tick follows each round. Stopping the generator (``close()``, a napari worker's
    ``quit()``) stops within the current round's next tick.
    """
    n = len(movings)
    labels = [f"round {i}" for i in range(n)] if names is None else [str(v) for v in names]
    if len(labels) != n:
        raise FidregError(f"{len(labels)} names for {n} rounds")
    if n == 0:
        raise FidregError("no moving round to register")
    params = (params or Params()).with_(**overrides) if overrides else (params or Params())
    as_volume(reference, "reference")  # a bad reference is refused before any round starts
    options = dict(
        reference_name=reference_name, subvolume=subvolume, voxel_size=voxel_size, workers=workers,
        projections_out=projections_out,
    )  # fmt: skip
    return _run(reference, movings, params, labels, on_round, options)


def _run(reference, movings, params, labels, on_round, options) -> Generator[Progress, None, list[Round]]:
    rounds: list[Round] = []
    yield Progress(STAGE, 0, len(labels))
    for i, (source, name) in enumerate(zip(movings, labels)):
        try:
            moving = source() if callable(source) else source
            gen = iter_register(reference, moving, params, moving_name=name, **options)
            while True:
                try:
                    tick = next(gen)
                except StopIteration as stop:
                    result = Round(name, registration=stop.value)
                    break
                yield tick.about(name)
        except (FidregError, MemoryError) as exc:
            text = "out of memory" if isinstance(exc, MemoryError) else str(exc)
            if text.startswith("reference"):  # it would stop every round the same way
                raise
            result = Round(name, error=text)
            if options["projections_out"] is not None:  # no projections of a round that failed
                options["projections_out"].pop("moving", None)
        rounds.append(result)
        if on_round is not None:
            on_round(i, result)
        yield Progress(STAGE, i + 1, len(labels))
    return rounds
