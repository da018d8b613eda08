"""What the user looks at and touches after a run, in a real napari viewer (pytest-qt, Xvfb):
the QC dock beside the scene, fit to view, the sub-volume box, block arrows, blocks rejected
by hand with Undo, and shifts applied to a labels layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import open_sample, run_dock
from napari_fidreg._sample_data import MOVING_NAME, REFERENCE_NAME
from napari_fidreg._widgets import RegistrationWidget
from napari_fidreg._widgets import layers as L
from napari_fidreg._widgets.qc_dock import DOCK_NAME, QCDock
from napari_fidreg._widgets.registration import SUBVOLUME_LAYER
from napari_fidreg.core import Registration, warp
from napari_fidreg.core.block_grid import BY_HAND

pytestmark = pytest.mark.gui
REGISTERED = f"{MOVING_NAME} registered"
ARROWS, CROSSES = "fidreg: block shifts (x10)", "fidreg: rejected blocks"


def _register(qtbot, widget, timeout=60_000):
    run_dock(qtbot, widget, timeout)
    assert widget.result is not None, widget.last_error


def test_the_stack_is_framed_again_once_the_new_qc_dock_has_taken_its_room(make_napari_viewer, qtbot):
    """napari keeps its zoom when the canvas shrinks: under the QC dock added by the first
    result, about a quarter of the stack was in view (a new user's report)."""
    from napari_fidreg._widgets.qc_dock import REFRAME_MS

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 1100)
    ref, _ = open_sample(viewer)
    viewer.reset_view()  # framed in the window before the dock, as a user sees it
    widget = RegistrationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="fidreg")
    widget.block_size.value = 64  # 16 blocks, one of them rejected
    _register(qtbot, widget)
    qtbot.wait(REFRAME_MS + 300)
    ref.contrast_limits = (float(ref.data.min()), float(ref.data.min()) + 1)  # a solid green rectangle
    for layer in viewer.layers:
        layer.visible = layer is ref
    green = _shot(viewer)[..., 1] > 100
    h, w = green.shape
    rows, cols = np.nonzero(green.any(axis=1))[0], np.nonzero(green.any(axis=0))[0]
    inside = rows[0] > 0 or rows[-1] < h - 1  # a whole side of the stack in view, with room beyond
    span = max((rows[-1] - rows[0] + 1) / h, (cols[-1] - cols[0] + 1) / w)
    assert inside and span > 0.85, f"rows {rows[0]}-{rows[-1]} of {h}, cols {cols[0]}-{cols[-1]} of {w}"
    # the block table takes the dock's width (beside an empty label column it showed 2.5 of 7
    # columns), sized to its contents, without row numbers (the 'block' column says which)
    table = widget.table.native
    assert table.width() > 0.8 * widget.native.width(), (table.width(), widget.native.width())
    assert not table.verticalHeader().isVisible()
    # every column in view, the reasons under the table (a new user scrolled sideways to read them)
    assert table.columnCount() == 7
    assert sum(table.columnWidth(c) for c in range(7)) <= table.viewport().width()
    rejected = [b for b in widget.result.registration.blocks if not b.inlier]
    assert rejected and widget.reasons.visible
    assert widget.reasons.value.splitlines()[0] == f"block {L.block_name(rejected[0])}: {rejected[0].reason}"
    # and Save / re-apply in view below them, the dock scrolled to the result
    area = widget.native
    for w in (widget.status, widget.save_button, widget.apply_button):
        top = w.native.mapTo(area.widget(), w.native.rect().topLeft()).y() - area.verticalScrollBar().value()
        assert 0 <= top and top + w.native.height() <= area.viewport().height(), (w, top)


def _global_only_run(make_napari_viewer, qtbot):
    """The sample in a new viewer, registered from the dock with the global shift only."""
    viewer = make_napari_viewer()
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    widget.with_blocks.value = False
    _register(qtbot, widget)
    return viewer, widget


def _shot(viewer) -> np.ndarray:
    return viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)


# -- QC views in their own dock ------------------------------------------------------------


