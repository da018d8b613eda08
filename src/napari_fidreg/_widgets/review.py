"""Rejecting and restoring blocks by hand in the registration dock, with Undo.

The user selects rows of the block table (one row per block, in the registration's
order), or clicks blocks in the viewer with the block-arrows layer active, and clicks
Reject or Restore; :func:`~napari_fidreg.core.block_grid.reject_blocks`
refills the field from the remaining inliers without measuring again, and the dock
corrects the moving stack again in a worker. Each change keeps the registration it
replaced on a stack, so Undo (or Ctrl+Z in the dock) goes back one step.
"""

from __future__ import annotations

import time

import numpy as np
from magicgui.widgets import Container, PushButton

from ..core.block_grid import BY_HAND, reject_blocks, restore_blocks
from ..core.errors import FidregError
from ..core.result import Registration
from . import layers as L
from .jobs import correction_job

HELP = (
    "select blocks (rows of the table, or click a block in the viewer with the block arrows layer active; "
    "Ctrl/Shift for several), then Reject: they are filled from their "
    "neighbours like the blocks the engine rejected, and the stack is corrected again (nothing is measured "
    "again). Restore gives a block back its measured shift and the engine's verdict. Undo: Ctrl+Z"
)


class BlockReview:
    """Reject / Restore / Undo buttons over the dock's block table.

    ``owner`` is the :class:`.registration.RegistrationWidget`, whose table, result,
    worker and layers this drives.
    """

    def __init__(self, owner):
        from qtpy.QtCore import Qt
        from qtpy.QtGui import QKeySequence, QShortcut
        from qtpy.QtWidgets import QAbstractItemView

        self.owner = owner
        self.history: list[Registration] = []  # the registrations that Undo goes back to, last on top
        self.reject_button = PushButton(text="Reject selected blocks", enabled=False, tooltip=HELP)
        self.restore_button = PushButton(text="Restore", enabled=False, tooltip=HELP)
        self.undo_button = PushButton(text="Undo", enabled=False, tooltip="undo the last Reject or Restore (Ctrl+Z)")
        self.buttons = Container(
            layout="horizontal", labels=False, widgets=[self.reject_button, self.restore_button, self.undo_button]
        )
        self.reject_button.changed.connect(lambda: self.change(reject_blocks))
        self.restore_button.changed.connect(lambda: self.change(restore_blocks))
        self.undo_button.changed.connect(self.undo)
        table = owner.table.native
        table.setToolTip("one row per block; select rows (Ctrl/Shift for several) to Reject or Restore them")
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # Ctrl+Z while the dock has focus; napari's own Ctrl+Z (layer undo) keeps the canvas
        self._shortcut = QShortcut(QKeySequence.StandardKey.Undo, owner.native)
        self._shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._shortcut.activated.connect(self.undo)
        owner.viewer.layers.events.inserted.connect(self._on_layer_inserted)

    # -- picking blocks in the viewer --------------------------------------------------------
    def _on_layer_inserted(self, event) -> None:
        """A click on the canvas while the block arrows are the active layer picks a block."""
        layer = event.value
        if layer.name.startswith(L.ARROWS) and self._pick not in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.append(self._pick)

    def _pick(self, layer, event):
        """Select the table row of the block nearest to a click (Ctrl/Shift: add to the selection).

        A generator (napari's drag callbacks): a press that moves before its release is a
        pan of the view, not a pick.
        """
        position, add = event.position, any(k in ("Control", "Shift") for k in event.modifiers)  # vispy keys
        yield
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        res = self.owner.result
        if dragged or res is None or not res.registration.has_blocks or len(layer.data) != len(res.registration.blocks):
            return
        here = np.asarray(layer.world_to_data(position))[-2:]
        centres = np.asarray(layer.data)[:, 0, -2:]  # the arrows' tails: the block centres (y, x)
        row = int(np.argmin(((centres - here) ** 2).sum(axis=1)))
        self.select([row], add=add)

    def select(self, rows, *, add: bool = False) -> None:
        """Select these rows of the block table (as Ctrl+click does when ``add``)."""
        from qtpy.QtCore import QItemSelectionModel

        table = self.owner.table.native
        if not add:
            table.clearSelection()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for r in rows:
            table.selectionModel().select(table.model().index(int(r), 0), flags)
        if rows:
            table.scrollTo(table.model().index(int(rows[-1]), 0))

    def selected(self) -> list[int]:
        """Positions (in the registration's blocks) of the selected table rows."""
        model = self.owner.table.native.selectionModel()
        return sorted({index.row() for index in model.selectedRows()})

    def change(self, how) -> None:
        """Apply ``how`` (reject_blocks or restore_blocks) to the selected blocks."""
        res = self.owner.result
        try:
            if res is None or not res.registration.has_blocks:
                raise FidregError("run a registration with block shifts first")
            rows = self.selected()
            if not rows:
                raise FidregError("select blocks first: rows of the block table")
            new = how(res.registration, rows)
        except FidregError as exc:
            self.owner._error(exc)
            return
        if [(b.inlier, b.reason) for b in new.blocks] == [(b.inlier, b.reason) for b in res.registration.blocks]:
            self.owner._set_status("nothing to change: " + ("those blocks are rejected already"
                                   if how is reject_blocks else "no block rejected by hand is selected"))  # fmt: skip
            return
        old = res.registration
        self.recorrect(new, then=lambda: self._pushed(old, rows))

    def undo(self) -> None:
        """Go back to the registration before the last Reject or Restore."""
        if not self.history or self.owner.worker is not None:
            return
        self.recorrect(self.history[-1], then=self._popped)

    def _pushed(self, old: Registration, rows) -> None:
        self.history.append(old)
        self.update()
        # the rows just changed stay selected (and in view), their reasons under the table
        self.select(rows)

    def _popped(self) -> None:
        self.history.pop()
        self.update()

    def reset(self) -> None:
        """A new registration: nothing to undo."""
        self.history.clear()
        self.update()

    def update(self, running: bool = False) -> None:
        res = self.owner.result
        ok = not running and res is not None and res.registration.has_blocks
        self.reject_button.enabled = self.restore_button.enabled = ok
        self.undo_button.enabled = ok and bool(self.history)

    # -- correcting again ---------------------------------------------------------------
    def recorrect(self, reg: Registration, then=None) -> None:
        """Correct the moving stack again with ``reg`` (blocks rejected or restored by hand: nothing
        is measured), then update the registered layer, the arrows, the table and the QC views."""
        w = self.owner
        ref, mov = w._run_layers or (None, None)
        if w.worker is not None or w.result is None:
            return
        if mov is None or mov not in w.viewer.layers:
            w._error(FidregError("the moving layer of this result is no longer in the viewer: register again"))
            return
        job = correction_job(np.asarray(mov.data), reg, w.result)
        w.worker = w._worker(job, lambda out: self._on_recorrected(out, reg, ref, mov, then))
        w._worker_done = False
        w._started = time.perf_counter()
        w._set_running(True)
        w._set_status("correcting again with the blocks kept (nothing is measured again) …")
        w.worker.start()

    def _on_recorrected(self, res, reg: Registration, ref, mov, then) -> None:
        w = self.owner
        w.result = res
        corrected = res.corrected
        name = L.registered_name(mov.name)
        if name in w.viewer.layers:
            w.viewer.layers[name].data = corrected
        w._show_text()
        n_hand = sum(b.reason == BY_HAND for b in reg.blocks)

        def done():
            w._show_qc()  # as after a run: in a turn of its own, once the layers have theirs
            if then is not None:
                then()
            w._set_status(f"corrected again in {time.perf_counter() - w._started:.1f} s "
                             f"({n_hand} block(s) rejected by hand)")  # fmt: skip
            w._bring_results_into_view()

        if L.update_block_layers(w.viewer, reg, L.Geometry.of(ref)):
            w._after_a_turn(done)  # the run ends after it
        else:  # the user removed the arrows or the crosses: add them again
            w._replace_layers(L.block_layers(reg, L.Geometry.of(ref)), then=done)
