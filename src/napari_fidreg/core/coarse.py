"""The coarse step: one read of each stack, hot pixels, and a global shift on binned copies.

Each stack is read once, plane by plane (memory-mapped files are read in place):
that pass yields the minimum over z of the camera frame (for hot pixels) and a
copy of the region binned in y/x to about ``COARSE_TARGET`` pixels. The binned
copies are cleaned (hot pixels, background), rank the blocks by content for the
refinement that follows, and are correlated with float32 real FFTs, padded so that large
shifts do not wrap around; copies larger than ``CORRELATION_TARGET`` are binned by 2 more
for the correlation alone (:func:`correlation_bin`: the coarse shift need only fall inside
the refinement's search, and the correlation was most of a 256^2 stack's registration).
Copied before the cleaning and cleaned for QC like any stack
(:func:`.qc.cleaned_projections`), they also give the QC projections of the two stacks
(:mod:`.qc` bins the same way), so that a QC image needs no second read of either stack.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .blocks import Box, tile
from .correlate import ShiftEstimate, correlate
from .kernels import bin_planes
from .params import Params
from .preprocess import bin_counts, bin_mean, hot_pixel_mask, neighbour_median, subtract_background
from .progress import Progress, drain
from .qc import QC_SIZE, cleaned_projections, display_bin
from .validate import check_finite_and_varying, kernel_input

COARSE_TARGET = QC_SIZE  # y/x extent of the binned copy used for the coarse shift (and for QC)
CORRELATION_TARGET = 192  # binned y/x extent above which the coarse correlation bins by 2 more
MIN_CORRELATION = 48  # ... unless that leaves fewer pixels than this along y or x
GLOBAL_BLOCK = 256  # y/x size of the blocks that refine the global shift

Region = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Coarse:
    """What the coarse step hands to the refinement."""

    shift: np.ndarray  # (dz, dy, dx) at full resolution
    estimate: ShiftEstimate  # on the binned copies
    max_shift: tuple[float, float, float]  # the search range used, full-resolution pixels
    factor: int  # y/x binning of the scan's copies (and of the QC projections)
    correlation_factor: int  # y/x binning of the coarse correlation: ``factor``, or 2 ``factor``
    hot: np.ndarray | None  # (y, x) hot-pixel mask of the camera frame
    candidates: list[Box]  # the richest full-depth blocks, richest first
    # the QC projections of the reference and the moving stack (each None unless asked for),
    # binned by ``factor``, when the region is the whole of both stacks (else None)
    projections: tuple[dict | None, dict | None] | None = None


READ_STAGE = "reading"
CHUNK = 8  # planes read at a time: a progress tick (and a point to cancel) per chunk


def coarse_shift(ref, mov, region: Region, params: Params, *, workers: int) -> Coarse:
    """Read both stacks once and estimate the global shift on binned copies."""
    return drain(iter_coarse_shift(ref, mov, region, params, workers=workers))


def iter_coarse_shift(
    ref, mov, region: Region, params: Params, *, workers: int, keep_projections: tuple[bool, bool] = (False, False)
) -> Generator[Progress, None, Coarse]:
    """Generator form of :func:`coarse_shift`: a :class:`Progress` tick per chunk of planes read.

    With ``keep_projections`` (reference, moving), the result also holds the QC projections of
    those stacks (see
    :class:`Coarse`), made from copies of the binned copies before the registration's own
    cleaning: they are cleaned exactly as :func:`.qc.projections` cleans any stack, the
    corrected one included, so that the QC compares like with like.
    """
    extent = [b - a for a, b in region]
    factor = display_bin(extent)  # to at most COARSE_TARGET pixels
    scans = [_Scan(v, region, factor) for v in (ref, mov)]
    starts = range(region[0][0], region[0][1], CHUNK)
    with ThreadPoolExecutor(max_workers=min(2, workers)) as pool:  # both stacks read in parallel
        for i, z in enumerate(starts):
            list(pool.map(_Scan.read, scans, (z, z)))
            yield Progress(READ_STAGE, i + 1, len(starts))
    (zmin_ref, ref_small), (zmin_mov, mov_small) = (sc.result() for sc in scans)
    whole = ref.shape == mov.shape and tuple(map(tuple, region)) == tuple((0, n) for n in ref.shape)
    raw = [s.copy() if keep and whole else None for s, keep in zip((ref_small, mov_small), keep_projections)]
    hot = camera_hot_pixels((zmin_ref, zmin_mov), params.hot_pixel_threshold) if params.hot_pixels else None

    def clean(vol, small, copy, name):
        """The registration's cleaning of a binned copy, and the QC's of its copy kept before it."""
        if hot is not None and hot.any():
            _fix_binned_hot_pixels(small, vol, region, factor, hot)
        check_finite_and_varying(small, name)
        if params.background:
            subtract_background(small, sigma=params.background_sigma / factor)
        return None if copy is None else cleaned_projections(copy, bin=factor)

    # the two stacks side by side: the filters are compiled and release the GIL (at 2048^2
    # the four cleanings took ~0.25 s one after the other)
    with ThreadPoolExecutor(max_workers=min(2, workers)) as pool:
        cleaned = tuple(pool.map(clean, (ref, mov), (ref_small, mov_small), raw, ("reference", "moving")))
    qc = cleaned if whole else None
    max_shift = params.max_shift or (extent[0] / 3, extent[1] / 4, extent[2] / 4)
    # rank the blocks before the correlation normalises the binned copies in place
    candidates = richest_blocks(ref_small, region, factor, params.n_global_blocks)
    more = correlation_bin(ref_small.shape[1:])
    if more > 1:  # cleaned at the QC's scale, correlated at a coarser one (a quarter of the FFT work)
        ref_small, mov_small = bin_mean(ref_small, more), bin_mean(mov_small, more)
    f = factor * more
    est = correlate(
        ref_small,
        mov_small,
        max_shift=(max_shift[0], max_shift[1] / f, max_shift[2] / f),
        z_taper=params.z_taper,
        yx_taper=params.yx_taper,
        workers=workers,
    )
    shift = est.shift * np.array([1, f, f])
    return Coarse(shift, est, tuple(float(v) for v in max_shift), factor, f, hot, candidates, qc)


def correlation_bin(binned_yx) -> int:
    """Further y/x binning of the cleaned copies for the coarse correlation: 2 where their
    larger side exceeds ``CORRELATION_TARGET`` px and the smaller, binned, keeps at least
    ``MIN_CORRELATION``."""
    return 2 if max(binned_yx) > CORRELATION_TARGET and min(binned_yx) >= 2 * MIN_CORRELATION else 1


def scan(vol, region: Region, factor: int, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Read the region's planes once: (min over z of the whole frame, region binned by ``factor``)."""
    sc = _Scan(vol, region, factor, chunk)
    for z in range(region[0][0], region[0][1], chunk):
        sc.read(z)
    return sc.result()