def test_fit_to_view_frames_the_reference_and_the_qc_views_are_in_their_own_dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    ref, _ = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    names = [layer.name for layer in viewer.layers]
    assert set(names) == {REFERENCE_NAME, MOVING_NAME, REGISTERED, ARROWS, CROSSES}, names
    # the reference as a solid green rectangle: every voxel above its minimum is saturated
    ref.contrast_limits = (float(ref.data.min()), float(ref.data.min()) + 1)
    for layer in viewer.layers:
        layer.visible = layer is ref
    viewer.reset_view()  # frames every layer, hidden ones included
    green = _shot(viewer)[..., 1] > 100
    h, w = green.shape
    rows, cols = np.nonzero(green.any(axis=1))[0], np.nonzero(green.any(axis=0))[0]
    span = max((rows[-1] - rows[0] + 1) / h, (cols[-1] - cols[0] + 1) / w)
    assert span > 0.85, f"the reference spans {span:.0%} of the canvas"  # QC layers beside it made it ~25 %
    # the QC figures are in a dock of their own: projections reference | before | after, and the block map
    dock = viewer.window.dock_widgets[DOCK_NAME]
    assert isinstance(dock, QCDock) and dock is widget.qc_dock() and dock.has_figure()
    qtbot.waitUntil(dock.isVisible)  # added with the run's last turn, after its layers
    qc = dock.qc.drawn_figure()
    texts = [t.get_text() for t in qc.texts] + [t.get_text() for t in qc.axes[0].texts]
    for expected in (
        "reference",
        "moving (before)",
        "moving (after)",
        "overlay after",
        "XZ",
        "YZ",
        "YZ over x",
        "after 0.9",
    ):
        assert any(expected in t for t in texts), (expected, texts)
    assert not dock.block_map.figure.axes  # a tab not in view is built when shown, not before
    dock.tabs.setCurrentWidget(dock.block_map)
    qtbot.waitUntil(lambda: bool(dock.block_map.figure.axes))  # in a turn of its own, just after
    titles = [ax.get_title() for ax in dock.block_map.figure.axes]
    assert {"dz (px)", "dy (px)", "dx (px)"} <= set(titles), titles
    legend = dock.block_map.figure.axes[-1].get_xlabel()
    assert "colour = block score" in legend and "rejected by hand" in legend
    # a failed run leaves no figure of the earlier one
    flat = viewer.add_image(np.full(ref.data.shape, 7, np.uint16), name="flat", scale=ref.scale)
    widget.moving.value = flat
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    assert not dock.has_figure() and not dock.qc.drawn_figure().axes and "failed" in dock.message.text()


def test_the_qc_dock_draws_into_the_canvas(make_napari_viewer, qtbot):
    """What the dock shows is drawn: bright beads and green/magenta overlay pixels on its canvas."""
    viewer = make_napari_viewer(show=True)
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    tab = widget.qc_dock().qc
    canvas = tab.canvas

    def overlay_drawn() -> bool:  # the 'overlay before' panel's pixels on what the canvas shows
        if not hasattr(canvas, "renderer"):
            return False
        rgb = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
        magenta = (rgb[..., 0] > 150) & (rgb[..., 2] > 150) & (rgb[..., 1] < 80)
        green = (rgb[..., 1] > 150) & (rgb[..., 0] < 80)
        return magenta.sum() > 20 and green.sum() > 20

    # in view (the dock under the canvas): built and rendered once shown, in the turns after the
    # result's layers, by the dock itself (the render is its own turn, never a paint's)
    qtbot.waitUntil(overlay_drawn)
    assert tab.figure.axes


