"""Whether a global shift can be trusted, and how precise it is.

A single correlation peak, however sharp, may be a coincidence. Two unrelated bead
fields always hold some pair of bright beads that meet at some lag, and a hot pixel
of one stack meets one of the other's somewhere: such peaks look like true ones
(sharpness 10-60 on the unrelated synthetic fields of docs/validation.md, section 6).
What a coincidence does not do is recur in the other parts of the field; a shift that
registers the pair does, wherever there are fiducials. So the block that weighs most
in the shift (the highest-scoring inlier) is cut into 2x2 **quadrants**, each measured
around the block's shift (``QUADRANT_SEARCH``, no refinement pass), and:

1. **Confirmed** when at least two quadrants with a clear peak (score and sharpness above
   the thresholds) agree with the block within ``AGREE_QUADRANT_PX`` and make at least
   half of the quadrants with a clear peak.
2. **Refuted** when quadrants have a clear peak but none agrees (it lies elsewhere).
3. **Undecided** otherwise (sparse fiducials: one bead or none per quadrant). The other
   richest blocks decide: at least ``MIN_AGREE_BLOCKS`` of them agree with the shift
   within ``AGREE_BLOCK_PX`` and make at least half of those with a clear peak. Or, with
   at most one clear quadrant (two or three large fiducials, a single plane), the block is
   a near-identical match: a normalized correlation of at least ``MATCH_SCORE``
   (unrelated fields reach 0.38 at most there; bead pairs 0.77-0.99).

On stacks of fewer than ``THIN_PLANES`` planes z is hardly measured, and agreement is
judged in y/x.

**The camera.** A y/x shift indistinguishable from zero (within ``ZERO_PX`` or three
times its uncertainty) may be the camera's fixed pattern (hot pixels too faint to be
found and replaced, fixed-pattern noise), which is the same in every plane and agrees
with itself everywhere. The block is measured again with the stacks half its depth apart
in z, where the sample's fiducials no longer overlap and the camera's pattern still does:
a clear peak at y/x zero there is the camera's. A stack of fewer than ``2 * MIN_Z_APART``
planes cannot tell the two apart, and such a shift is not confident.

``global_uncertainty`` adds in quadrature, per axis:

* the standard error of the blocks that measured the shift (of the agreeing quadrants
  when one block did), widened for few of them (Student's t: three times it is then a
  95 % interval);
* the refinement pass's step on the block that weighs most: its shift without the pass
  (the mean of the agreeing quadrants, or the block measured again without it when
  fewer than two agree) minus with it. The pass removes the sub-pixel fit's bias and
  leaves, as measured, up to about as much again; the blocks share that bias, so their
  scatter does not show it. It is large where the fit is poorly constrained (z on thin
  stacks, 0.2-0.8 plane) and thousandths of a pixel to a few hundredths elsewhere;
* a floor: ``FLOOR_PX`` (the best known-offset errors), and ``THIN_FLOOR`` on stacks of
  fewer than ``THIN_PLANES`` planes, whose fiducials reach both ends of the stack.

Cost: four quarter-block correlations (+4 % on a 60x2048x2048 global registration);
the rest reuses what the global shift measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .blocks import Box, judge
from .measure import Measured, Pair, measure_block, measure_many
from .params import MIN_BLOCK_YX, Params

QUADRANT_SEARCH = (2.0, 2.0, 2.0)  # px around the block's shift (dz, dy, dx)
AGREE_QUADRANT_PX = 1.0  # a quadrant holds a few fiducials: its shift is rougher than the block's
MIN_AGREE_BLOCKS = 3
AGREE_BLOCK_PX = (1.0, 0.5, 0.5)  # (z, y, x): z is sampled more coarsely, fiducials are longer in z
MATCH_SCORE = 0.6
ZERO_PX = 0.1
MIN_Z_APART = 8  # planes: farther than a fiducial reaches in z
FLOOR_PX = 0.003  # px: the best known-offset errors
THIN_PLANES = 10
THIN_FLOOR = (0.25, 0.015, 0.015)  # (z, y, x) px on fewer planes (measured errors: up to 0.8 plane, 0.15 px)
# t(0.975, n - 1) / 3: the standard error of n estimates is widened by this so that three
# times it is a 95 % interval (from five estimates on, t(0.975) < 3: nothing to widen)
SMALL_SAMPLE = {2: 12.706 / 3, 3: 4.303 / 3, 4: 3.182 / 3}


class Verdict(NamedTuple):
    """Whether the global shift is confident, its uncertainty, and what to tell the user."""

    confident: bool
    uncertainty: np.ndarray | None  # (dz, dy, dx); None when not confident
    notes: list[str]


def assess(
    pair: Pair, candidates: Sequence[Box], measured: list[Measured], shift: np.ndarray | None, *, workers: int = 1
) -> Verdict:
    """Whether ``shift``, combined from the ``measured`` ``candidates`` (None: no block
    gave a clear peak), is confident, and its uncertainty (module doc)."""
    if shift is None:
        return Verdict(False, None, [])
    params = pair.params
    j = judge(measured, params)
    nz = depth(candidates)
    best = int(np.argmax(np.where(j.inlier, j.scores, -np.inf)))  # weighs most in the shift
    at = keep_planes(np.rint(j.shifts[best]).astype(int), nz)
    quads = list(measure_many(pair, quadrants(candidates[best]), at, QUADRANT_SEARCH, workers=workers))
    q_shifts = np.array([m.estimate.shift for m in quads]).reshape(-1, 3)
    q_clear = _clear(quads, params)
    # on thin stacks z is hardly measured (docs/validation.md): agreement is judged in y/x
    axes = slice(1, 3) if nz < THIN_PLANES else slice(0, 3)
    q_agree = q_clear & _valid(quads) & _within(q_shifts[:, axes], j.shifts[best, axes], AGREE_QUADRANT_PX)
    b_clear = _clear(measured, params)
    b_agree = j.inlier & _within(j.shifts[:, axes], shift[axes], np.array(AGREE_BLOCK_PX)[axes])
    if q_agree.sum() >= 2 and 2 * q_agree.sum() >= q_clear.sum():
        confident = True  # confirmed by the quadrants
    elif q_clear.any() and not q_agree.any():
        confident = False  # refuted: the quadrants with a clear peak have it elsewhere
    else:  # undecided (sparse fiducials): the other blocks decide, or a near-identical match
        blocks_agree = b_agree.sum() >= MIN_AGREE_BLOCKS and 2 * b_agree.sum() >= b_clear.sum()
        confident = bool(blocks_agree or (q_clear.sum() <= 1 and j.scores[best] >= MATCH_SCORE))
    if not confident:
        return Verdict(
            False,
            None,
            [
                f"the correlation peak is not reproduced across the field ({q_agree.sum()} of {q_clear.sum()} "
                f"quadrants of the strongest block and {b_agree.sum()} of {b_clear.sum()} blocks with a clear peak "
                "agree on the shift; another field or channel, or too few fiducials?): the shift is not confident"
            ],
        )
    if q_agree.sum() >= 2:
        unrefined = q_shifts[q_agree].mean(axis=0)
    else:
        first = measure_block(pair, candidates[best], at, QUADRANT_SEARCH)
        unrefined = first.estimate.shift if first.valid else j.shifts[best]
    parts = j.shifts[j.inlier] if j.inlier.sum() >= 2 else q_shifts[q_agree]
    u = uncertainty(parts, j.shifts[best] - unrefined, nz)
    bound = np.maximum(ZERO_PX, 3 * u[1:])
    if np.all(np.abs(shift[1:]) <= bound):
        camera = camera_pattern(pair, candidates[best], at, nz, _zero_yx(shift[1:], bound))
        if camera:
            return Verdict(False, None, [camera])
    return Verdict(True, u, [])


def quadrants(box: Box) -> list[Box]:
    """The block cut in two along y and along x (where it is wide enough to measure a half)."""
    z, y, x = box
    halves = []
    for sl in (y, x):
        mid = (sl.start + sl.stop) // 2
        halves.append([slice(sl.start, mid), slice(mid, sl.stop)] if sl.stop - sl.start >= 2 * MIN_BLOCK_YX else [sl])
    return [(z, a, b) for a in halves[0] for b in halves[1]]


def _zero_yx(shift_yx, bound) -> str:
    """What "a zero shift in y/x" means here, with the numbers: within its uncertainty of zero."""
    dy, dx = (float(v) for v in shift_yx)
    if max(abs(dy), abs(dx)) < 0.0005:
        return "the shift is zero in y/x"
    return f"the y/x shift ({dy:+.3f}, {dx:+.3f}) px is zero within its uncertainty (±{float(max(bound)):.2f} px)"


def camera_pattern(pair: Pair, box: Box, at: np.ndarray, nz: int, zero: str = "the shift is zero in y/x") -> str | None:
    """A note when a shift of zero in y/x (``zero`` says how) may be the camera's fixed pattern, else None."""
    if nz < 2 * MIN_Z_APART:
        planes = "a single plane is" if nz == 1 else f"{nz} planes are"
        return (
            f"{zero}, and {planes} too few to tell the sample's fiducials from the "
            "camera's fixed pattern (faint hot pixels, fixed-pattern noise: the same in every plane): the shift is "
            "not confident; check it by eye"
        )
    apart = nz // 2
    offset = np.array(at)
    offset[0] += apart if offset[0] <= 0 else -apart
    # no search in z: a camera pattern matches at every z lag, and its peak would sit at the limit
    m = measure_block(pair, box, offset, (0.0, *QUADRANT_SEARCH[1:]))
    # the sharpness decides: the camera's share of the correlation is small (score ~0.01)
    if m.valid and m.estimate.sharpness >= pair.params.min_sharpness and np.all(np.abs(m.estimate.shift[1:]) <= 1):
        return (
            f"{zero}, and the match remains with the stacks {apart} planes apart in z, where the "
            "sample's fiducials no longer overlap: it is the camera's fixed pattern (faint hot pixels?), not the "
            "sample's; the shift is not confident"
        )
    return None


