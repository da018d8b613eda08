"""Register a moving fiducial stack onto a reference: global shift, then block shifts.

Pipeline (see ``docs/method.md``):

1. hot-pixel mask from the per-(y, x) minimum over z of both stacks;
2. coarse global shift on copies binned in y/x (float32 real FFTs, padded, so
   large shifts do not wrap around);
3. refinement at full resolution on the ``n_global_blocks`` richest blocks,
   each taken from the moving stack at the coarse integer offset, combined
   robustly into the global shift;
4. optionally, every block of the user's grid measured the same way around the
   global shift, outliers rejected and filled from neighbours.

:func:`iter_register` is a generator: each ``yield`` reports progress and is a
point where the caller (a napari worker, a CLI progress bar) may stop it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np

from .blocks import Box, fill_rejected, flag_outliers, tile
from .correlate import ShiftEstimate, correlate
from .errors import FidregError
from .params import Params
from .preprocess import bin_counts, hot_pixel_mask, neighbour_median, prepare, subtract_background
from .progress import drain
from .result import Block, Registration
from .validate import as_volume, check_finite_and_varying, native

_COARSE_TARGET = 384  # y/x extent of the binned copy used for the coarse shift
_GLOBAL_BLOCK = 256  # y/x size of the blocks that refine the global shift
_MIN_YX = 16  # a block narrower than this after clipping is not measured
_MIN_RETRY_SIGMA = 4.0  # the retry never goes finer: a background must stay wider than a fiducial
_MARGINAL = 1.5  # peaks below this many times min_sharpness call for the finer background


@dataclass(frozen=True)
class Progress:
    """A progress tick: ``stage`` is a short label, ``done`` of ``total`` steps."""

    stage: str
    done: int
    total: int


def register(reference, moving, params: Params | None = None, **kwargs: Any) -> Registration:
    """Register ``moving`` onto ``reference`` and return the :class:`Registration`.

    Parameters
    ----------
    reference, moving : array-like, (z, y, x)
        Fiducial stacks of the same field (any integer or float dtype; numpy,
        memmap, or any array that supports slicing). Never modified.
    params : Params, optional
        Options; keyword arguments override its fields (``block_size=256`` ...).
    voxel_size : (z, y, x) micrometres, optional
    reference_name, moving_name : str, optional
        Recorded in the result.

    Returns
    -------
    Registration
        ``global_shift`` is what to apply to ``moving`` to align it onto
        ``reference``; see :data:`napari_fidreg.core.result.SIGN_CONVENTION`.

    Raises
    ------
    FidregError
        Bad input or parameters, with a one-line message naming the problem.
    """
    return drain(iter_register(reference, moving, params, **kwargs))


def iter_register(
    reference,
    moving,
    params: Params | None = None,
    *,
    voxel_size: Iterable[float] | None = None,
    reference_name: str = "",
    moving_name: str = "",
    **overrides: Any,
) -> Generator[Progress, None, Registration]:
    """Generator form of :func:`register`: yields :class:`Progress`, returns the result.

    Inputs and parameters are checked when this is *called*, before the first
    ``next()``, so a GUI can refuse bad input before starting a worker.
    """
    params = (params or Params()).with_(**overrides) if overrides else (params or Params())
    ref = as_volume(reference, "reference")
    mov = as_volume(moving, "moving")
    warnings: list[str] = []
    if ref.shape != mov.shape:
        warnings.append(
            f"reference {ref.shape} and moving {mov.shape} differ in shape: registered on their common region"
        )
    region = _region(ref.shape, mov.shape, params.subvolume)
    grid_boxes, grid_shape = [], (0, 0, 0)
    if params.block_size is not None:
        bz = params.block_size_z or (region[0][1] - region[0][0])
        grid_boxes, grid_shape = tile(region, (bz, params.block_size, params.block_size))  # checks sizes
    vs = None if voxel_size is None else tuple(float(v) for v in voxel_size)
    if vs is not None and (len(vs) != 3 or min(vs) <= 0):
        raise FidregError(f"voxel_size must be three positive numbers (z, y, x), got {voxel_size!r}")
    return _steps(ref, mov, params, region, grid_boxes, grid_shape, vs, reference_name, moving_name, warnings)


def _steps(ref, mov, params, region, grid_boxes, grid_shape, vs, reference_name, moving_name, warnings):
    """The work of :func:`iter_register`, after its checks."""
    has_grid = bool(grid_boxes)
    yield Progress("reading", 0, 1)
    extent = [b - a for a, b in region]
    factor = max(1, int(np.ceil(max(extent[1], extent[2]) / _COARSE_TARGET)))
    # One read of each stack (both in parallel): the minimum over z for hot pixels and
    # the binned copy for the coarse shift.
    with ThreadPoolExecutor(max_workers=min(2, params.workers)) as pool:
        (zmin_ref, ref_small), (zmin_mov, mov_small) = pool.map(lambda v: _scan(v, region, factor), (ref, mov))
    hot = _hot_mask((zmin_ref, zmin_mov), params) if params.hot_pixels else None
    if hot is not None and hot.any():
        for vol, small in ((ref, ref_small), (mov, mov_small)):
            _fix_binned_hot_pixels(small, vol, region, factor, hot)
    for name, small in (("reference", ref_small), ("moving", mov_small)):
        check_finite_and_varying(small, name)
        if params.background:
            subtract_background(small, sigma=params.background_sigma / factor)
    max_shift = params.max_shift or (extent[0] / 3, extent[1] / 4, extent[2] / 4)
    # rank the blocks before the correlation normalises the binned copies in place
    candidates = _richest_blocks(ref_small, region, factor, params.n_global_blocks)
    coarse = correlate(
        ref_small,
        mov_small,
        max_shift=(max_shift[0], max_shift[1] / factor, max_shift[2] / factor),
        z_taper=params.z_taper,
        yx_taper=params.yx_taper,
        workers=params.workers,
    )
    del ref_small, mov_small
    coarse_shift = coarse.shift * np.array([1, factor, factor])
    if coarse.at_limit:
        warnings.append(
            f"the coarse shift {np.round(coarse_shift, 1).tolist()} is at the search limit "
            f"{np.round(max_shift, 1).tolist()}: the true shift may be larger (raise max_shift)"
        )

    # -- refine on the richest full-resolution blocks -------------------------
    offset = np.rint(coarse_shift).astype(int)
    # the coarse step is binned in y/x only: its z estimate is within a plane, its
    # y/x within about a bin
    margin = (4.0, float(max(4, factor + 2)), float(max(4, factor + 2)))
    ticks = _Ticks(0, len(candidates) + len(grid_boxes))
    combined, estimates, params, notes = yield from _global_from_blocks(
        ref, mov, candidates, offset, margin, hot, params, ticks
    )
    warnings += notes
    if combined is None:
        global_shift, g_score, g_sharp, g_unc = coarse_shift, coarse.score, coarse.sharpness, None
    else:
        global_shift, g_score, g_sharp, g_unc = combined
    done, n_total = ticks.done, ticks.total

    reg = Registration(
        global_shift=tuple(float(v) for v in global_shift),
        global_score=g_score,
        global_sharpness=g_sharp,
        global_confident=combined is not None,
        global_uncertainty=None if g_unc is None else tuple(float(v) for v in g_unc),
        reference_shape=tuple(int(v) for v in ref.shape),
        moving_shape=tuple(int(v) for v in mov.shape),
        params=params,
        voxel_size=vs,
        reference=reference_name,
        moving=moving_name,
        warnings=warnings,
    )
    if not has_grid:
        return reg

    # -- block grid ------------------------------------------------------------
    offset = np.rint(global_shift).astype(int)
    local = (params.max_local_shift,) * 3
    # A grid block that was one of the richest blocks is already measured (with a
    # refinement pass): reuse it when its peak lies inside this step's search range,
    # where the grid measurement would have found the same peak.
    known = {_key(box): est for box, est in zip(candidates, estimates) if _inside(est, box, offset, local, mov.shape)}
    todo = [box for box in grid_boxes if _key(box) not in known]
    done += len(grid_boxes) - len(todo)
    measured = iter(_measure_many(ref, mov, todo, offset, local, hot, params, refine=int(params.refine_blocks)))
    block_estimates: list[tuple[ShiftEstimate, bool]] = []
    for box in grid_boxes:
        if _key(box) in known:
            block_estimates.append(known[_key(box)])
            continue
        block_estimates.append(next(measured))
        done += 1
        yield Progress("blocks", done, n_total)
    reg.blocks, reg.consensus_shift = _grid_result(grid_boxes, grid_shape, block_estimates, global_shift, params)
    reg.grid_shape = grid_shape
    n_in = sum(b.inlier for b in reg.blocks)
    if n_in < len(reg.blocks):
        warnings.append(f"{len(reg.blocks) - n_in} of {len(reg.blocks)} blocks rejected and filled from neighbours")
    return reg


# -- helpers -------------------------------------------------------------------
def _region(ref_shape, mov_shape, subvolume) -> tuple[tuple[int, int], ...]:
    common = [min(a, b) for a, b in zip(ref_shape, mov_shape)]
    if subvolume is None:
        return tuple((0, n) for n in common)
    for (a, b), n, axis in zip(subvolume, common, "zyx"):
        if b > n:
            raise FidregError(f"subvolume {axis} range {a}:{b} goes past the stack's {axis} extent {n}")
    return tuple(tuple(r) for r in subvolume)


def _scan(vol, region, factor: int, chunk: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Read the region's planes once: (min over z of the whole frame, region binned by ``factor``).

    One compiled pass per plane does both (numpy took several passes and float
    temporaries: 0.41 -> 0.26 s per 60x2048x2048 stack); memory-mapped planes are
    read in place.
    """
    (z0, z1), (y0, y1), (x0, x1) = region
    by, bx = -(-(y1 - y0) // factor), -(-(x1 - x0) // factor)
    small = np.zeros((z1 - z0, by, bx), dtype=np.float32)
    zmin = None
    for z in range(z0, z1, chunk):
        planes = native(vol[z : min(z + chunk, z1)])
        if zmin is None:
            zmin = planes[0].copy()
        _scan_planes(planes, zmin, small[z - z0 :], y0, y1, x0, x1, factor)
    small /= bin_counts(y1 - y0, factor)[None, :, None] * bin_counts(x1 - x0, factor)[None, None, :]
    return zmin, small


@numba.njit(nogil=True, cache=True)
def _scan_planes(planes, zmin, small, y0, y1, x0, x1, factor):  # pragma: no cover - compiled
    """zmin = min(zmin, planes over z); small[z, bin] += the region's pixels in that bin."""
    nz, ny, nx = planes.shape
    nbx = small.shape[2]
    for z in range(nz):
        for y in range(ny):
            row = planes[z, y]
            mrow = zmin[y]
            for x in range(nx):
                mrow[x] = min(mrow[x], row[x])
            if y0 <= y < y1:
                srow = small[z, (y - y0) // factor]
                for b in range(nbx):
                    start = x0 + b * factor
                    stop = min(start + factor, x1)
                    acc = np.float32(0)
                    for x in range(start, stop):
                        acc += row[x]
                    srow[b] += acc


def _hot_mask(zmins, params: Params) -> np.ndarray:
    """Hot pixels of the camera frame (y, x), from the minimum over z of both stacks.

    Hot pixels are fixed to the camera, so they are bright in both stacks; the
    minimum of the two z-minima also suppresses fiducials, which move between
    rounds. Where only one stack covers the frame, its own minimum is used.
    """
    ny = max(z.shape[0] for z in zmins)
    nx = max(z.shape[1] for z in zmins)
    both = np.full((ny, nx), np.inf, dtype=np.float32)
    for zmin in zmins:
        np.minimum(both[: zmin.shape[0], : zmin.shape[1]], zmin, out=both[: zmin.shape[0], : zmin.shape[1]])
    uncovered = ~np.isfinite(both)
    if uncovered.any():
        both[uncovered] = np.median(both[~uncovered])
    # With one or two planes the minimum over z is the image itself; the isolation
    # test of hot_pixel_mask still tells a hot pixel from a fiducial.
    return hot_pixel_mask(both, threshold=params.hot_pixel_threshold)


def _fix_binned_hot_pixels(small: np.ndarray, vol, region, factor: int, hot: np.ndarray) -> None:
    """Replace, inside the binned copy, each hot pixel's value by its 8-neighbour median."""
    (z0, z1), (y0, y1), (x0, x1) = region
    ys, xs = np.nonzero(hot[y0:y1, x0:x1])
    if ys.size == 0:
        return
    gy, gx = ys + y0, xs + x0

    def take(yy, xx):
        return _gather(vol, z0, z1, yy, xx).astype(np.float32)

    own = take(gy, gx)
    replacement = neighbour_median(take, gy, gx, vol.shape[1:])
    by, bx = ys // factor, xs // factor
    area = bin_counts(y1 - y0, factor)[by] * bin_counts(x1 - x0, factor)[bx]
    np.add.at(small, (slice(None), by, bx), (replacement - own) / area)


def _gather(vol, z0: int, z1: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """vol[z0:z1, ys, xs] without reading whole planes of a lazy array."""
    if isinstance(vol, np.ndarray):
        return vol[z0:z1, ys, xs]
    return np.stack([np.asarray(vol[z])[ys, xs] for z in range(z0, z1)])


def _binned(sl: slice, origin: int, factor: int) -> slice:
    """The bins of the binned copy covered by a full-resolution slice (at least one)."""
    a = (sl.start - origin) // factor
    return slice(a, max((sl.stop - origin) // factor, a + 1))


def _richest_blocks(ref_small, region, factor: int, n: int) -> list[Box]:
    """The ``n`` full-depth blocks whose binned, background-free content varies most."""
    (z0, z1), (y0, y1), (x0, x1) = region
    size = (z1 - z0, min(_GLOBAL_BLOCK, y1 - y0), min(_GLOBAL_BLOCK, x1 - x0))
    boxes, _ = tile(region, size)
    energy = []
    for box in boxes:
        part = ref_small[:, _binned(box[1], y0, factor), _binned(box[2], x0, factor)]
        energy.append(float(np.square(part - part.mean()).mean()))
    order = np.argsort(energy)[::-1]
    return [boxes[i] for i in order[:n]]


def _measure_many(ref, mov, boxes, offset, max_local, hot, params: Params, refine: int = 0):
    """Measure blocks on a thread pool; yields (estimate, valid) in box order."""
    results: list = [None] * len(boxes)
    next_out = 0
    with ThreadPoolExecutor(max_workers=params.workers) as pool:
        futures = {
            pool.submit(_measure_block, ref, mov, box, offset, max_local, hot, params, refine): i
            for i, box in enumerate(boxes)
        }
        try:
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                while next_out < len(boxes) and results[next_out] is not None:
                    yield results[next_out]
                    next_out += 1
        finally:
            for fut in futures:
                fut.cancel()


def _measure_block(ref, mov, box: Box, offset, max_local, hot, params: Params, refine: int = 0):
    """Correlate one reference block with the moving block displaced by ``-offset``.

    Each block gets its own background, estimated on the block itself: the two
    blocks then hold the same content with edges at the same place, so their
    backgrounds are estimated alike. A background estimated once per stack is not:
    near the moving stack's edge its envelope sees the frame edge where the
    reference's sees more content, and that difference pulled dense-texture shifts
    toward zero by up to 0.1 px (known offsets on the DAPI nucleus; docs/method.md).
    """
    ref_sl, mov_sl = _overlap(box, offset, mov.shape)
    sizes = [s.stop - s.start for s in ref_sl]
    min_z = 1 if ref.shape[0] == 1 else 3
    if sizes[0] < min_z or sizes[1] < _MIN_YX or sizes[2] < _MIN_YX:
        return ShiftEstimate(np.array(offset, float), 0.0, 0.0, False), False
    common = {"background": params.background, "background_sigma": params.background_sigma}
    a = prepare(ref[tuple(ref_sl)], hot_mask=None if hot is None else hot[ref_sl[1], ref_sl[2]], **common)
    b = prepare(mov[tuple(mov_sl)], hot_mask=None if hot is None else hot[mov_sl[1], mov_sl[2]], **common)
    est = correlate(
        a, b, max_shift=max_local, z_taper=params.z_taper, yx_taper=params.yx_taper, workers=1, refine=refine
    )
    total = ShiftEstimate(est.shift + offset, est.score, est.sharpness, est.at_limit)
    return total, not est.at_limit


def _overlap(box: Box, offset, mov_shape) -> tuple[list[slice], list[slice]]:
    """Reference and moving slices of ``box`` with the moving part displaced by ``-offset``,
    clipped to where the moving stack exists."""
    ref_sl, mov_sl = [], []
    for k, sl in enumerate(box):
        a = max(sl.start, offset[k])
        b = min(sl.stop, mov_shape[k] + offset[k])
        ref_sl.append(slice(a, b))
        mov_sl.append(slice(a - offset[k], b - offset[k]))
    return ref_sl, mov_sl


def _key(box: Box) -> tuple[tuple[int, int], ...]:
    return tuple((sl.start, sl.stop) for sl in box)


def _inside(estimate: tuple[ShiftEstimate, bool], box: Box, offset, limits, mov_shape) -> bool:
    """A valid estimate whose integer peak lies strictly inside the range that measuring
    ``box`` at ``offset`` would search: ``+- limits``, capped as correlate() caps it at the
    overlap's extent - 1."""
    est, valid = estimate
    ref_sl, _ = _overlap(box, offset, mov_shape)
    reach = np.minimum(np.ceil(limits), [s.stop - s.start - 1 for s in ref_sl])
    lag = np.rint(est.shift - offset)
    return bool(valid) and bool(np.all(np.abs(lag) < reach))


@dataclass
class _Ticks:
    """Progress steps done and expected (the expected count grows when a pass is added)."""

    done: int
    total: int


def _global_from_blocks(ref, mov, candidates, offset, margin, hot, params: Params, ticks: _Ticks):
    """Measure the richest blocks (generator: yields Progress) and combine them.

    Returns ``(combined or None, estimates, params used, notes for the user)``.

    Dense texture (a nuclear stain, tissue) rather than spots: a background of sigma 8
    removes little of it and leaves a broad peak that barely passes, or fails, the
    sharpness test (DAPI nucleus: 8.0-8.4 against 8, errors up to 0.06 px), while half
    that scale keeps the fine texture and gives a sharp, accurate peak (12-13; within
    0.05 px, docs/validation.md). So when no block is confident, or the peaks are
    marginal (median sharpness below ``_MARGINAL`` times the threshold; spots and beads
    give 17 and more), the blocks are measured again with half the background scale, and
    that is kept when it is sharper; the whole registration then uses it (the returned
    params say so, and a note).
    """

    def measure(p: Params, at):
        out = []
        for est in _measure_many(ref, mov, candidates, at, margin, hot, p, refine=1):
            out.append(est)
            ticks.done += 1
            yield Progress("global shift", ticks.done, ticks.total)
        return out

    estimates = yield from measure(params, offset)
    combined, notes = _combine(estimates, params)
    finer = params.with_(background_sigma=params.background_sigma / 2)
    can_retry = params.background and finer.background_sigma >= _MIN_RETRY_SIGMA
    if can_retry and (combined is None or combined.sharpness < _MARGINAL * params.min_sharpness):
        ticks.total += len(candidates)
        retried = yield from measure(finer, offset)
        retry, retry_notes = _combine(retried, finer)
        if retry is not None and np.any(np.rint(retry.shift) != offset):
            # The coarse step, whose background suited this texture no better, was off
            # by more than half a pixel: cut the blocks again where the shift says, so
            # that both hold the same content.
            ticks.total += len(candidates)
            recut = yield from measure(finer, np.rint(retry.shift).astype(int))
            again, again_notes = _combine(recut, finer)
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
                f"{finer.background_sigma:g} gave sharper ones ({retry.sharpness:.1f}; dense texture?), and the whole "
                "registration uses it",
                *retry_notes,
            ]
            params, estimates, combined = finer, retried, retry
    if combined is None:
        tried = f"background_sigma={params.background_sigma:g}" + (
            f" or {finer.background_sigma:g}" if can_retry else ""
        )
        notes = [
            f"no block gave a confident correlation peak (few or no fiducials?) with {tried}: the global "
            "shift comes from the coarse, binned estimate and may be wrong"
        ]
    return combined, estimates, params, notes


class _Combined(NamedTuple):
    shift: np.ndarray
    score: float
    sharpness: float
    uncertainty: np.ndarray | None  # standard error of the mean of the blocks' shifts


def _combine(estimates, params: Params) -> tuple[_Combined | None, list[str]]:
    """Score-weighted mean shift of the confident estimates, their median score and
    sharpness and the standard error of their mean (None when no estimate is
    confident), and notes for the user."""
    shifts = np.array([e.shift for e, _ in estimates])
    scores = np.array([e.score for e, _ in estimates])
    sharp = np.array([e.sharpness for e, _ in estimates])
    valid = np.array([v for _, v in estimates])
    good, _ = flag_outliers(
        shifts,
        scores,
        sharp,
        valid,
        min_score=params.min_score,
        min_sharpness=params.min_sharpness,
        outlier_mad=params.outlier_mad,
        outlier_floor=params.outlier_floor,
    )
    if not good.any():
        return None, []
    notes = []
    w = scores[good]
    shift = (shifts[good] * w[:, None]).sum(axis=0) / w.sum()
    uncertainty = None
    if len(w) > 1:
        spread = shifts[good].std(axis=0, ddof=1)
        # the blocks are independent measurements of one shift (or of a deforming
        # sample's mean shift): their scatter is an honest, data-driven precision
        uncertainty = spread / np.sqrt(len(w))
        if np.any(spread > 1.0):
            notes.append(
                f"the richest blocks disagree by up to {spread.max():.2f} px (std): the sample "
                "deforms; use block shifts for the correction"
            )
    return _Combined(shift, float(np.median(scores[good])), float(np.median(sharp[good])), uncertainty), notes


def _grid_result(boxes, grid_shape, estimates, global_shift, params: Params):
    shifts = np.array([e.shift for e, _ in estimates])
    scores = np.array([e.score for e, _ in estimates])
    sharp = np.array([e.sharpness for e, _ in estimates])
    valid = np.array([v for _, v in estimates])
    inlier, reasons = flag_outliers(
        shifts,
        scores,
        sharp,
        valid,
        min_score=params.min_score,
        min_sharpness=params.min_sharpness,
        outlier_mad=params.outlier_mad,
        outlier_floor=params.outlier_floor,
    )
    filled = fill_rejected(shifts, inlier, grid_shape, np.asarray(global_shift))
    blocks = []
    for i, (box, idx) in enumerate(zip(boxes, np.ndindex(*grid_shape))):
        blocks.append(
            Block(
                index=tuple(int(v) for v in idx),
                origin=tuple(int(s.start) for s in box),
                size=tuple(int(s.stop - s.start) for s in box),
                shift=tuple(float(v) for v in filled[i]),
                measured_shift=tuple(float(v) for v in shifts[i]) if valid[i] else None,
                score=float(scores[i]),
                sharpness=float(sharp[i]),
                inlier=bool(inlier[i]),
                reason=reasons[i],
            )
        )
    consensus = tuple(float(v) for v in np.median(shifts[inlier], axis=0)) if inlier.any() else None
    return blocks, consensus