def test_a_qc_figure_is_rendered_in_a_turn_of_its_own_never_in_a_paint(qtbot):
    """The render (Agg, 60-140 ms at 1024^2) runs after the paints that a new figure or a resize
    asks for: in the paint, it made the window's relayout after a run one 0.3-0.4 s stall. Until
    then the canvas shows its last render, stretched, not a blank; a tab shown again as it was
    is not rendered again."""
    from qtpy.QtWidgets import QTabWidget

    from napari_fidreg._widgets.qc_dock import FigureTab

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    tab, other = FigureTab(), FigureTab()
    tabs.addTab(tab, "one")
    tabs.addTab(other, "two")
    tabs.resize(800, 400)
    tabs.show()
    qtbot.waitExposed(tabs)
    renders, built = [], []
    tab.canvas.mpl_connect("draw_event", lambda event: renders.append(tab.canvas.get_width_height()))

    def draw(fig):
        built.append(tuple(fig.get_size_inches()))
        fig.clear()
        fig.add_axes((0, 0, 1, 1)).plot([0, 1], [1, 0], color="black", linewidth=12)

    def shown() -> np.ndarray:  # what the canvas paints now, as grey levels
        image = tab.canvas.grab().toImage()
        return np.array([[image.pixelColor(x, y).value() for x in range(0, image.width(), 4)]
                         for y in range(0, image.height(), 4)])  # fmt: skip

    tab.show_figure(draw)
    assert not built  # not in the caller's turn
    tab.canvas.repaint()  # a paint now: it copies what there is, it does not build or render
    assert not built and not renders
    qtbot.waitUntil(lambda: bool(renders))
    assert len(built) == 1 and len(renders) == 1
    tabs.resize(600, 300)  # a smaller dock: the figure is laid out again for it and rendered once
    tab.canvas.repaint()
    assert len(renders) == 1
    grey = shown()  # meanwhile the last render, stretched: the line on white, not an empty canvas
    assert (grey > 240).mean() > 0.5 and (grey < 40).mean() > 0.02
    qtbot.waitUntil(lambda: len(renders) == 2)
    qtbot.wait(100)  # nothing more comes of that resize
    assert len(built) == 2 and len(renders) == 2 and built[1] != built[0]
    assert renders[1] == tab.canvas.get_width_height()
    tabs.setCurrentWidget(other)
    tabs.setCurrentWidget(tab)  # back to the tab as it was: its render is shown again, not remade
    qtbot.wait(100)
    assert len(renders) == 2
    grey = shown()
    assert (grey > 240).mean() > 0.5 and (grey < 40).mean() > 0.02


def test_a_closed_qc_dock_comes_back_at_the_next_run(make_napari_viewer, qtbot):
    viewer, widget = _global_only_run(make_napari_viewer, qtbot)
    first = viewer.window.dock_widgets[DOCK_NAME]
    assert first.block_map.drawn_figure().texts[0].get_text() == "global shift only: no blocks"
    viewer.window.remove_dock_widget(first)  # what the dock's close button does
    assert DOCK_NAME not in viewer.window.dock_widgets
    _register(qtbot, widget)
    again = viewer.window.dock_widgets[DOCK_NAME]
    assert again is not first and again.has_figure()


# -- sub-volume box ----------------------------------------------------------------------------


