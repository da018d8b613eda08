"""The work the widget hands to a worker thread: generators whose yields are :class:`Progress` ticks.

Nothing here touches Qt or the viewer; the widget adds layers only in the
worker's ``returned`` handler, on the main thread, so a cancelled or failed run
leaves no partial layers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

import numpy as np

from ..core.drift import DriftRow
from ..core.params import DEFAULT_WORKERS, Params
from ..core.progress import Progress
from ..core.qc import Reduction, display_bin, projections
from ..core.register import iter_register
from ..core.result import Registration
from ..core.series import STAGE as SERIES_STAGE
from ..core.series import iter_register_series
from ..core.warp import iter_warp
from ..figures import QCPanels, qc_panels

PROJECTION_STAGE = "projections"
DOCK_PLANES = ("xy", "xz", "yz")  # rows of the QC dock's projections (and of the PNG's)


@dataclass
class JobResult:
    registration: Registration
    corrected: np.ndarray
    projections: dict[str, dict[str, np.ndarray]]  # 'reference', 'before', 'after' -> core.qc.projections
    projection_bin: int = 1  # stack pixels per projection pixel in y/x
    panels: QCPanels | None = None  # the QC dock's projections figure, made in the worker


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
    scanned: dict = {}  # the QC projections of both inputs, from the registration's own read
    gen = iter_register(
        reference, moving, params, subvolume=subvolume, voxel_size=voxel_size,
        reference_name=reference_name, moving_name=moving_name, workers=workers, projections_out=scanned,
    )  # fmt: skip
    return _registration_steps(gen, reference, moving, workers, scanned)


def _registration_steps(gen, reference, moving, workers, scanned):
    reg = yield from gen
    b = scanned.get("bin") or display_bin(reference.shape)  # the CLI's QC image uses the same reduction
    reduction = Reduction(reference.shape, b)  # the corrected stack's, as the warp makes its planes
    corrected = yield from iter_warp(
        moving, reg, output_shape=reference.shape, workers=workers, on_plane=reduction.add_plane
    )
    made = {"reference": scanned.get("reference"), "before": scanned.get("moving")}
    steps = (
        ("reference", lambda: projections(reference, bin=b)),
        ("before", lambda: projections(moving, bin=b)),
        ("after", reduction.projections),
    )
    proj = {}
    for i, (key, make) in enumerate(steps):
        proj[key] = made.get(key) or make()
        yield Progress(PROJECTION_STAGE, i + 1, 3)
    _preload_layer_modules()
    return JobResult(reg, corrected, proj, b, _panels(proj, reg))


def _panels(proj: dict, reg: Registration) -> QCPanels:
    """The QC figure's panels (~0.1 s of percentiles and correlations: here, not on the GUI thread),
    with the RGBA form that the dock's figure draws (:meth:`~napari_fidreg.figures.QCPanels.rgba`)."""
    panels = qc_panels(proj["reference"], proj["before"], proj["after"], voxel_size=reg.voxel_size, planes=DOCK_PLANES)
    return panels.keep_rgba()


def _preload_layer_modules() -> None:
    """Import what the GUI thread would otherwise import on the first result: pandas, which
    napari imports for the first Vectors layer with features (~0.25 s), and matplotlib with its
    Qt canvas for the QC dock (~0.6 s). Importing creates no widget. Usually done already by
    :func:`preload_result_modules`'s thread; the worker calls it again in case that thread is
    still at it (an import under way in another thread is waited for, not run twice)."""
    try:
        import pandas  # noqa: F401
    except ImportError:  # pragma: no cover - napari depends on it
        pass
    import matplotlib.backends.backend_qtagg  # noqa: F401
    import matplotlib.figure  # noqa: F401


_preloading: list[threading.Thread] = []


def _warm_up() -> None:
    """The warm-up thread's work; a failure is left for the worker to meet and report (an error
    here would pop up as napari's notification when the dock opens, before any work)."""
    try:
        from ..core.kernels import warm_up

        warm_up()
        _preload_layer_modules()
    except Exception:  # noqa: BLE001 - the worker repeats every step and reports its own errors
        logging.getLogger(__name__).debug("warm-up failed", exc_info=True)


WARM_UP_DELAY_MS = 600  # after a dock is made: once it is laid out and drawn


def preload_result_modules() -> None:
    """Start, WARM_UP_DELAY_MS after a dock is made, once a process and in a thread of its own,
    numba's one-time set-up (:func:`~napari_fidreg.core.kernels.warm_up`) and
    :func:`_preload_layer_modules`, so that they run while the user picks layers.

    In the worker, the imports at the end of the first registration stalled the event loop
    ~0.2 s (the GUI thread waited for the worker's import of pandas to finish), and numba's
    set-up at its start ~0.2 s: the longest stalls of a napari run at 1024^2. Started at once,
    the thread shared the GIL with the dock's own making, which took 0.2-0.3 s instead of 0.07.
    """
    from qtpy.QtCore import QTimer

    if not _preloading:
        thread = threading.Thread(target=_warm_up, name="fidreg-preload")  # not a daemon: never cut mid-import at exit
        _preloading.append(thread)
        QTimer.singleShot(WARM_UP_DELAY_MS, thread.start)


