"""Block tiling, the decision which block estimates to trust, and filling of rejected blocks."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .errors import FidregError
from .params import MIN_BLOCK_YX, MIN_BLOCK_Z

if TYPE_CHECKING:
    from .measure import Measured
    from .params import Params

Box = tuple[slice, slice, slice]

NOT_MEASURED = (
    f"not measured: under {MIN_BLOCK_YX} px (y, x) or {MIN_BLOCK_Z} planes (1 for an image) "
    "of the block inside the moving stack"
)
# the range is max local shift, or less along an axis where the block is thinner (its extent - 1)
AT_LIMIT = "peak at the edge of the search range: the shift may be larger than it"


class Judged(NamedTuple):
    """Block estimates as arrays, with the verdict on each."""

    shifts: np.ndarray  # (n, 3)
    scores: np.ndarray
    sharpness: np.ndarray
    valid: np.ndarray  # measured at all (inside the moving stack, peak inside the search range)
    inlier: np.ndarray
    reasons: list[str]


def axis_edges(start: int, stop: int, size: int, axis: str) -> list[tuple[int, int]]:
    """Split [start, stop) into blocks of ``size``; the last block takes the remainder.

    The remainder is merged into the last block (so every block is at least
    ``size`` long) rather than left as a sliver that holds too little to correlate.
    """
    extent = stop - start
    if size <= 0:
        raise FidregError(f"block size along {axis} must be positive, got {size}")
    if size > extent:
        raise FidregError(f"block size {size} is larger than the {axis} extent {extent} of the (sub)volume")
    n = extent // size
    edges = [(start + i * size, start + (i + 1) * size) for i in range(n)]
    edges[-1] = (edges[-1][0], stop)
    return edges


def tile(region: tuple[tuple[int, int], ...], size_zyx: tuple[int, int, int]) -> tuple[list[Box], tuple[int, int, int]]:
    """Blocks covering ``region`` ((z0, z1), (y0, y1), (x0, x1)) in raster order, and the grid shape."""
    per_axis = [axis_edges(a, b, s, axis) for (a, b), s, axis in zip(region, size_zyx, "zyx")]
    boxes = [tuple(slice(a, b) for a, b in combo) for combo in itertools.product(*per_axis)]
    return boxes, tuple(len(e) for e in per_axis)  # type: ignore[return-value]


def judge(measured: list[Measured], params: Params) -> Judged:
    """Arrays of the estimates and :func:`flag_outliers`' verdict with ``params``' thresholds."""
    shifts = np.array([m.estimate.shift for m in measured], dtype=np.float64).reshape(-1, 3)
    scores = np.array([m.estimate.score for m in measured], dtype=np.float64)
    sharp = np.array([m.estimate.sharpness for m in measured], dtype=np.float64)
    valid = np.array([m.valid for m in measured], dtype=bool)
    at_limit = np.array([m.estimate.at_limit for m in measured], dtype=bool)
    inlier, reasons = flag_outliers(
        shifts,
        scores,
        sharp,
        valid,
        at_limit=at_limit,
        min_score=params.min_score,
        min_sharpness=params.min_sharpness,
        outlier_mad=params.outlier_mad,
        outlier_floor=params.outlier_floor,
    )
    return Judged(shifts, scores, sharp, valid, inlier, reasons)


def flag_outliers(
    shifts: np.ndarray,
    scores: np.ndarray,
    sharpness: np.ndarray,
    valid: np.ndarray,
    *,
    min_score: float,
    min_sharpness: float,
    outlier_mad: float,
    outlier_floor: float,
    at_limit: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Decide which blocks are inliers; returns (inlier mask, reason per block).

    A block is rejected when it could not be measured (``valid`` false and not
    ``at_limit``: too little of it inside the moving stack), when its estimate is not
    finite, when its correlation peak is weak (score or sharpness below the thresholds:
    typically a block without fiducials, whose noise peak often lands on the edge of the
    search range too: the weak peak is the reason given), when a clear peak lies on the
    edge of the search range (``valid`` false, ``at_limit``: the shift may be larger than
    the range), or when its shift departs from the median of the good blocks (itself
    included) by more than ``outlier_mad`` robust standard deviations on some axis (never
    less than ``outlier_floor`` pixels, so a smooth deformation is kept).

    ``at_limit`` None (a registration read back, which keeps no such flag): a block
    that was not measured is told by the score and sharpness 0 that measuring gave it.
    """
    n = len(shifts)
    reasons = [""] * n
    good = valid.copy()
    if at_limit is None:
        at_limit = ~valid & ~((scores == 0) & (sharpness == 0))
    for i in range(n):
        if not valid[i] and not at_limit[i]:
            reasons[i] = NOT_MEASURED
        elif not (np.isfinite(scores[i]) and np.isfinite(sharpness[i]) and np.isfinite(shifts[i]).all()):
            reasons[i] = "no finite estimate (NaN or infinite)"
            good[i] = False
        elif scores[i] < min_score:
            reasons[i] = f"low score {_below(scores[i], min_score, 3)} < {min_score}"
            good[i] = False
        elif sharpness[i] < min_sharpness:
            reasons[i] = f"flat peak: sharpness {_below(sharpness[i], min_sharpness, 1)} < {min_sharpness}"
            good[i] = False
        elif not valid[i]:
            # a clear peak on the edge of the search range: the block's true shift may lie beyond it
            reasons[i] = AT_LIMIT
    if good.sum() >= 3:
        med = np.median(shifts[good], axis=0)
        mad = np.median(np.abs(shifts[good] - med), axis=0)
        limit = np.maximum(outlier_mad * 1.4826 * mad, outlier_floor)
        far = np.any(np.abs(shifts - med) > limit, axis=1)
        for i in np.nonzero(good & far)[0]:
            reasons[i] = "shift far from the other blocks' consensus"
            good[i] = False
    return good, reasons


def fill_rejected(
    shifts: np.ndarray, inlier: np.ndarray, grid_shape: tuple[int, int, int], fallback: np.ndarray
) -> np.ndarray:
    """Shifts for every block: inliers keep theirs, rejected blocks take the
    median of the nearest inliers on the grid (3x3x3 ring first, widening), or
    ``fallback`` when there is no inlier at all."""
    out = shifts.copy()
    if not inlier.any():
        out[:] = fallback
        return out
    idx = np.array(list(np.ndindex(*grid_shape)))
    good_idx = idx[inlier]
    good_shifts = shifts[inlier]
    for i in np.nonzero(~inlier)[0]:
        dist = np.abs(good_idx - idx[i]).max(axis=1)  # Chebyshev ring on the grid
        nearest = dist == dist.min()
        out[i] = np.median(good_shifts[nearest], axis=0)
    return out


def _below(value: float, limit: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, or more until it reads below ``limit``: a score of
    0.0097 under a threshold of 0.01 said "low score 0.010 < 0.01"."""
    while decimals < 8 and float(f"{value:.{decimals}f}") >= limit:
        decimals += 1
    return f"{value:.{decimals}f}"
