"""Shifts of the user's block grid: every block measured around the global shift, the
untrustworthy ones rejected and filled from their neighbours."""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from .blocks import Box, fill_rejected, judge
from .measure import Measured, Pair, measure_many, overlap
from .progress import Progress, Ticker
from .result import Block

STAGE = "blocks"


def measure_grid(
    pair: Pair,
    boxes: Sequence[Box],
    grid_shape: tuple[int, int, int],
    global_shift,
    known: dict,
    ticks: Ticker,
    *,
    workers: int,
) -> Generator[Progress, None, tuple[list[Block], tuple[float, float, float] | None]]:
    """Measure every block of the grid (generator: yields Progress).

    ``known`` maps :func:`box_key` of blocks already measured (the global
    refinement's, with a refinement pass) to their :class:`Measured`; those whose
    peak lies inside this step's search range are reused, since measuring them
    again would find the same peak. Returns the blocks and the consensus shift
    (median of the inliers, None when there is none).
    """
    params = pair.params
    offset = np.rint(global_shift).astype(int)
    local = (params.max_local_shift,) * 3
    reuse = {k: m for k, m in known.items() if _inside(m, k, offset, local, pair.moving.shape)}
    todo = [box for box in boxes if box_key(box) not in reuse]
    ticks.done += len(boxes) - len(todo)
    fresh = iter(measure_many(pair, todo, offset, local, workers=workers, refine=int(params.refine_blocks)))
    measured: list[Measured] = []
    for box in boxes:
        if box_key(box) in reuse:
            measured.append(reuse[box_key(box)])
            continue
        measured.append(next(fresh))
        yield ticks.tick(STAGE)
    if not todo:  # every block was reused: still say that the stage is done
        yield ticks.tick(STAGE, 0)
    return grid_blocks(boxes, grid_shape, measured, global_shift, params)


def grid_blocks(boxes, grid_shape, measured: list[Measured], global_shift, params):
    """:class:`Block` records for the grid, and the consensus shift."""
    j = judge(measured, params)
    filled = fill_rejected(j.shifts, j.inlier, grid_shape, np.asarray(global_shift))
    blocks = [
        Block(
            index=tuple(int(v) for v in idx),
            origin=tuple(int(s.start) for s in box),
            size=tuple(int(s.stop - s.start) for s in box),
            shift=tuple(float(v) for v in filled[i]),
            measured_shift=tuple(float(v) for v in j.shifts[i]) if j.valid[i] else None,
            score=float(j.scores[i]),
            sharpness=float(j.sharpness[i]),
            inlier=bool(j.inlier[i]),
            reason=j.reasons[i],
        )
        for i, (box, idx) in enumerate(zip(boxes, np.ndindex(*grid_shape)))
    ]
    consensus = tuple(float(v) for v in np.median(j.shifts[j.inlier], axis=0)) if j.inlier.any() else None
    return blocks, consensus


def box_key(box: Box) -> tuple[tuple[int, int], ...]:
    return tuple((sl.start, sl.stop) for sl in box)


def _inside(m: Measured, key, offset, limits, mov_shape) -> bool:
    """A valid estimate whose integer peak lies strictly inside the range that measuring
    the block at ``offset`` would search: ``+- limits``, capped as correlate() caps it at
    the overlap's extent - 1."""
    box = tuple(slice(a, b) for a, b in key)
    ref_sl, _ = overlap(box, offset, mov_shape)
    reach = np.minimum(np.ceil(limits), [s.stop - s.start - 1 for s in ref_sl])
    lag = np.abs(np.rint(m.estimate.shift - offset))
    # an axis without search range (a single plane) has lag 0 and reach 0: inside
    return bool(m.valid) and bool(np.all((lag < reach) | ((reach == 0) & (lag == 0))))