def apply_job(image, registration: Registration, *, order: int = 1, workers: int = DEFAULT_WORKERS):
    """Apply a saved registration to another layer's data; yields progress, returns the corrected array.

    ``order`` 0 (nearest voxel) for labels, 1 (trilinear) for images.
    """
    return iter_warp(image, registration, output_shape=np.shape(image), workers=workers, order=order)


def correction_job(moving, registration: Registration, earlier: JobResult, *, workers: int = DEFAULT_WORKERS):
    """Correct ``moving`` again with a registration whose blocks were rejected or restored by
    hand (nothing is measured); yields progress, returns the :class:`JobResult` of ``earlier``
    with this registration, corrected stack, 'after' projections and QC panels."""
    corrected = yield from iter_warp(moving, registration, output_shape=earlier.corrected.shape, workers=workers)
    proj = {**earlier.projections, "after": projections(corrected, bin=earlier.projection_bin)}
    yield Progress(PROJECTION_STAGE, 1, 1)
    return replace(earlier, registration=registration, corrected=corrected, projections=proj,
                   panels=_panels(proj, registration))  # fmt: skip


@dataclass
class SeriesResult:
    """What a series run hands back: one entry per round, in round order."""

    names: list[str]
    registrations: list[Registration | None]
    errors: list[str]
    corrected: np.ndarray  # (round, z, y, x) on the reference's grid
    projections: dict  # 'reference' -> projections; 'before'/'after' -> list per round
    reference_name: str
    bin: int = 1
    panels: list | None = None  # the QC dock's figure panels per round (None for a failed round)
    from_4d: bool = False  # the rounds of one 4D layer (named after it), not layers of their own

    def rows(self) -> list[DriftRow]:
        return [DriftRow(n, r, e) for n, r, e in zip(self.names, self.registrations, self.errors)]


def series_job(
    reference, rounds, names, params: Params, *, voxel_size=None, reference_name="", workers=DEFAULT_WORKERS
):
    """Register every round, correct it into one 4D array, project it for QC; yields
    :class:`Progress`, returns a :class:`SeriesResult`. Bad input raises here, at the call.

    Each round is corrected and projected as soon as it is registered, from the data its
    registration read: one read per round, and one round in memory at a time.
    """
    ref = np.asarray(reference)
    held: dict[int, np.ndarray] = {}  # the round being registered, kept for its correction
    done: dict[int, object] = {}  # Round of each finished round (on_round)

    def loader(i, source):
        def load():
            held.clear()
            held[i] = np.asarray(source() if callable(source) else source)
            return held[i]

        return load

    # The QC projections of each round from its registration's own read ('moving', kept by
    # on_round), those of the reference once (made in the worker, by _series_steps)
    scanned: dict = {}
    before: dict[int, dict | None] = {}

    def on_round(i, rnd):
        done[i] = rnd
        before[i] = scanned.get("moving")  # none after a round of part of the stacks, or that failed

    gen = iter_register_series(
        ref, [loader(i, r) for i, r in enumerate(rounds)], params, names=names, voxel_size=voxel_size,
        reference_name=reference_name, workers=workers, on_round=on_round, projections_out=scanned,
    )  # fmt: skip
    return _series_steps(gen, ref, scanned, held, done, before, names, reference_name, workers)


def _series_steps(gen, ref, scanned, held, done, scanned_before, names, reference_name, workers):
    corrected = np.zeros((len(names), *ref.shape), dtype=ref.dtype)
    b = display_bin(ref.shape)
    scanned.update(reference=projections(ref, bin=b), bin=b)  # before the first round's scan
    proj = {"reference": scanned["reference"], "before": [], "after": []}
    panels = []
    while True:
        try:
            tick = next(gen)
        except StopIteration as stop:
            rounds = stop.value
            break
        yield tick
        if tick.stage != SERIES_STAGE or tick.done == 0:
            continue
        i = tick.done - 1  # round i is done (on_round ran before this tick)
        rnd, moving = done[i], held.pop(i, None)
        if rnd.registration is None:
            before = after = panel = None
        else:
            reduction = Reduction(ref.shape, b)  # the corrected round's, as the warp makes its planes
            yield from (t.about(rnd.name) for t in iter_warp(moving, rnd.registration, output_shape=ref.shape,
                                                              workers=workers, out=corrected[i],
                                                              on_plane=reduction.add_plane))  # fmt: skip
            before = scanned_before.get(i)
            if before is None:  # a round of another shape (registered on the common region)
                before = projections(moving, bin=b)
            after = reduction.projections()
            # the QC dock's panels (~0.1 s a round of percentiles and scores): here, not on the GUI thread
            panel = qc_panels(proj["reference"], before, after, voxel_size=rnd.registration.voxel_size,
                              planes=DOCK_PLANES)  # fmt: skip
        proj["before"].append(before)
        proj["after"].append(after)
        panels.append(panel)
    return SeriesResult(
        names=list(names), registrations=[r.registration for r in rounds], errors=[r.error or "" for r in rounds],
        corrected=corrected, projections=proj, reference_name=reference_name, bin=b, panels=panels,
    )  # fmt: skip
