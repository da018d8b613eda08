"""The registration dock widget: a magicgui Container, thin over the core.

Layout and event wiring only: the work runs in :mod:`.jobs` on a napari worker
thread; results become layers through :mod:`.layers`, in the main thread; the QC
figures go to a dock of their own (:mod:`.qc_dock`), not into the scene; Save and
Apply are in :mod:`.save_apply`, rejecting blocks by hand in :mod:`.review`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    Table,
)

from ..core.errors import FidregError
from ..core.params import MIN_BLOCK_YX, MIN_BLOCK_Z, Params
from . import layers as L
from . import region as R
from .inputs import zero_or_at_least
from .jobs import JobResult, preload_result_modules, registration_job
from .qc_dock import QCDock, qc_dock_of
from .region import SUBVOLUME_LAYER
from .review import BlockReview
from .save_apply import SaveApplyMixin, target_layers
from .ticks import TickGate

if TYPE_CHECKING:
    import napari

TABLE_MAX_HEIGHT = 250  # px: the header and about eight rows
LAYER_GAP_MS = 15  # between the result layers' additions (see RegistrationWidget._add_next_soon)


class RegistrationWidget(SaveApplyMixin, Container):
    """Register a moving fiducial layer onto a reference layer, look at the result, reject blocks by
    hand, save or re-apply it."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(scrollable=True)
        self.viewer = viewer
        self.result: JobResult | None = None
        self.worker = None
        self._pending: list[tuple] = []  # result layers still to add
        self._reuse: set[str] = set()  # names of those that update a layer already there
        self._then = None  # what to do once they are in
        self._worker_done = True
        self._ended_as = ""  # what the progress bar says once a run is over: done, cancelled, failed
        self.last_error: str = ""
        self._run_layers: tuple = ()  # (reference, moving) of the result shown
        preload_result_modules()  # numba set-up, pandas and matplotlib, while the user picks layers

        self.reference = ComboBox(label="reference", choices=self._image_layers, nullable=True)
        self.moving = ComboBox(label="moving", choices=self._image_layers, nullable=True)
        self.voxel_size = LineEdit(
            label="voxel size z,y,x (µm)", value="",
            tooltip="prefilled from the reference layer's scale; empty when unknown (napari's scale 1, 1, 1). "
            "A value typed here is applied to the reference and moving layers and recorded in the result",
        )  # fmt: skip
        self.use_subvolume = CheckBox(text="restrict to the box drawn in 'fidreg: sub-volume'", value=False)
        self.draw_box = PushButton(text="Draw sub-volume box")
        self.z_start = SpinBox(label="z from", min=0, max=100000, value=0)
        self.z_stop = SpinBox(label="z to (0 = last)", min=0, max=100000, value=0)
        self.with_blocks = CheckBox(text="global + block shifts (off: global only)", value=True)
        self.block_size = SpinBox(label="block size y/x", min=MIN_BLOCK_YX, max=8192, step=16, value=128)
        self.block_size_z = zero_or_at_least(
            SpinBox(label="block depth z (0 = all)", min=0, max=10000, value=0), MIN_BLOCK_Z
        )  # fmt: skip
        self.refine_blocks = CheckBox(text="refine block shifts (more precise, slower)", value=False)
        self.hot_pixels = CheckBox(text="remove hot pixels", value=True)
        self.background = CheckBox(text="subtract background", value=True)
        self.background_sigma = FloatSpinBox(
            label="background scale (px)", min=1.0, max=500.0, step=1.0, value=Params.background_sigma,
            tooltip="larger than a fiducial: raise it for large (defocused) beads; dense texture is handled "
            "automatically (4 px is tried when the peaks are weak)",
        )  # fmt: skip
        self.max_local_shift = FloatSpinBox(
            label="max local shift (px)", min=0.5, max=100.0, step=0.5, value=Params.max_local_shift,
            tooltip="largest difference between a block's shift and the global shift; raise it for strong deformation",
        )  # fmt: skip
        self.min_sharpness = FloatSpinBox(
            label="min block sharpness", min=0.0, max=1000.0, step=1.0, value=Params.min_sharpness,
            tooltip="blocks whose correlation peak-to-sidelobe ratio is below this are rejected "
            "(noise gives 4-6, a few fiducials 15 and more); raise it to reject more weak blocks",
        )  # fmt: skip
        self.run_button = PushButton(text="Register")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = Label(value="")
        self.shift_label = Label(value="")
        self.shift_label.tooltip = L.SUMMARY_HELP
        self.table = Table(value={"block": []})
        self.reasons = Label(value="")  # why the rejected (or the selected rejected) blocks were rejected
        self.review = BlockReview(self)
        self.out_dir = FileEdit(label="save to folder", mode="d", value=Path.cwd())
        self.save_button = PushButton(text="Save shifts + corrected stack", enabled=False)
        self.shifts_file = FileEdit(label="shifts file", mode="r", filter="*.json")
        self.apply_target = ComboBox(label="apply to layer", choices=lambda _: target_layers(viewer), nullable=True,
                                     tooltip="an image (any dtype) or a labels layer (nearest voxel, dtype kept)")  # fmt: skip
        self.apply_button = PushButton(text="Apply shifts to layer")

        self._results_box = Container(widgets=[self.status, self.shift_label, self.table, self.reasons], labels=False)
        self.extend([
            Label(value="<b>Layers</b>"), self.reference, self.moving, self.voxel_size,
            Label(value="<b>Region</b>"), self.use_subvolume, self.draw_box, self.z_start, self.z_stop,
            Label(value="<b>Options</b>"), self.with_blocks, self.block_size, self.block_size_z, self.refine_blocks,
            self.hot_pixels, self.background, self.background_sigma, self.max_local_shift, self.min_sharpness,
            self.run_button, self.cancel_button, self.progress,
            self._results_box,
            self.review.buttons, Label(value="<b>Save / re-apply</b>"), self.out_dir, self.save_button,
            self.shifts_file, self.apply_target, self.apply_button,
        ])  # fmt: skip
        from qtpy.QtWidgets import QSizePolicy, QStyledItemDelegate

        for label in (self.status, self.shift_label, self.reasons):
            label.native.setWordWrap(True)  # long messages wrap instead of widening the dock
            label.native.setMinimumWidth(100)  # a wrapped label's own minimum follows its text (700 px)
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.table.native.setMinimumHeight(120)
        self.table.visible = False  # until a result with blocks
        # eight rows or so, then it scrolls: taller, it pushed Save / re-apply below the dock's
        # fold after every run (a new user's report)
        self.table.native.setMaximumHeight(TABLE_MAX_HEIGHT)
        self.table.native.itemSelectionChanged.connect(self._show_reasons)
        # read-only: blocks are rejected by selecting rows and clicking Reject (an edited number
        # would not change the result); shown as formatted here (magicgui's delegate turns 0.072
        # into 7.200e-02 beside -0.825)
        self.table.native.setEditTriggers(self.table.native.EditTrigger.NoEditTriggers)
        self.table.native.setItemDelegate(QStyledItemDelegate(self.table.native))
        self.table.native.verticalHeader().setVisible(False)  # row numbers: the 'block' column says which
        _span_the_label_column(self._results_box)
        Container.native.fget(self).layout().addStretch(1)  # a tall dock's spare height under the last row
        self.max_width = 520  # a dock, not a page: the table scrolls sideways instead
        # as wide as its fields (~470 px once laid out) and the scroll bar, so that the dock
        # scrolls up and down but never cuts them off
        self.min_width = 490
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.draw_box.changed.connect(self.add_subvolume_layer)
        self.save_button.changed.connect(lambda: self.save(Path(self.out_dir.value)))
        self.apply_button.changed.connect(self.apply_saved)
        self.use_subvolume.changed.connect(self._show_box)
        viewer.layers.events.inserted.connect(self._layers_changed)
        viewer.layers.events.removed.connect(self._layers_changed)
        self.reference.changed.connect(self._prefill_voxel_size)
        self._layers_changed()
        self._prefill_voxel_size()

    @property
    def native(self):
        """The outermost Qt widget, the scroll area: napari docks ``.native``, and magicgui's
        ``.native`` of a scrollable container is the inner widget, which docking took out of
        its scroll area (the dock then could not scroll and asked for ~1000 px of height)."""
        return self.root_native_widget

    # -- layer pickers ------------------------------------------------------------
    def _image_layers(self, widget=None) -> list:
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb]

    def _layers_changed(self, event=None) -> None:
        for combo in (self.reference, self.moving, self.apply_target):
            combo.reset_choices()
        layers = self._image_layers()
        by_role = {layer.metadata.get("fidreg_role"): layer for layer in layers}
        if self.reference.value is None and layers:
            self.reference.value = by_role.get("reference", layers[0])
        if (self.moving.value is None or self.moving.value is self.reference.value) and len(layers) > 1:
            self.moving.value = by_role.get("moving", next(x for x in layers if x is not self.reference.value))

    def _prefill_voxel_size(self, *_) -> None:
        self.voxel_size.value = R.voxel_size_text(self.reference.value)
        self.block_size.value = R.fitting_block_size(self.reference.value, int(self.block_size.value))

    def chosen_voxel_size(self) -> tuple[float, float, float] | None:
        """The voxel size in the field (µm), or None when it is empty."""
        return R.parse_voxel_size(self.voxel_size.value)

    # -- sub-volume -----------------------------------------------------------------
    def add_subvolume_layer(self) -> None:
        """Add (or select) the Shapes layer in which the user draws the y/x box."""
        layer = R.subvolume_layer(self.viewer, self.reference.value)
        self.viewer.layers.selection.active = layer
        self.use_subvolume.value = True  # shows the layer, which resets its mode to pan/zoom:
        layer.mode = "add_rectangle"  # so the mode is set after it

    def _show_box(self, on: bool) -> None:
        if SUBVOLUME_LAYER in self.viewer.layers:
            self.viewer.layers[SUBVOLUME_LAYER].visible = bool(on)

    def subvolume(self) -> tuple | None:
        """The chosen region in reference pixel indices ((z0, z1), (y0, y1), (x0, x1)), or None."""
        return R.subvolume(
            self.viewer, self.reference.value, self.z_start.value, self.z_stop.value, self.use_subvolume.value
        )

    # -- run / cancel -------------------------------------------------------------
    def params(self) -> Params:
        return Params(
            block_size=int(self.block_size.value) if self.with_blocks.value else None,
            block_size_z=int(self.block_size_z.value) or None,
            hot_pixels=bool(self.hot_pixels.value),
            background=bool(self.background.value),
            background_sigma=float(self.background_sigma.value),
            max_local_shift=float(self.max_local_shift.value),
            min_sharpness=float(self.min_sharpness.value),
            refine_blocks=bool(self.refine_blocks.value),
        )

    def run(self) -> None:
        """Start a registration in a worker thread (the UI stays responsive)."""
        if self.worker is not None:
            return
        try:
            voxel = self.chosen_voxel_size()
            if voxel is not None:  # the field applies to both layers: they are then placed in µm
                for layer in (self.reference.value, self.moving.value):
                    if layer is not None:
                        layer.scale = (*tuple(layer.scale)[:-3], *voxel)
            ref, mov = self._checked_layers()
            params = self.params()
            subvolume = self.subvolume()
        except FidregError as exc:
            self._on_worker_error(exc)
            return
        try:  # checks inputs and parameters now, before any thread starts
            job = registration_job(
                np.asarray(ref.data), np.asarray(mov.data), params, subvolume=subvolume,
                voxel_size=voxel, reference_name=ref.name, moving_name=mov.name,
            )  # fmt: skip
        except FidregError as exc:
            self._on_worker_error(exc)
            return
        self.worker = self._worker(job, lambda res: self._on_registered(res, ref, mov))
        self._worker_done = False
        self._started = time.perf_counter()
        self._set_running(True)
        self._set_status("registering …")
        self.worker.start()

    def _worker(self, job, on_returned):
        """A napari worker over a job generator; its handlers run on the GUI thread."""
        from napari.qt.threading import create_worker

        # Passing 'errored' in _connect stops superqt from re-raising the exception in
        # the GUI thread; _on_worker_error turns it into a notification instead.
        self._ended_as = ""

        def returned(res):
            self._ended_as = "done"
            on_returned(res)

        def errored(exc):
            self._ended_as = "failed"
            self._on_worker_error(exc)

        def aborted():
            self._ended_as = "cancelled"
            self._set_status("cancelled: nothing was changed")

        ticks = TickGate(self._on_progress)
        worker = create_worker(
            lambda: (yield from job),
            _start_thread=False,
            _connect={
                "yielded": ticks,
                "returned": returned,
                "errored": errored,
                "aborted": aborted,
                "finished": self._finished,
            },
        )
        ticks.follow(worker)
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()  # stops at the next progress tick (one block or one plane)
            self._set_status("cancelling …")

    def _checked_layers(self):
        ref, mov = self.reference.value, self.moving.value
        if ref is None or mov is None:
            raise FidregError("choose a reference and a moving layer (3D image layers)")
        if ref is mov:
            raise FidregError("the reference and the moving layer are the same layer")
        if not np.allclose(ref.scale[-3:], mov.scale[-3:]):
            raise FidregError(
                f"reference scale {tuple(ref.scale)} and moving scale {tuple(mov.scale)} differ: "
                "resample one of them first"
            )
        return ref, mov

    def _on_progress(self, tick) -> None:
        self.progress.max = max(int(tick.total), 1)
        self.progress.value = int(tick.done)
        self.progress.label = tick.stage
        self._set_status(f"{tick.label}: {tick.done}/{tick.total}")

    def _on_registered(self, res: JobResult, ref, mov) -> None:
        self.result = res
        self._run_layers = (ref, mov)
        res.registration.reference_file, res.registration.moving_file = L.source_file(ref), L.source_file(mov)
        self.review.reset()
        geom = L.Geometry.of(ref)
        # overlay colours: reference green, moving magenta, added
        for layer, cmap in ((ref, "green"), (mov, "magenta")):
            layer.colormap = cmap
            layer.blending = "additive"
        data = [L.corrected_layer(res.corrected, mov.name, geom, contrast=tuple(mov.contrast_limits))]
        data += L.block_layers(res.registration, geom)
        self._show_text()

        def done():
            mov.visible = False  # the overlay shows the corrected layer; tick 'moving' to compare
            self.save_button.enabled = True
            # the QC dock once the layers are in, each in a turn of its own: made with them, its
            # figure's first build and paint fell in the turn of a layer's first draw (0.28-0.40 s
            # stalls at 1024^2 under Xvfb, against 0.15-0.2 s for the worst layer alone)
            self._show_qc()
            self._set_status(f"done in {time.perf_counter() - self._started:.1f} s")
            self._bring_results_into_view()

        self._replace_layers(data, then=done)

    def _show_text(self) -> None:
        """The result's text and block table in the dock, rejected blocks in the colours of their
        crosses, with their reason as the row's tooltip and under the table."""
        from qtpy.QtGui import QColor

        reg = self.result.registration
        self.shift_label.value = L.result_text(reg)
        self.table.value = L.block_table(reg) if reg.has_blocks else {"block": []}
        self.table.visible = reg.has_blocks  # an empty table's frame said nothing
        table = self.table.native
        for row, b in enumerate(reg.blocks if reg.has_blocks else ()):
            if b.inlier:
                continue
            colour = QColor.fromRgbF(*L.rejected_colour(b))
            tip = L.rejected_tooltip(b)
            for col in range(table.columnCount()):
                item = table.item(row, col)
                item.setForeground(colour)
                item.setToolTip(tip)
        table.resizeColumnsToContents()  # 7 columns in a dock's width: no 100 px each
        self._show_reasons()

    def _show_reasons(self) -> None:
        """Why blocks were rejected: the selected ones, or all (the first few)."""
        reg = None if self.result is None else self.result.registration
        text = L.rejection_text(reg, self.review.selected()) if reg is not None and reg.has_blocks else ""
        self.reasons.value = text
        self.reasons.visible = bool(text)

    def _bring_results_into_view(self) -> None:
        """Scroll the dock so that the result's text and Save / re-apply are in view (they were
        below its fold after a run on a window of ordinary height)."""
        from qtpy.QtCore import QTimer

        area = self.native
        if not hasattr(area, "ensureWidgetVisible"):
            return

        def scroll():  # once the new text and table are laid out: their heights move what is below
            area.ensureWidgetVisible(self.apply_button.native, 0, 10)
            area.ensureWidgetVisible(self.status.native, 0, 10)  # the top wins when both do not fit

        QTimer.singleShot(0, scroll)

    def _show_qc(self) -> None:
        """The result's QC figures, in the QC dock (added the first time)."""
        reg = self.result.registration
        self.qc_dock().show_result(self.result.projections, reg, title=f"{reg.moving} onto {reg.reference}",
                                   arrow_gain=L.VECTOR_GAIN, panels=self.result.panels)  # fmt: skip

    def qc_dock(self) -> QCDock:
        """The QC dock (added below the canvas the first time, and again if the user closed it)."""
        return qc_dock_of(self.viewer)

    def _replace_layers(self, data: list[tuple], then=None) -> None:
        """Add result layers, one per turn of the event loop, so that the GUI never stalls for
        the whole set (nine layers took ~0.6 s together); layers from a previous run with the
        same names are replaced. ``then`` runs once the last layer is in.

        An image layer of the same name and dimensions (the registered stack of an earlier
        run) takes the new data in place: removed and added again 15 ms after the block
        layers' removal, it crashed the GL draw of the next paint (vispy's glDrawArrays,
        Mesa under Xvfb: the second Register of a shown viewer), and removing a layer costs
        napari ~0.25 s of the GUI thread besides."""
        names = {meta["name"] for _, meta, _ in data}
        reuse = {
            meta["name"] for array, meta, kind in data
            if kind == "image" and meta["name"] in self.viewer.layers
            and self.viewer.layers[meta["name"]]._type_string == "image"
            and self.viewer.layers[meta["name"]].ndim == np.ndim(array)
        }  # fmt: skip
        stale = [
            layer for layer in self.viewer.layers
            if (layer.name in names or layer.name.startswith(L.PREFIX)) and layer.name not in reuse
        ]  # fmt: skip
        for layer in stale:
            if layer.name != SUBVOLUME_LAYER:
                self.viewer.layers.remove(layer)
        self._reuse = reuse
        self._pending = list(data)
        self._then = then
        self._keep_active = self.viewer.layers.selection.active  # each added layer becomes active
        self._add_next_soon()

    def _after_a_turn(self, then) -> None:
        """Run ``then`` in a later turn of the event loop, as after the last result layer (the
        run ends after it)."""
        self._pending, self._then = [], then
        self._add_next_soon()

    def _add_next_soon(self) -> None:
        """The next layer after LAYER_GAP_MS: a zero timer let the additions, the canvas's first
        draws and the QC figure's run back to back, one 0.26 s stall at 1024^2, where this
        leaves the event loop its turn (other timers, input) between them."""
        from qtpy.QtCore import QTimer

        QTimer.singleShot(LAYER_GAP_MS, self._add_next)

    def _add_next(self) -> None:
        if self._pending:
            array, meta, kind = self._pending.pop(0)
            if meta["name"] in self._reuse and meta["name"] in self.viewer.layers:
                L.update_image(self.viewer.layers[meta["name"]], array, meta)
            else:
                getattr(self.viewer, f"add_{kind}")(array, **meta)
            self._add_next_soon()
            return
        then, self._then = self._then, None
        keep, self._keep_active = getattr(self, "_keep_active", None), None
        if keep is not None and keep in self.viewer.layers:  # e.g. the sub-volume box, still drawing
            self.viewer.layers.selection.active = keep
        if then is not None:
            then()
        if self._worker_done:
            self._finished()

    def _finished(self) -> None:
        """The worker has stopped; the run is over once its layers are in as well."""
        self._worker_done = True
        if self._pending or self._then is not None:
            return  # _add_next calls again after the last layer
        self.worker = None
        self._set_running(False)
        # the bar said the last stage ('projections', 100 %) as if it were still at work
        if self._ended_as:
            self.progress.label = self._ended_as

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running
        self.apply_button.enabled = not running
        self.review.update(running)

    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        msg = str(exc) if isinstance(exc, FidregError) else f"{type(exc).__name__}: {exc}"
        self.last_error = msg
        self._set_status(f"error: {msg}")
        show_error(f"fidreg: {msg}")

    def _on_worker_error(self, exc: BaseException) -> None:
        """A registration that failed leaves nothing of an earlier run's result behind (its
        text would read as this run's)."""
        self.result = None
        self._run_layers = ()
        self.shift_label.value = ""
        self.table.value = {"block": []}
        self.table.visible = False
        self._show_reasons()
        self.save_button.enabled = False
        self.review.reset()
        self.qc_dock().clear(f"the last run failed: {exc}")
        self._error(exc)


def _span_the_label_column(box) -> None:
    """Hide the empty label that the dock's labelled layout puts left of ``box`` (the result's
    text and block table), so that the box takes the dock's whole width: the table showed 2.5
    of its 7 columns beside ~180 px of nothing (a new user's report). magicgui wraps the box
    with a QLabel in a widget of their own; any other layout is left as it is."""
    from qtpy.QtWidgets import QLabel

    holder = box.native.parentWidget()
    if holder is None or holder is box.native:
        return
    for child in holder.children():
        if isinstance(child, QLabel) and not child.text().strip():
            child.setVisible(False)  # a hidden widget takes no room in its layout
