"""Register a moving fiducial stack onto a reference: global shift, then block shifts.

Pipeline (see ``docs/method.md``), one module a step:

1. :mod:`.coarse`: one read of each stack; hot-pixel mask from the per-(y, x)
   minimum over z of both; a coarse global shift on copies binned in y/x;
2. :mod:`.global_shift`: refinement at full resolution on the ``n_global_blocks``
   richest blocks, each taken from the moving stack at the coarse integer offset,
   combined robustly (with one finer-background retry for dense texture);
3. :mod:`.block_grid`: optionally, every block of the user's grid measured the
   same way around the global shift, outliers rejected and filled from neighbours.

:func:`iter_register` is a generator: each ``yield`` reports :class:`Progress` and
is a point where the caller (a napari worker, a CLI progress bar) may stop it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .block_grid import box_key, measure_grid, rejection_note
from .blocks import tile
from .coarse import READ_STAGE, iter_coarse_shift
from .errors import FidregError
from .global_shift import refine_global_shift
from .measure import Pair
from .params import DEFAULT_WORKERS, MIN_BLOCK_YX, Params, Subvolume, check_measurable_blocks, check_subvolume
from .progress import Progress, Ticker, drain
from .qc import display_bin
from .result import Registration
from .validate import as_volume, checked_voxel_size


def register(reference, moving, params: Params | None = None, **options: Any) -> Registration:
    """Register ``moving`` onto ``reference`` and return the :class:`Registration`.

    Parameters
    ----------
    reference, moving : array-like, (z, y, x)
        Fiducial stacks of the same field (any integer or float dtype; numpy,
        memmap, or any array that supports slicing). Never modified.
    params : Params, optional
        The algorithm's parameters; keyword arguments named like its fields
        override them (``block_size=256`` ...).
    subvolume : ((z0, z1), (y0, y1), (x0, x1)), optional, keyword-only
        Half-open index ranges of the reference that the computation is
        restricted to; default the whole common volume. Recorded in the result.
    voxel_size : (z, y, x) micrometres, optional, keyword-only
        Recorded in the result, which then also gives shifts in µm.
    reference_name, moving_name : str, optional, keyword-only
        Recorded in the result.
    workers : int, keyword-only
        Threads for FFTs and block work (default 2). Does not change the result.
    projections_out : dict, optional, keyword-only
        When given, and the registration covers the whole of both stacks (same shape,
        no ``subvolume``), it receives ``'reference'`` and ``'moving'``: the QC
        projections of the two stacks, as :func:`~napari_fidreg.core.qc.projections`
        makes them, from the binned copies that the registration reads anyway, and
        ``'bin'``, their y/x binning (:func:`~napari_fidreg.core.qc.display_bin`). A QC
        image drawn from them costs no second read of either stack. Left empty otherwise.
        A ``'reference'`` it already holds with the same ``'bin'`` (the same reference's,
        from the previous stack of a batch) is kept, not made again.

    Returns
    -------
    Registration
        ``global_shift`` is what to apply to ``moving`` to align it onto
        ``reference``; see :data:`napari_fidreg.core.SIGN_CONVENTION`.

    Raises
    ------
    FidregError
        Bad input or parameters, with a one-line message naming the problem.
    """
    return drain(iter_register(reference, moving, params, **options))


def iter_register(
    reference,
    moving,
    params: Params | None = None,
    *,
    subvolume: Subvolume | None = None,
    voxel_size: Iterable[float] | None = None,
    reference_name: str = "",
    moving_name: str = "",
    workers: int = DEFAULT_WORKERS,
    projections_out: dict | None = None,
    **overrides: Any,
) -> Generator[Progress, None, Registration]:
    """Generator form of :func:`register` (same arguments): yields :class:`Progress`, returns the result.

    Inputs and parameters are checked when this is *called*, before the first
    ``next()``, so a GUI can refuse bad input before starting a worker.
    """
    params = (params or Params()).with_(**overrides) if overrides else (params or Params())
    ref = as_volume(reference, "reference")
    mov = as_volume(moving, "moving")
    if (ref.shape[0] == 1) != (mov.shape[0] == 1):
        single, other = ("reference", mov) if ref.shape[0] == 1 else ("moving", ref)
        raise FidregError(
            f"{single} is a single image (one plane) but the other stack has {other.shape[0]} planes: "
            "register images with images and stacks with stacks"
        )
    if not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1:
        raise FidregError(f"workers must be an integer >= 1, got {workers!r}")
    if projections_out is not None and not isinstance(projections_out, dict):
        raise FidregError(f"projections_out must be a dict or None, got {type(projections_out).__name__}")
    sub = None if subvolume is None else check_subvolume(subvolume)
    region = _region(ref.shape, mov.shape, sub)
    for (a, b), axis in zip(region[1:], "yx"):
        if b - a < MIN_BLOCK_YX:
            what = "the subvolume" if sub is not None else "the region common to both stacks"
            raise FidregError(
                f"{what} is {b - a} px along {axis}, too small to correlate (at least {MIN_BLOCK_YX}): "
                f"reference {tuple(ref.shape)}, moving {tuple(mov.shape)}"
            )
    grid, grid_shape = [], (0, 0, 0)
    check_measurable_blocks(params, ref.shape[0])
    if params.block_size is not None:
        bz = params.block_size_z or (region[0][1] - region[0][0])
        grid, grid_shape = tile(region, (bz, params.block_size, params.block_size))  # checks sizes
    vs = checked_voxel_size(voxel_size)
    record = {
        "reference_shape": tuple(int(v) for v in ref.shape),
        "moving_shape": tuple(int(v) for v in mov.shape),
        "subvolume": sub,
        "voxel_size": vs,
        "reference": reference_name,
        "moving": moving_name,
    }
    return _run(_Checked(ref, mov, params, region, grid, grid_shape, workers, record, projections_out))


@dataclass(frozen=True)
class _Checked:
    """The inputs of one registration, checked."""

    ref: Any
    mov: Any
    params: Params
    region: tuple[tuple[int, int], ...]
    grid: list  # the user's blocks, empty for a global-only run
    grid_shape: tuple[int, int, int]
    workers: int
    record: dict  # fields of the Registration that are known before any work
    projections_out: dict | None = None  # receives the coarse scan's QC projections


def _run(job: _Checked) -> Generator[Progress, None, Registration]:
    """The work of :func:`iter_register`, after its checks."""
    ref, mov, params, grid, workers = job.ref, job.mov, job.params, job.grid, job.workers
    warnings: list[str] = []
    if ref.shape != mov.shape:
        warnings.append(
            f"reference {ref.shape} and moving {mov.shape} differ in shape: registered on their common region"
        )
    yield Progress(READ_STAGE, 0, 1)  # at once: a GUI shows that work has started
    out = job.projections_out
    factor = display_bin([b - a for a, b in job.region])  # the coarse scan's
    known = out is not None and out.get("bin") == factor and out.get("reference") is not None
    keep = (out is not None and not known, out is not None)
    coarse = yield from iter_coarse_shift(ref, mov, job.region, params, workers=workers, keep_projections=keep)
    if out is not None:
        if coarse.projections is None:
            out.clear()  # part of the stacks only: no QC projections (nor an earlier stack's)
        else:
            reference, moving = coarse.projections
            out.update(reference=out["reference"] if known else reference, moving=moving, bin=coarse.factor)
    if coarse.estimate.at_limit:
        warnings.append(
            f"the coarse shift {np.round(coarse.shift, 1).tolist()} is at the search limit "
            f"{np.round(coarse.max_shift, 1).tolist()}: the true shift may be larger (raise max_shift)"
        )
    # The coarse step is binned in y/x only: its z estimate is within a plane, its y/x
    # within about a bin of its correlation.
    cf = coarse.correlation_factor
    margin = (4.0, float(max(4, cf + 2)), float(max(4, cf + 2)))
    ticks = Ticker(len(coarse.candidates) + len(grid))
    found = yield from refine_global_shift(
        Pair(ref, mov, coarse.hot, params),
        coarse.candidates,
        np.rint(coarse.shift).astype(int),
        margin,
        ticks,
        workers=workers,
    )
    params = found.params  # a dense-texture retry changes the background scale
    warnings += found.notes
    if found.combined is None:
        shift, score, sharpness = coarse.shift, coarse.estimate.score, coarse.estimate.sharpness
    else:
        shift, score, sharpness = found.combined.shift, found.combined.score, found.combined.sharpness
    uncertainty = found.verdict.uncertainty

    blocks, consensus = [], None
    if grid:
        known = dict(zip(map(box_key, coarse.candidates), found.measured))
        blocks, consensus = yield from measure_grid(
            Pair(ref, mov, coarse.hot, params), grid, job.grid_shape, shift, known, ticks, workers=workers
        )
        n_in = sum(b.inlier for b in blocks)
        if n_in < len(blocks):
            warnings.append(rejection_note(len(blocks) - n_in, len(blocks)))
    return Registration(
        global_shift=tuple(float(v) for v in shift),
        global_score=float(score),
        global_sharpness=float(sharpness),
        global_confident=found.verdict.confident,
        global_uncertainty=None if uncertainty is None else tuple(float(v) for v in uncertainty),
        consensus_shift=consensus,
        blocks=blocks,
        grid_shape=tuple(job.grid_shape),
        params=params,
        warnings=warnings,
        **job.record,
    )


def _region(ref_shape, mov_shape, subvolume) -> tuple[tuple[int, int], ...]:
    common = [min(a, b) for a, b in zip(ref_shape, mov_shape)]
    if subvolume is None:
        return tuple((0, n) for n in common)
    for (a, b), n, axis in zip(subvolume, common, "zyx"):
        if b > n:
            raise FidregError(f"subvolume {axis} range {a}:{b} goes past the stack's {axis} extent {n}")
    return tuple(tuple(r) for r in subvolume)