def uncertainty(parts: np.ndarray, step: np.ndarray, nz: int) -> np.ndarray:
    """Per axis: the standard error of ``parts`` (widened for few), the refinement ``step``
    and the floor for ``nz`` planes, added in quadrature."""
    n = len(parts)
    se = parts.std(axis=0, ddof=1) / np.sqrt(n) * SMALL_SAMPLE.get(n, 1.0) if n >= 2 else np.zeros(3)
    return np.sqrt(se**2 + np.square(step) + floor(nz) ** 2)


def floor(nz: int) -> np.ndarray:
    """The lowest uncertainty of a stack of ``nz`` planes, per axis (none in z for one plane)."""
    if nz == 1:
        return np.array([0.0, FLOOR_PX, FLOOR_PX])
    return np.array(THIN_FLOOR) if nz < THIN_PLANES else np.full(3, FLOOR_PX)


def depth(candidates: Sequence[Box]) -> int:
    """Planes of the (full-depth) candidate blocks."""
    z = candidates[0][0]
    return z.stop - z.start


def keep_planes(offset, nz: int) -> np.ndarray:
    """``offset`` with its z part reduced so that blocks of ``nz`` planes keep three planes
    in common: a stack of 3-5 planes could not be measured at a z offset of a plane or
    two at all, while the search around the reduced offset still reaches the shift."""
    offset = np.array(offset, dtype=int)
    if nz >= 3:
        offset[0] = int(np.clip(offset[0], 3 - nz, nz - 3))
    return offset


def _clear(measured: Sequence[Measured], params: Params) -> np.ndarray:
    """Per estimate: a peak above the score and sharpness thresholds (in the search range or at its limit)."""
    return np.array(
        [m.estimate.score >= params.min_score and m.estimate.sharpness >= params.min_sharpness for m in measured],
        dtype=bool,
    )


def _valid(measured: Sequence[Measured]) -> np.ndarray:
    return np.array([m.valid for m in measured], dtype=bool)


def _within(shifts: np.ndarray, ref: np.ndarray, tol) -> np.ndarray:
    return np.all(np.abs(shifts - ref) <= tol, axis=1)
