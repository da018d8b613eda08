"""The series dock: every round of a series onto one reference round, in one run.

The moving rounds are one 4D (round, z, y, x) image layer (a file of rounds opened with
this plugin's reader) or several 3D layers chosen at once. The run is the core's
:func:`~napari_fidreg.core.series.iter_register_series` on a worker thread (progress per
round and stage, Cancel at the next tick); the result is ONE layer, ``<name> registered``,
4D with the rounds under the same slider, rather than a pile of additive layers. The
block arrows and the QC dock's views follow the round under the slider; the QC dock gains
a drift tab (:func:`napari_fidreg.drift_plot.drift_figure`, the CLI's ``drift.png``).
Save writes every round's result set and the drift table, as the CLI does.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, LineEdit, ProgressBar, PushButton, Select, SpinBox

from ..core.drift import DriftRow
from ..core.errors import FidregError
from ..core.params import MIN_BLOCK_YX, Params
from ..core.progress import Progress
from . import layers as L
from . import region as R
from .inputs import zero_or_at_least
from .jobs import SeriesResult, preload_result_modules, series_job
from .ticks import TickGate

if TYPE_CHECKING:
    import napari

DRIFT_TAB = "drift over rounds"
SERIES_PREFIX = f"{L.PREFIX}series "  # the round's block layers: arrows, rejected blocks
SERIES_ARROWS = f"{SERIES_PREFIX}block shifts"


class SeriesWidget(Container):
    """Register a series of rounds (a 4D layer, or several 3D layers) onto a reference layer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(scrollable=True)
        self.viewer = viewer
        self.result: SeriesResult | None = None
        self.worker = None
        self.last_error = ""
        preload_result_modules()  # numba set-up, pandas and matplotlib, while the user picks layers
        self._geom: L.Geometry | None = None
        self._shown = -1  # the round whose arrows and QC views are shown
        self._result_layer = None
        self.reference = ComboBox(label="reference round", choices=self._layers_3d, nullable=True)
        self.moving = Select(
            label="rounds", choices=self._round_layers,
            tooltip="one 4D (round, z, y, x) layer, or several 3D layers (Ctrl/Shift-click), in round order",
        )  # fmt: skip
        self.voxel_size = LineEdit(
            label="voxel size z,y,x (µm)", value="",
            tooltip="prefilled from the reference layer's scale; empty when unknown. A value typed here is "
            "applied to the reference and round layers and recorded in every round's result",
        )  # fmt: skip
        self.block_size = zero_or_at_least(
            SpinBox(label="block size (0: global only)", min=0, max=4096, step=32, value=0), MIN_BLOCK_YX
        )  # fmt: skip
        self.run_button = PushButton(text="Register series")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = Label(value="")
        self.summary = Label(value="")
        self.folder = FileEdit(label="save into", mode="d", value=Path.cwd())
        self.save_button = PushButton(text="Save every round + drift table", enabled=False)
        self.moving.native.setMaximumHeight(110)  # a list of layers, not half the window
        from qtpy.QtWidgets import QSizePolicy

        for label in (self.status, self.summary):
            label.native.setWordWrap(True)  # a long summary would widen the dock over the canvas
            # a wrapped label's own minimum follows its text: the summary of a round pushed the
            # dock's right column (the folder button, the combo's arrow) out of view
            label.native.setMinimumWidth(100)
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.extend([self.reference, self.moving, self.voxel_size, self.block_size, self.run_button, self.cancel_button,
                     self.progress, self.status, self.summary, self.folder, self.save_button])  # fmt: skip
        # the spare height of a tall dock under the last row: spread between the rows, it left
        # ~250 px gaps around the rounds list
        Container.native.fget(self).layout().addStretch(1)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.save_button.changed.connect(self.save)
        self.reference.changed.connect(self._reference_changed)
        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self.viewer.dims.events.current_step.connect(self._on_round_changed)

    @property
    def native(self):
        """The scroll area (as for the registration dock: napari docks ``.native``, and a
        scrollable container's ``.native`` is the inner widget, which then cannot scroll)."""
        return self.root_native_widget

    # -- layer choices ----------------------------------------------------------------
    def _layers_3d(self, _=None):
        return [layer for layer in self.viewer.layers if _is_image(layer) and layer.ndim == 3]

    def _round_layers(self, _=None):
        ref = self.reference.value if hasattr(self, "reference") else None
        return [layer for layer in self.viewer.layers if _is_image(layer) and layer.ndim in (3, 4)
                and layer is not ref and not layer.name.startswith(L.PREFIX)
                and layer.metadata.get("fidreg_role") != "registered"]  # fmt: skip

    def _refresh(self, _=None) -> None:
        self.reference.reset_choices()
        self.moving.reset_choices()
        if self._result_layer is not None and self._result_layer not in self.viewer.layers:
            self._forget_result()  # its arrows and QC views would describe a layer that is gone

    def _reference_changed(self, _=None) -> None:
        self.moving.reset_choices()  # the reference is never one of the rounds
        self.voxel_size.value = R.voxel_size_text(self.reference.value) if self.reference.value is not None else ""

    def _forget_result(self) -> None:
        self.result, self._result_layer, self._shown = None, None, -1
        self.summary.value = ""
        self.save_button.enabled = False
        for layer in [layer for layer in self.viewer.layers if layer.name.startswith(SERIES_PREFIX)]:
            self.viewer.layers.remove(layer)

    def rounds(self):
        """(sources, names, name of the series) of the chosen rounds; refuses a mix or nothing."""
        chosen = self._chosen_layers()
        if not chosen:
            raise FidregError("choose the rounds: one 4D layer or several 3D layers")
        four = [layer for layer in chosen if layer.ndim == 4]
        if four and len(chosen) > 1:
            raise FidregError("choose either one 4D layer of rounds or several 3D layers, not both")
        if four:
            layer = four[0]
            n = layer.data.shape[0]
            width = len(str(n - 1))
            return (
                [lambda i=i: layer.data[i] for i in range(n)],
                [f"{layer.name}_r{i:0{width}d}" for i in range(n)],
                layer.name,
            )
        order = {id(layer): i for i, layer in enumerate(self.viewer.layers)}
        chosen.sort(key=lambda layer: order[id(layer)])
        return [layer.data for layer in chosen], [layer.name for layer in chosen], "series"

    def _chosen_layers(self) -> list:
        return [layer for layer in (self.moving.value or []) if layer is not self.reference.value]

    def _check_fit(self, ref, params: Params) -> None:
        """Every check of a registration, on stand-ins of each round's shape (no data read)."""
        from ..core.register import iter_register

        shapes = {tuple(layer.data.shape[-3:]) for layer in self._chosen_layers()}
        stand_in = np.broadcast_to(np.zeros(1, dtype=ref.data.dtype), ref.data.shape)
        for shape in shapes:
            iter_register(stand_in, np.broadcast_to(np.zeros(1, dtype=ref.data.dtype), shape), params)

    # -- run / cancel --------------------------------------------------------------
    def run(self) -> None:
        if self.worker is not None:
            return
        try:
            ref = self.reference.value
            if ref is None:
                raise FidregError("choose the reference round (a 3D image layer)")
            sources, names, series_name = self.rounds()
            voxel = R.parse_voxel_size(self.voxel_size.value)
            if voxel is not None:  # the field places the layers in µm, as the registration dock does
                for layer in [ref, *self._chosen_layers()]:
                    layer.scale = (*tuple(layer.scale)[:-3], *voxel)
            params = Params(block_size=int(self.block_size.value) or None)
            self._check_fit(ref, params)  # a block larger than the stacks: refused now, not once per round
            job = series_job(ref.data, sources, names, params, voxel_size=voxel, reference_name=ref.name)
            from_4d = any(layer.ndim == 4 for layer in self._chosen_layers())
        except FidregError as exc:
            self._error(exc)
            return
        from napari.qt.threading import create_worker

        self._started = time.perf_counter()
        ticks = TickGate(self._on_progress)
        self.worker = create_worker(
            lambda: (yield from job), _start_thread=False,
            _connect={"yielded": ticks, "returned": lambda res: self._on_done(replace(res, from_4d=from_4d), ref, series_name),
                      "errored": self._failed, "aborted": lambda: setattr(self.status, "value", "cancelled: nothing was changed"),
                      "finished": self._finished},
        )  # fmt: skip
        ticks.follow(self.worker)
        self._set_running(True)
        self.status.value = f"registering {len(names)} rounds …"
        self.worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()  # at the next tick: one block, one plane, or one chunk read
            self.status.value = "cancelling …"

    def _on_progress(self, tick: Progress) -> None:
        self.progress.max = max(int(tick.total), 1)
        self.progress.value = int(tick.done)
        self.status.value = f"{tick.label}: {tick.done}/{tick.total}"

    def _on_done(self, res: SeriesResult, ref, series_name: str) -> None:
        self._geom = g = L.Geometry.of(ref)
        name = L.registered_name(series_name)
        meta = {"scale": (1.0, *g.scale), "translate": (0.0, *g.translate), "colormap": "magenta",
                "blending": "additive", "metadata": {"fidreg_role": "registered"}}  # fmt: skip
        old = self.viewer.layers[name] if name in self.viewer.layers else None
        if old is not None and old is self._result_layer and old.ndim == res.corrected.ndim:
            L.update_image(old, res.corrected, meta)  # the earlier run's layer takes the new rounds
        else:
            if old is not None:  # removed before the new result is kept: its removal forgets the result it showed
                self.viewer.layers.remove(old)
            self._result_layer = self.viewer.add_image(res.corrected, name=name, **meta)
        self.result = res
        ref.colormap, ref.blending = "green", "additive"
        for layer in self._chosen_layers():
            layer.visible = False  # the overlay is reference | registered rounds; tick a round to compare
        ok = sum(r is not None for r in res.registrations)
        self.summary.value = f"{ok} of {len(res.names)} rounds registered onto {res.reference_name}" + "".join(
            f"\n  {n}: failed: {e}" for n, e in zip(res.names, res.errors) if e
        )
        self.save_button.enabled = True
        self._shown = -1
        self._show_round(self.current_round())
        failed = [n for n, e in zip(res.names, res.errors) if e]
        if failed:
            from napari.utils.notifications import show_warning

            show_warning(f"fidreg: {len(failed)} of {len(res.names)} rounds failed ({', '.join(failed[:3])}"
                         f"{' ...' if len(failed) > 3 else ''}): see the series dock")  # fmt: skip
        self.status.value = f"done in {time.perf_counter() - self._started:.1f} s"

    def _finished(self) -> None:
        self.worker = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running

    # -- the round under the slider -----------------------------------------------------
    def current_round(self) -> int:
        """The round the first slider shows (the rounds axis of a 4D scene)."""
        if self.result is None or self.viewer.dims.ndim < 4:
            return 0
        return int(np.clip(self.viewer.dims.current_step[0], 0, len(self.result.names) - 1))

    def _on_round_changed(self, _=None) -> None:
        # only a move of the rounds slider, and only while the result layer is in the scene
        # (layers removed or the viewer closing change the dims too)
        if self.result is None or self._result_layer not in self.viewer.layers:
            return
        i = self.current_round()
        if i != self._shown:
            self._show_round(i)

    def _show_round(self, i: int) -> None:
        """Arrows, summary and QC views of round ``i``; the drift plot marks it."""
        from ..drift_plot import drift_data, drift_figure

        res = self.result
        self._shown = i
        reg = res.registrations[i]
        for layer in [layer for layer in self.viewer.layers if layer.name.startswith(SERIES_PREFIX)]:
            self.viewer.layers.remove(layer)
        dock = self.qc_dock()
        if reg is None:
            dock.clear(f"round {res.names[i]} failed: {res.errors[i]}")
        else:
            active = self.viewer.layers.selection.active  # an added layer would become the active one
            for array, meta, kind in L.block_layers(reg, self._geom):
                meta = {**meta, "name": SERIES_PREFIX + meta["name"][len(L.PREFIX) :]}
                getattr(self.viewer, f"add_{kind}")(array, **meta)
            if active is not None and active in self.viewer.layers:
                self.viewer.layers.selection.active = active
            p = res.projections
            dock.show_result({"reference": p["reference"], "before": p["before"][i], "after": p["after"][i]}, reg,
                             title=f"round {i}: {res.names[i]} onto {res.reference_name}", arrow_gain=L.VECTOR_GAIN,
                             panels=res.panels[i] if res.panels else None, keep_tabs=True)  # fmt: skip
            self.summary.value = reg.summary()
        tab = self._drift_tab(dock)
        rows, ref_name = res.rows(), res.reference_name

        place = not res.from_4d
        # the round's place on the plot's axis: the reference, placed among 3D layers' rounds by
        # name, moves those after it one on (the line marked the round before the one shown)
        at = drift_data(rows, reference=ref_name, place_reference=place).names.index(rows[i].moving)

        def draw(fig, at=at):
            drift_figure(rows, reference=ref_name, figure=fig, place_reference=place)
            for ax in fig.axes[:3]:
                ax.axvline(at, color="orange", lw=1.5, alpha=0.8, zorder=0)  # the round under the slider

        tab.show_figure(draw)

    def qc_dock(self):
        """The viewer's QC dock, shared with the registration dock."""
        from .qc_dock import qc_dock_of

        return qc_dock_of(self.viewer)

    def _drift_tab(self, dock):
        tabs = dock.tabs
        for k in range(tabs.count()):
            if tabs.tabText(k) == DRIFT_TAB:
                return tabs.widget(k)
        return dock.add_tab(DRIFT_TAB)

    # -- save -------------------------------------------------------------------------------
    def save(self) -> None:
        """Every round's result set (JSON, blocks CSV, corrected stack, QC image) and the drift
        table and plot, into the chosen folder, named as the CLI names them; on a worker (tens
        of corrected stacks take a while to write), a progress tick per round."""
        if self.result is None or self.worker is not None:
            return
        from napari.qt.threading import create_worker

        folder = Path(self.folder.value)
        job = _save_series(self.result, folder)
        ticks = TickGate(self._on_progress)
        self.worker = create_worker(
            lambda: (yield from job), _start_thread=False,
            _connect={"yielded": ticks, "errored": self._error, "finished": self._finished,
                      "returned": lambda n: setattr(self.status, "value", f"saved {n} rounds and drift.csv into {folder}")},
        )  # fmt: skip
        ticks.follow(self.worker)
        self._set_running(True)
        self.worker.start()

    def _failed(self, exc: BaseException) -> None:
        """A run that failed leaves nothing of an earlier result behind (it would read as this run's)."""
        self.result = None
        self.summary.value = ""
        self.save_button.enabled = False
        for layer in [layer for layer in self.viewer.layers if layer.name.startswith(SERIES_PREFIX)]:
            self.viewer.layers.remove(layer)
        self.qc_dock().clear(f"the last run failed: {exc}")
        self._error(exc)

    def _error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        msg = str(exc) if isinstance(exc, FidregError) else f"{type(exc).__name__}: {exc}"
        self.last_error = msg
        self.status.value = f"error: {msg}"
        show_error(f"fidreg: {msg}")