class _Scan:
    """One stack's single read, a chunk of planes at a time (memory-mapped planes read in place).

    One compiled pass per chunk yields both the binned copy and the minimum over z
    (numpy took several passes and float temporaries: 0.41 -> 0.26 s per 60x2048x2048 stack).
    """

    def __init__(self, vol, region: Region, factor: int, chunk: int = CHUNK):
        (z0, z1), (y0, y1), (x0, x1) = region
        self.vol, self.region, self.factor, self.chunk = vol, region, factor, chunk
        by, bx = -(-(y1 - y0) // factor), -(-(x1 - x0) // factor)
        self.small = np.zeros((z1 - z0, by, bx), dtype=np.float32)
        self.zmin = None

    def read(self, z: int) -> None:
        (z0, z1), (y0, y1), (x0, x1) = self.region
        planes = kernel_input(self.vol[z : min(z + self.chunk, z1)])
        if self.zmin is None:
            self.zmin = planes[0].copy()
        bin_planes(planes, y0, y1, x0, x1, self.factor, self.small[z - z0 :], self.zmin)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        _, (y0, y1), (x0, x1) = self.region
        f = self.factor
        self.small /= bin_counts(y1 - y0, f)[None, :, None] * bin_counts(x1 - x0, f)[None, None, :]
        return self.zmin, self.small


def camera_hot_pixels(zmins, threshold: float) -> np.ndarray:
    """Hot pixels of the camera frame (y, x), from the minimum over z of both stacks.

    Hot pixels are fixed to the camera, so they are bright in both stacks; the
    minimum of the two z-minima also suppresses fiducials, which move between
    rounds. Where only one stack covers the frame, its own minimum is used.
    """
    ny = max(z.shape[0] for z in zmins)
    nx = max(z.shape[1] for z in zmins)
    both = np.full((ny, nx), np.inf, dtype=np.float32)
    for zmin in zmins:
        view = both[: zmin.shape[0], : zmin.shape[1]]
        np.minimum(view, zmin, out=view)
    uncovered = ~np.isfinite(both)
    if uncovered.any():
        both[uncovered] = np.median(both[~uncovered])
    # With one or two planes the minimum over z is the image itself; the isolation
    # test of hot_pixel_mask still tells a hot pixel from a fiducial.
    return hot_pixel_mask(both, threshold=threshold)


def _fix_binned_hot_pixels(small: np.ndarray, vol, region: Region, factor: int, hot: np.ndarray) -> None:
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


def richest_blocks(ref_small: np.ndarray, region: Region, factor: int, n: int) -> list[Box]:
    """The ``n`` full-depth blocks whose binned, background-free content varies most."""
    (z0, z1), (y0, y1), (x0, x1) = region
    size = (z1 - z0, min(GLOBAL_BLOCK, y1 - y0), min(GLOBAL_BLOCK, x1 - x0))
    boxes, _ = tile(region, size)
    if len(boxes) == 1:  # a stack of one block (256^2 and smaller): nothing to rank
        return boxes
    energy = []
    for box in boxes:
        part = ref_small[:, _binned(box[1], y0, factor), _binned(box[2], x0, factor)]
        energy.append(float(np.square(part - part.mean()).mean()))
    order = np.argsort(energy)[::-1]
    return [boxes[i] for i in order[:n]]