def test_the_box_tool_opens_ready_to_draw_and_the_box_shows_on_every_plane(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)
    ref, _ = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    widget.add_subvolume_layer()
    shapes = viewer.layers[SUBVOLUME_LAYER]
    assert shapes.mode == "add_rectangle"  # the first click draws (showing the layer reset it to pan/zoom)
    assert viewer.layers.selection.active is shapes
    np.testing.assert_allclose(shapes.scale, ref.scale[1:])
    corners_um = np.array([[6.0, 3.0], [6.0, 33.0], [30.0, 33.0], [30.0, 3.0]])  # y, x
    shapes.add_rectangles(corners_um / shapes.scale)
    for layer in viewer.layers:
        layer.visible = layer is shapes
    shapes.mode = "add_rectangle"  # hiding the other layers does not touch it, but be explicit
    for plane in (0, ref.data.shape[0] // 2, ref.data.shape[0] - 1):
        viewer.dims.set_current_step(0, plane)
        rgb = _shot(viewer)
        yellow = (rgb[..., 0] > 150) & (rgb[..., 1] > 150) & (rgb[..., 2] < 80)
        assert yellow.sum() > 100, f"no box on plane {plane}"
    widget.z_start.value, widget.z_stop.value = 5, 35
    assert widget.subvolume() == ((5, 35), (40, 200), (20, 220))
    widget.block_size.value = 80
    _register(qtbot, widget)
    reg = widget.result.registration
    assert reg.subvolume == ((5, 35), (40, 200), (20, 220))
    assert "region: sub-volume z 5-35, y 40-200, x 20-220" in widget.shift_label.value
    assert all(40 <= b.origin[1] and b.origin[1] + b.size[1] <= 200 for b in reg.blocks)
    saved = json.loads(next(p for p in widget.save(tmp_path) if p.suffix == ".json").read_text())
    assert saved["subvolume"] == [[5, 35], [40, 200], [20, 220]]
    assert shapes.visible  # the region stays in view after the run


def test_the_result_text_says_when_the_whole_stack_was_used(make_napari_viewer, qtbot):
    _, widget = _global_only_run(make_napari_viewer, qtbot)
    assert "region: the whole stack" in widget.shift_label.value


# -- block arrows, rejected by hand ----------------------------------------------------------


def test_block_arrows_are_lit_on_the_default_plane_in_2d(make_napari_viewer, qtbot):
    """Full-depth block centres sit at half-integer z, where 3D vectors fade to nothing on
    every plane: the arrows are 2D (y, x) layers, drawn on whatever plane is shown."""
    import warnings

    viewer = make_napari_viewer(show=True)
    ref, _ = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated napari API (out_of_slice_display)
        _register(qtbot, widget)
    arrows = viewer.layers["fidreg: block shifts (x10)"]
    assert arrows.ndim == 2 and viewer.layers["fidreg: rejected blocks"].ndim == 2
    np.testing.assert_allclose(arrows.scale, ref.scale[1:])
    for layer in viewer.layers:
        layer.visible = layer is arrows
    viewer.dims.ndisplay = 2
    for plane in (viewer.dims.current_step[0], 0, ref.data.shape[0] - 1):  # default, first, last
        viewer.dims.set_current_step(0, plane)
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9: scene
        camera.center = (0, *[(n - 1) * s / 2 for n, s in zip(ref.data.shape[1:], ref.scale[1:])])
        camera.zoom = 2.0
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        assert (shot.sum(axis=-1) > 150).sum() > 30, f"no arrow pixels on plane {plane}"


def _select_rows(widget, rows) -> None:
    """Select block-table rows as a user does with Ctrl+click."""
    widget.review.select(rows)


def _click(qtbot, widget, button) -> None:
    button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)


