"""Shifts of the user's block grid: every block measured around the global shift, the
untrustworthy ones rejected and filled from their neighbours; blocks rejected and
restored by hand, without measuring again."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Sequence
from dataclasses import replace

import numpy as np

from .blocks import Box, fill_rejected, flag_outliers, judge
from .errors import FidregError
from .measure import Measured, Pair, measure_many, overlap
from .progress import Progress, Ticker
from .result import Block, Registration

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


# -- rejection by hand -----------------------------------------------------------------
BY_HAND = "rejected by hand"
"""The reason recorded for a block the user rejected (JSON, CSV, the dock's table)."""


def reject_blocks(reg: Registration, indices: Iterable[int]) -> Registration:
    """A copy of ``reg`` with the blocks at ``indices`` (positions in ``reg.blocks``) rejected by hand.

    Nothing is measured again: the rejected blocks, like those rejected automatically,
    take the median of their nearest inliers (:func:`.blocks.fill_rejected`), and the
    consensus shift is the median of the remaining inliers. The blocks' reason becomes
    :data:`BY_HAND`; their measured shift, score and sharpness are kept, so that
    :func:`restore_blocks` can bring them back. A block the engine had already rejected
    keeps its own reason. The global shift is left as measured.

    Parameters
    ----------
    reg : Registration
        A registration with blocks; not modified.
    indices : iterable of int
        Positions of blocks in ``reg.blocks`` (raster order: the rows of the block table).

    Returns
    -------
    Registration
    """
    chosen = _checked(reg, indices)
    inlier = [b.inlier and i not in chosen for i, b in enumerate(reg.blocks)]
    reasons = [BY_HAND if (b.inlier and i in chosen) else b.reason for i, b in enumerate(reg.blocks)]
    return _refilled(reg, inlier, reasons)


def restore_blocks(reg: Registration, indices: Iterable[int]) -> Registration:
    """Undo :func:`reject_blocks` for the blocks at ``indices``: each gets back its measured
    shift and the engine's own verdict (recomputed from the stored scores and shifts with
    ``reg.params``, as the registration judged it). Blocks not rejected by hand are left alone.

    Parameters
    ----------
    reg : Registration
        A registration with blocks; not modified.
    indices : iterable of int
        Positions of blocks in ``reg.blocks``.

    Returns
    -------
    Registration
    """
    chosen = _checked(reg, indices)
    auto_inlier, auto_reasons = automatic_verdict(reg)
    inlier, reasons = [], []
    for i, b in enumerate(reg.blocks):
        back = i in chosen and b.reason == BY_HAND
        inlier.append(bool(auto_inlier[i]) if back else b.inlier)
        reasons.append(auto_reasons[i] if back else b.reason)
    return _refilled(reg, inlier, reasons)


def automatic_verdict(reg: Registration) -> tuple[np.ndarray, list[str]]:
    """The engine's verdict on ``reg``'s blocks (inlier mask, reasons), hand rejections ignored.

    The consensus is taken over every measured block, as :func:`grid_blocks` did, so a
    block rejected by hand does not change the verdict on the others.
    """
    p = reg.params
    valid = np.array([b.measured_shift is not None for b in reg.blocks], bool)
    shifts = _measured(reg)
    scores = np.array([b.score for b in reg.blocks], np.float64)
    sharp = np.array([b.sharpness for b in reg.blocks], np.float64)
    return flag_outliers(
        shifts, scores, sharp, valid, min_score=p.min_score, min_sharpness=p.min_sharpness,
        outlier_mad=p.outlier_mad, outlier_floor=p.outlier_floor,
    )  # fmt: skip


def _measured(reg: Registration) -> np.ndarray:
    """What each block measured ((n, 3)); the used shift where it measured nothing (never an inlier)."""
    return np.array([b.shift if b.measured_shift is None else b.measured_shift for b in reg.blocks], np.float64)


def _checked(reg: Registration, indices: Iterable[int]) -> set[int]:
    if not reg.has_blocks:
        raise FidregError("this registration has no blocks (global shift only): nothing to reject")
    chosen = {int(i) for i in indices}
    bad = sorted(i for i in chosen if not 0 <= i < len(reg.blocks))
    if bad:
        raise FidregError(f"no block at position {bad[0]}: the registration has {len(reg.blocks)} blocks")
    return chosen


def _refilled(reg: Registration, inlier: list[bool], reasons: list[str]) -> Registration:
    measured = _measured(reg)
    mask = np.array(inlier, bool)
    filled = fill_rejected(measured, mask, tuple(reg.grid_shape), np.asarray(reg.global_shift, np.float64))
    blocks = [
        replace(b, shift=tuple(float(v) for v in filled[i]), inlier=bool(mask[i]), reason="" if mask[i] else reasons[i])
        for i, b in enumerate(reg.blocks)
    ]
    consensus = tuple(float(v) for v in np.median(measured[mask], axis=0)) if mask.any() else None
    # the registration's count of rejected blocks, said again with the hand-rejected ones
    warnings = [w for w in reg.warnings if not _REJECTED_NOTE.match(w)]
    n_out, n_hand = int((~mask).sum()), sum(r == BY_HAND for r, ok in zip(reasons, mask) if not ok)
    if n_out:
        warnings.append(rejection_note(n_out, len(blocks), n_hand))
    return replace(reg, blocks=blocks, consensus_shift=consensus, warnings=warnings)


def rejection_note(n_out: int, n: int, n_hand: int = 0) -> str:
    """The registration's warning on its rejected blocks: filled from their neighbours, or,
    when no block is left to fill them from, all given the global shift."""
    by_hand = f" ({n_hand} by hand)" if n_hand else ""
    if n_out == n:
        return f"all {n} blocks rejected{by_hand}: the global shift is used throughout"
    return f"{n_out} of {n} blocks rejected and filled from neighbours{by_hand}"


_REJECTED_NOTE = re.compile(r"^(\d+ of \d+ blocks rejected and filled from neighbours|all \d+ blocks rejected)")
