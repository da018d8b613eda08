"""The work the widget hands to a worker thread: generators whose yields are :class:`Progress` ticks.

Nothing here touches Qt or the viewer; the widget adds layers only in the
worker's ``returned`` handler, on the main thread, so a cancelled or failed run
leaves no partial layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.params import Params
from ..core.progress import Progress
from ..core.qc import display_bin, projections
from ..core.register import DEFAULT_WORKERS, iter_register
from ..core.result import Registration
from ..core.warp import iter_warp

PROJECTION_STAGE = "projections"


@dataclass
class JobResult:
    registration: Registration
    corrected: np.ndarray
    projections: dict[str, dict[str, np.ndarray]]  # 'reference', 'before', 'after' -> core.qc.projections
    projection_bin: int = 1  # stack pixels per projection pixel in y/x


def registration_job(
    reference,
    moving,
    params: Params,
    *,
    subvolume=None,
    voxel_size=None,
    reference_name="",
    moving_name="",
    workers: int = DEFAULT_WORKERS,
):
    """Register, correct and project; yields :class:`Progress`, returns a :class:`JobResult`.

    Bad input raises :class:`FidregError` here, at the call, not in the worker.
    """
    gen = iter_register(
        reference, moving, params, subvolume=subvolume, voxel_size=voxel_size,
        reference_name=reference_name, moving_name=moving_name, workers=workers,
    )  # fmt: skip
    return _registration_steps(gen, reference, moving, workers)


def _registration_steps(gen, reference, moving, workers):
    reg = yield from gen
    corrected = yield from iter_warp(moving, reg, output_shape=reference.shape, workers=workers)
    proj = {}
    b = display_bin(reference.shape)  # the CLI's QC image uses the same reduction
    for i, (key, vol) in enumerate((("reference", reference), ("before", moving), ("after", corrected))):
        proj[key] = projections(vol, bin=b)
        yield Progress(PROJECTION_STAGE, i + 1, 3)
    _preload_layer_modules()
    return JobResult(reg, corrected, proj, b)


def _preload_layer_modules() -> None:
    """Import here, in the worker, what napari imports when the first Vectors layer with
    features is made (pandas: ~0.25 s that would otherwise freeze the GUI thread)."""
    try:
        import pandas  # noqa: F401
    except ImportError:  # pragma: no cover - napari depends on it
        pass


def apply_job(image, registration: Registration, *, order: int = 1, workers: int = DEFAULT_WORKERS):
    """Apply a saved registration to another layer's data; yields progress, returns the corrected array.

    ``order`` 0 (nearest voxel) for labels, 1 (trilinear) for images.
    """
    return iter_warp(image, registration, output_shape=np.shape(image), workers=workers, order=order)


def correction_job(moving, registration: Registration, output_shape, bin: int, *, workers: int = DEFAULT_WORKERS):
    """Correct ``moving`` again with a registration whose blocks were rejected or restored by
    hand (nothing is measured); yields progress, returns (corrected stack, its projections)."""
    corrected = yield from iter_warp(moving, registration, output_shape=output_shape, workers=workers)
    after = projections(corrected, bin=bin)
    yield Progress(PROJECTION_STAGE, 1, 1)
    return corrected, after
