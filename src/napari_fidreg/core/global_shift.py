"""The global shift at full resolution: the richest blocks, measured around the coarse
shift and combined robustly; with one retry at a finer background for dense texture.

Dense texture (a nuclear stain, tissue) rather than spots: a background of sigma 8
removes little of it and leaves a broad peak that barely passes, or fails, the
sharpness test (DAPI nucleus: 8.0-8.4 against 8, errors up to 0.06 px), while half
that scale keeps the fine texture and gives a sharp, accurate peak (12-13; within
0.05 px, docs/validation.md). So when no block is confident, or the peaks are
marginal (median sharpness below ``MARGINAL`` times the threshold; spots and beads
give 17 and more), the blocks are measured again with half the background scale, and
that is kept when it is sharper; the whole registration then uses it (the returned
params say so, and a note).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .blocks import Box, judge
from .confidence import Verdict, assess, depth, keep_planes
from .measure import Measured, Pair, measure_many
from .params import Params
from .progress import Progress, Ticker

MIN_RETRY_SIGMA = 4.0  # the retry never goes finer: a background must stay wider than a fiducial
MARGINAL = 1.5  # peaks below this many times min_sharpness call for the finer background
STAGE = "global shift"


class Combined(NamedTuple):
    """The global shift from the confident blocks."""

    shift: np.ndarray
    score: float  # median of the blocks'
    sharpness: float  # median of the blocks'
    uncertainty: np.ndarray | None  # standard error of the mean of the blocks' shifts


class GlobalShift(NamedTuple):
    """What the refinement found: ``combined`` is None when no block was confident."""

    combined: Combined | None
    measured: list[Measured]  # per candidate block, with the params finally used
    params: Params  # those params (background_sigma halved after a retry)
    notes: list[str]
    verdict: Verdict  # whether the shift is confident, and its uncertainty (.confidence)


def refine_global_shift(
    pair: Pair, candidates: Sequence[Box], offset, margin, ticks: Ticker, *, workers: int
) -> Generator[Progress, None, GlobalShift]:
    """Measure ``candidates`` around the integer ``offset`` (generator: yields Progress) and combine them."""

    def measure(p: Params, at):
        out = []
        for m in measure_many(replace(pair, params=p), candidates, at, margin, workers=workers, refine=1):
            out.append(m)
            yield ticks.tick(STAGE)
        return out

    params = pair.params
    offset = keep_planes(offset, depth(candidates))
    measured = yield from measure(params, offset)
    combined, notes = combine(measured, params)
    finer = params.with_(background_sigma=params.background_sigma / 2)
    can_retry = params.background and finer.background_sigma >= MIN_RETRY_SIGMA
    if can_retry and (combined is None or combined.sharpness < MARGINAL * params.min_sharpness):
        ticks.total += len(candidates)
        retried = yield from measure(finer, offset)
        retry, retry_notes = combine(retried, finer)
        recut_at = None if retry is None else keep_planes(np.rint(retry.shift).astype(int), depth(candidates))
        if recut_at is not None and np.any(recut_at != offset):
            # The coarse step, whose background suited this texture no better, was off
            # by more than half a pixel: cut the blocks again where the shift says, so
            # that both hold the same content.
            ticks.total += len(candidates)
            recut = yield from measure(finer, recut_at)
            again, again_notes = combine(recut, finer)
            if again is not None:
                retried, retry, retry_notes = recut, again, again_notes
        if retry is not None and (combined is None or retry.sharpness > combined.sharpness):
            before = (
                "no block gave a confident peak"
                if combined is None
                else f"the peaks were weak ({combined.sharpness:.1f})"
            )
            notes = [
                f"with background_sigma={params.background_sigma:g} {before}; background_sigma="
                f"{finer.background_sigma:g} gave sharper ones ({retry.sharpness:.1f}; dense texture, or a single plane?), and the whole "
                "registration uses it",
                *retry_notes,
            ]
            params, measured, combined = finer, retried, retry
    if combined is None:
        tried = (
            f"background_sigma={params.background_sigma:g}" + (f" or {finer.background_sigma:g}" if can_retry else "")
            if params.background
            else "no background subtraction"
        )
        notes = [
            f"no block gave a confident correlation peak (few or no fiducials?) with {tried}: the global "
            "shift comes from the coarse, binned estimate and may be wrong"
        ]
    verdict = assess(
        replace(pair, params=params),
        candidates,
        measured,
        None if combined is None else combined.shift,
        workers=workers,
    )
    return GlobalShift(combined, measured, params, notes + verdict.notes, verdict)


def combine(measured: list[Measured], params: Params) -> tuple[Combined | None, list[str]]:
    """Score-weighted mean shift of the confident estimates, their median score and
    sharpness and the standard error of their mean (None when no estimate is
    confident), and notes for the user."""
    j = judge(measured, params)
    good = j.inlier
    if not good.any():
        return None, []
    notes = []
    # score-weighted; a score can be <= 0 when min_score allows it, and a weight must not be
    w = np.maximum(j.scores[good], 1e-3)
    shift = (j.shifts[good] * w[:, None]).sum(axis=0) / w.sum()
    uncertainty = None
    if len(w) > 1:
        spread = j.shifts[good].std(axis=0, ddof=1)
        # the blocks are independent measurements of one shift (or of a deforming
        # sample's mean shift): their scatter is an honest, data-driven precision
        uncertainty = spread / np.sqrt(len(w))
        if np.any(spread > 1.0):
            notes.append(
                f"the richest blocks disagree by up to {spread.max():.2f} px (std): the sample "
                "deforms; use block shifts for the correction"
            )
    return Combined(shift, float(np.median(j.scores[good])), float(np.median(j.sharpness[good])), uncertainty), notes