def test_reject_restore_and_undo_blocks_by_hand(make_napari_viewer, qtbot, tmp_path):
    from napari.layers import Vectors

    viewer = make_napari_viewer(show=True)
    ref, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="fidreg")  # docked: Ctrl+Z reaches it
    widget.block_size.value = 64  # 4 x 4 blocks
    _register(qtbot, widget)
    measured = widget.result.registration
    assert [i for i, b in enumerate(measured.blocks) if not b.inlier] == [5]  # a block of the sample's, weak
    assert not widget.review.undo_button.enabled
    before_after = widget.result.projections["after"]["xy"].copy()
    _select_rows(widget, [0, 5, 6])
    _click(qtbot, widget, widget.review.reject_button)
    reg = widget.result.registration
    assert [i for i, b in enumerate(reg.blocks) if not b.inlier] == [0, 5, 6]
    assert reg.blocks[6].reason == BY_HAND and reg.blocks[6].measured_shift == measured.blocks[6].measured_shift
    assert reg.blocks[5].reason == measured.blocks[5].reason  # rejected by the engine already: its own reason
    assert reg.global_shift == measured.global_shift  # nothing measured again
    # the corrected layer, the crosses, the table and the QC views follow
    np.testing.assert_array_equal(viewer.layers[REGISTERED].data, warp(mov.data, reg, output_shape=ref.data.shape))
    crosses = viewer.layers[CROSSES]  # a vectors layer: two strokes a block, in block order
    assert isinstance(crosses, Vectors) and len(crosses.data) == 6
    centres = [b.centre[1:] for b in reg.blocks if not b.inlier]
    np.testing.assert_allclose(crosses.data[:3, 0] + crosses.data[:3, 1] / 2, centres)  # the first strokes
    arrows = viewer.layers[ARROWS]  # updated in place: block 6 now points along its filled shift
    np.testing.assert_allclose(arrows.data[6, 1], np.multiply(reg.blocks[6].shift[1:], 10.0))
    assert list(arrows.features["inlier"]) == [b.inlier for b in reg.blocks]
    orange, red = [1.0, 0.55, 0.0], [1.0, 0.0, 0.0]
    np.testing.assert_allclose(crosses.edge_color[:, :3], [orange, red, orange] * 2)
    table = widget.table.native
    kept = next(c for c in range(table.columnCount()) if table.horizontalHeaderItem(c).text() == "kept")
    assert [table.item(r, kept).text() for r in (0, 1, 5, 6)] == ["no (hand)", "yes", "no", "no (hand)"]
    # each rejected row's tooltip: why, and what it measured (the row shows the filled-in shift)
    tip6, tip5 = table.item(6, 0).toolTip().splitlines(), table.item(5, 2).toolTip().splitlines()
    assert tip6[0] == BY_HAND and tip5[0] == measured.blocks[5].reason
    dz = measured.blocks[6].measured_shift[0]
    assert tip6[1].startswith(f"measured (dz, dy, dx) = ({dz:+.3f}, ") and "the shift used instead" in tip6[1]
    assert table.item(6, 0).text() == "0,1,2" and table.item(6, 1).text() == f"{reg.blocks[6].shift[0]:+.3f}"
    # the rows just rejected stay selected: their reasons under the table
    assert widget.review.selected() == [0, 5, 6]
    assert table.item(6, 0).foreground().color().getRgbF()[:3] == pytest.approx(orange, abs=0.01)
    assert table.item(5, 0).foreground().color().getRgbF()[:3] == pytest.approx(red, abs=0.01)
    # rejected blocks' arrows are grey: what they show is filled in, not measured
    colours = np.asarray(arrows.edge_color)[:, :3]
    np.testing.assert_allclose(colours[[0, 5, 6]], [L.FILLED_GREY[:3]] * 3)
    assert not np.allclose(colours[1], L.FILLED_GREY[:3])
    # the reasons under the table: of the selected rows when one of them is rejected
    assert widget.reasons.value.splitlines() == [
        f"block 0,0,0: {BY_HAND}",
        f"block 0,1,1: {measured.blocks[5].reason}",
        f"block 0,1,2: {BY_HAND}",
    ]
    _select_rows(widget, [6])
    assert widget.reasons.value == f"block 0,1,2: {BY_HAND}"
    assert not np.array_equal(widget.result.projections["after"]["xy"], before_after)
    assert "3 of 16 blocks rejected and filled from neighbours (2 by hand)" in widget.shift_label.value
    # the saved result records why
    written = {p.suffix: p for p in widget.save(tmp_path)}
    saved = Registration.load(written[".json"])
    assert [b.reason for b in saved.blocks][:7] == [BY_HAND, "", "", "", "", measured.blocks[5].reason, BY_HAND]
    assert written[".csv"].read_text().splitlines()[1].endswith(f",0,{BY_HAND}")
    # restore one, then undo twice: back to what was measured
    _select_rows(widget, [6])
    _click(qtbot, widget, widget.review.restore_button)
    assert widget.result.registration.blocks[6].inlier and not widget.result.registration.blocks[0].inlier
    assert widget.review.undo_button.enabled
    _click(qtbot, widget, widget.review.undo_button)
    assert not widget.result.registration.blocks[6].inlier
    viewer.window._qt_window.activateWindow()
    widget.table.native.setFocus()
    qtbot.waitUntil(lambda: widget.table.native.hasFocus(), timeout=5_000)
    qtbot.keyClick(widget.table.native, "z", modifier=_ctrl())  # Ctrl+Z in the dock
    qtbot.waitUntil(lambda: widget.worker is None and widget.result.registration.blocks[0].inlier, timeout=60_000)
    back = widget.result.registration
    assert [(b.shift, b.inlier, b.reason) for b in back.blocks] == [
        (b.shift, b.inlier, b.reason) for b in measured.blocks
    ]
    assert not widget.review.undo_button.enabled and len(viewer.layers[CROSSES].data) == 2


def _ctrl():
    from qtpy.QtCore import Qt

    return Qt.KeyboardModifier.ControlModifier


