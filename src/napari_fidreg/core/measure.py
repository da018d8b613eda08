"""Measure the shift of one block pair at full resolution, and of many on a thread pool.

Both the global refinement (:mod:`.global_shift`) and the block grid
(:mod:`.block_grid`) measure blocks this way: a reference block against the
moving stack's block displaced by an integer ``offset`` (the current estimate),
each preprocessed on its own, correlated within ``max_local`` of that offset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .blocks import Box
from .correlate import ShiftEstimate, correlate
from .params import MIN_BLOCK_YX, MIN_BLOCK_Z, Params
from .preprocess import prepare


class Measured(NamedTuple):
    """A block's estimate (total shift, offset included) and whether it was measured at all."""

    estimate: ShiftEstimate
    valid: bool


@dataclass(frozen=True)
class Pair:
    """What every block measurement of one registration shares."""

    reference: object  # (z, y, x) array-like, read by slicing
    moving: object
    hot: np.ndarray | None  # (y, x) hot-pixel mask of the camera frame
    params: Params


def measure_many(
    pair: Pair, boxes: Sequence[Box], offset, max_local, *, workers: int, refine: int = 0
) -> Iterator[Measured]:
    """Measure ``boxes`` on ``workers`` threads; yields one :class:`Measured` per box, in box order.

    Fewer boxes than threads (the global refinement of a small stack is one box: the whole
    volume) share the spare threads within each box: its two blocks prepared side by side,
    its FFTs on several threads (the same numbers; 0.26 -> 0.17 s, medians of 8, for a
    60x256x256 pair on 2 cores).
    """
    results: list[Measured | None] = [None] * len(boxes)
    next_out = 0
    inner = max(1, workers // max(len(boxes), 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(measure_block, pair, box, offset, max_local, refine=refine, workers=inner): i
            for i, box in enumerate(boxes)
        }
        try:
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                while next_out < len(boxes) and results[next_out] is not None:
                    yield results[next_out]
                    next_out += 1
        finally:  # a caller that stops early (cancel) leaves no work queued
            for fut in futures:
                fut.cancel()


def measure_block(pair: Pair, box: Box, offset, max_local, *, refine: int = 0, workers: int = 1) -> Measured:
    """Correlate one reference block with the moving block displaced by ``-offset``.

    Each block gets its own background, estimated on the block itself: the two
    blocks then hold the same content with edges at the same place, so their
    backgrounds are estimated alike. A background estimated once per stack is not:
    near the moving stack's edge its envelope sees the frame edge where the
    reference's sees more content, and that difference pulled dense-texture shifts
    toward zero by up to 0.1 px (known offsets on the DAPI nucleus; docs/method.md).

    ``workers`` > 1 prepares the two blocks in parallel and runs the FFTs on that many threads.
    """
    ref, mov, hot, params = pair.reference, pair.moving, pair.hot, pair.params
    ref_sl, mov_sl = overlap(box, offset, mov.shape)
    sizes = [s.stop - s.start for s in ref_sl]
    min_z = 1 if ref.shape[0] == 1 else MIN_BLOCK_Z
    if sizes[0] < min_z or sizes[1] < MIN_BLOCK_YX or sizes[2] < MIN_BLOCK_YX:
        return Measured(ShiftEstimate(np.array(offset, float), 0.0, 0.0, False), False)
    common = {"background": params.background, "background_sigma": params.background_sigma}

    def cleaned(vol, sl):
        return prepare(vol[tuple(sl)], hot_mask=None if hot is None else hot[sl[1], sl[2]], **common)

    if workers > 1:  # the kernels release the GIL: the two blocks are cleaned at the same time
        with ThreadPoolExecutor(max_workers=1) as pool:  # the reference's; this thread the moving's
            fa = pool.submit(cleaned, ref, ref_sl)
            b = cleaned(mov, mov_sl)
            a = fa.result()
    else:
        a, b = cleaned(ref, ref_sl), cleaned(mov, mov_sl)
    est = correlate(
        a, b, max_shift=max_local, z_taper=params.z_taper, yx_taper=params.yx_taper, workers=workers, refine=refine
    )
    total = ShiftEstimate(est.shift + offset, est.score, est.sharpness, est.at_limit)
    return Measured(total, not est.at_limit)


def overlap(box: Box, offset, mov_shape) -> tuple[list[slice], list[slice]]:
    """Reference and moving slices of ``box`` with the moving part displaced by ``-offset``,
    clipped to where the moving stack exists."""
    ref_sl, mov_sl = [], []
    for k, sl in enumerate(box):
        a = max(sl.start, offset[k])
        b = min(sl.stop, mov_shape[k] + offset[k])
        ref_sl.append(slice(a, b))
        mov_sl.append(slice(a - offset[k], b - offset[k]))
    return ref_sl, mov_sl