def _save_series(res: SeriesResult, folder: Path):
    """Write every round's result set and the drift table; yields a tick per round, returns the count."""
    from ..drift_plot import drift_png
    from ..figures import qc_png
    from ..outputs import result_name, result_paths, save_result_set, write_drift

    rows, p = [], res.projections
    try:
        for i, (name, reg) in enumerate(zip(res.names, res.registrations)):
            rows.append(DriftRow(result_name(name), reg, res.errors[i]))
            if reg is not None:

                def qc(_stack, i=i, reg=reg):
                    return qc_png(p["reference"], p["before"][i], p["after"][i], title=f"{reg.moving} onto {reg.reference}",
                                  voxel_size=reg.voxel_size, registration=reg)  # fmt: skip

                save_result_set(result_paths(folder, result_name(name)), reg, corrected=res.corrected[i], qc=qc)
            yield Progress("saving", i + 1, len(res.names))
        # rounds of one 4D layer are named after it: their order says nothing of the reference's place
        by_name = not res.from_4d
        write_drift(folder, rows, plot=lambda: drift_png(rows, reference=res.reference_name, place_reference=by_name))
    except OSError as exc:  # an unwritable or full folder: one notification
        raise FidregError(f"cannot save into {folder}: {exc}") from None
    return len(rows)


def _is_image(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and not getattr(layer, "rgb", False)


__all__ = ["SeriesResult", "SeriesWidget", "series_job"]