def test_reject_needs_a_selection_and_a_new_run_forgets_the_undo_stack(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    widget.block_size.value = 128
    _register(qtbot, widget)
    widget.table.native.clearSelection()
    widget.review.reject_button.native.click()
    assert widget.worker is None and "select blocks first" in widget.last_error
    _select_rows(widget, [1])
    _click(qtbot, widget, widget.review.reject_button)
    assert widget.review.history and widget.review.undo_button.enabled
    _register(qtbot, widget)
    assert not widget.review.history and not widget.review.undo_button.enabled
    assert all(b.inlier for b in widget.result.registration.blocks)


def test_a_click_on_a_block_in_the_viewer_selects_its_row(make_napari_viewer, qtbot):
    """With the block arrows the active layer, a click on the canvas picks the nearest block:
    a real mouse press on napari's canvas, at the screen position of a block centre."""
    from qtpy.QtCore import QPoint, Qt

    viewer = make_napari_viewer(show=True)
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    widget.block_size.value = 64
    _register(qtbot, widget)
    arrows = viewer.layers[ARROWS]
    viewer.layers.selection.active = arrows
    viewer.reset_view()
    canvas = viewer.window._qt_viewer.canvas.native  # napari's vispy canvas widget (no public handle)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera

    def click(block: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        world = arrows.data_to_world(arrows.data[block, 0])  # the arrow's tail: the block centre (y, x)
        x = (world[-1] - camera.center[-1]) * camera.zoom + canvas.width() / 2
        y = (world[-2] - camera.center[-2]) * camera.zoom + canvas.height() / 2
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, modifier, QPoint(int(round(x)), int(round(y))))

    click(6)
    assert widget.review.selected() == [6]
    click(9, Qt.KeyboardModifier.ControlModifier)
    assert widget.review.selected() == [6, 9]
    # a press that moves before its release pans the view: it picks nothing
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(40, 40))
    for step in range(1, 6):
        qtbot.mouseMove(canvas, QPoint(40 + 15 * step, 40 + 10 * step))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(115, 90))
    assert widget.review.selected() == [6, 9]
    _click(qtbot, widget, widget.review.reject_button)
    assert [i for i, b in enumerate(widget.result.registration.blocks) if b.reason == BY_HAND] == [6, 9]


def test_rejecting_after_the_moving_layer_was_removed_is_one_notification(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    widget.block_size.value = 128
    _register(qtbot, widget)
    viewer.layers.remove(mov)
    _select_rows(widget, [0])
    widget.review.reject_button.native.click()
    assert widget.worker is None and "no longer in the viewer" in widget.last_error
    assert all(b.inlier for b in widget.result.registration.blocks)  # nothing changed


# -- apply to labels -----------------------------------------------------------------------


def test_apply_to_a_labels_layer_keeps_the_labels_and_moves_them(make_napari_viewer, qtbot):
    from scipy import ndimage

    viewer = make_napari_viewer()
    ref, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    beads, n = ndimage.label(mov.data > np.percentile(mov.data, 99.5))
    beads = (beads * 7).astype(np.int32)  # values that no interpolation between two labels gives back
    labels = viewer.add_labels(beads, name="beads", scale=mov.scale)
    widget.apply_target.value = labels
    widget.apply_saved()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    from napari.layers import Labels

    out = viewer.layers["beads registered"]
    assert isinstance(out, Labels) and out.data.dtype == np.int32
    np.testing.assert_allclose(out.scale, labels.scale)
    assert set(np.unique(out.data)) <= set(np.unique(beads))
    # a bead far from the edges moves by the shift: corrected(p) = moving(p - shift)
    shift = np.array(widget.result.registration.global_shift)
    sizes = np.bincount(beads.ravel())
    for value in np.argsort(sizes)[::-1][1:6]:
        src = np.argwhere(beads == value).mean(axis=0)
        dst = np.argwhere(out.data == value)
        if len(dst) == (beads == value).sum():  # whole after the move (not cut by an edge)
            np.testing.assert_allclose(dst.mean(axis=0) - src, shift, atol=0.6)
            break
    else:
        raise AssertionError("no whole bead to compare")
