"""The work the widget hands to a worker thread: generators whose yields are progress ticks.

Nothing here touches Qt or the viewer; the widget adds layers only in the
worker's ``returned`` handler, on the main thread, so a cancelled or failed run
leaves no partial layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.params import Params
from ..core.progress import relabel
from ..core.qc import projections
from ..core.register import iter_register
from ..core.result import Registration
from ..core.warp import iter_warp


@dataclass
class JobResult:
    registration: Registration
    corrected: np.ndarray
    projections: dict[str, dict[str, np.ndarray]]


def registration_job(reference, moving, params: Params, *, voxel_size=None, reference_name="", moving_name=""):
    """Register, correct and project; yields (stage, done, total), returns a :class:`JobResult`.

    Bad input raises :class:`FidregError` here, at the call, not in the worker.
    """
    gen = iter_register(
        reference, moving, params, voxel_size=voxel_size, reference_name=reference_name, moving_name=moving_name
    )
    return _registration_steps(gen, reference, moving, params)


def _registration_steps(gen, reference, moving, params):
    reg = yield from relabel(gen, lambda p: (p.stage, p.done, p.total))
    corrected = yield from relabel(
        iter_warp(moving, reg, output_shape=reference.shape, workers=params.workers),
        lambda t: ("correcting", t[0], t[1]),
    )
    proj = {}
    for i, (key, vol) in enumerate((("reference", reference), ("before", moving), ("after", corrected))):
        proj[key] = projections(vol)
        yield ("projections", i + 1, 3)
    return JobResult(reg, corrected, proj)


def apply_job(image, registration: Registration, *, workers: int = 2):
    """Apply a saved registration to another layer's data; yields progress, returns the corrected array."""
    out = yield from relabel(
        iter_warp(image, registration, output_shape=np.shape(image), workers=workers),
        lambda t: ("correcting", t[0], t[1]),
    )
    return out
