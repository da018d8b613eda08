"""Regenerate the user guide's screenshots from the sample data in a real napari window.

Run under a display (the README's test set-up provides Xvfb)::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python docs/make_screenshots.py

Writes docs/images/*.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication

import napari
from napari_fidreg._sample_data import MOVING_NAME, REFERENCE_NAME

OUT = Path(__file__).parent / "images"


def wait_for(widget, timeout=120):
    t0 = time.time()
    while widget.worker is not None and time.time() - t0 < timeout:
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(10):
        QApplication.processEvents()


def settle(n: int = 30) -> None:
    """Let Qt lay out and paint (docks, matplotlib canvases) before a screenshot."""
    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.02)


def grab(widget, name: str) -> None:
    """A picture of one Qt widget (the QC dock), as drawn."""
    settle()
    OUT.mkdir(exist_ok=True)
    widget.grab().save(str(OUT / name))
    print("wrote", OUT / name)


def save(img: np.ndarray, name: str) -> None:
    from skimage.io import imsave

    OUT.mkdir(exist_ok=True)
    imsave(OUT / name, img[..., :3], check_contrast=False)
    print("wrote", OUT / name)


def main() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    viewer.open_sample("napari-fidreg", "fiducial_pair")
    _, widget = viewer.window.add_plugin_dock_widget("napari-fidreg", "Fiducial registration")
    settle(50)  # let the dock lay itself out (it narrows the canvas), then fit the stack to it
    viewer.reset_view()
    settle()
    save(viewer.screenshot(canvas_only=False, flash=False), "01_sample_loaded.png")

    widget.block_size.value = 64  # 4 x 4 blocks: enough for the block map and a rejection
    widget.run()
    wait_for(widget)
    names = [layer.name for layer in viewer.layers]
    viewer.layers[MOVING_NAME].visible = False
    viewer.reset_view()  # the scene holds the volume only: fit to view frames it
    settle()
    save(viewer.screenshot(canvas_only=False, flash=False), "02_registered_overlay.png")

    for layer in viewer.layers:
        layer.visible = layer.name in (REFERENCE_NAME, MOVING_NAME)
    save(viewer.screenshot(canvas_only=True, flash=False), "03_overlay_before.png")
    for layer in viewer.layers:
        layer.visible = layer.name in (REFERENCE_NAME, f"{MOVING_NAME} registered")
    save(viewer.screenshot(canvas_only=True, flash=False), "04_overlay_after.png")

    qc = widget.qc_dock()
    qc.resize(1400, 420)
    grab(qc, "05_projections.png")

    # a block rejected by hand: select its row, Reject; the map and the arrows follow
    for layer in viewer.layers:
        layer.visible = not layer.name.startswith(MOVING_NAME) or layer.name.endswith("registered")
    widget.table.native.selectRow(10)
    widget.review.reject_button.native.click()
    wait_for(widget)
    qc.tabs.setCurrentIndex(1)  # block shifts
    settle()
    grab(qc, "06_block_map.png")
    table = widget.table.native  # the rejected row in view (the dock has scrolled to the result itself)
    table.scrollToItem(table.item(10, 0))
    settle()
    save(viewer.screenshot(canvas_only=False, flash=False), "07_rejected_by_hand.png")

    # the sub-volume box: drawn on the reference's y/x grid, shown on every plane
    widget.add_subvolume_layer()
    shapes = viewer.layers["fidreg: sub-volume"]
    shapes.add_rectangles(np.array([[40.0, 20.0], [40.0, 220.0], [200.0, 220.0], [200.0, 20.0]]))
    shapes.mode = "add_rectangle"
    viewer.dims.set_current_step(0, 30)
    widget.z_start.value, widget.z_stop.value = 5, 35
    widget.block_size.value = 80
    widget.run()
    wait_for(widget)
    qc.tabs.setCurrentIndex(0)  # projections
    widget.root_native_widget.verticalScrollBar().setValue(0)  # the dock from its top: the ticked box option
    settle()
    save(viewer.screenshot(canvas_only=False, flash=False), "08_subvolume.png")
    print("layers:", names)
    viewer.close()
    series()


def series() -> None:
    """A 4D layer of four rounds registered in the series dock, round 2 under the slider."""
    from scipy import ndimage

    from napari_fidreg.core.synthetic import fiducial_pair

    pair = fiducial_pair((30, 256, 256), (0, 0, 0), seed=5, deformation=(0.3, 1.0, 1.0))
    shifts = [(0.6, -2.4, 3.3), (1.2, 4.1, -5.6), (-0.8, 1.5, 2.2), (0.3, 0.8, -1.9)]
    rounds = np.stack([
        np.rint(ndimage.shift(pair.moving.astype(np.float32), np.negative(s), order=1, mode="nearest")).astype(np.uint16)
        for s in shifts
    ])  # fmt: skip
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 1100)
    ref = viewer.add_image(pair.reference, name="H11R11_beads", scale=(0.2, 0.15, 0.15))
    mov = viewer.add_image(rounds, name="fov1 rounds", scale=(1.0, 0.2, 0.15, 0.15))
    _, widget = viewer.window.add_plugin_dock_widget("napari-fidreg", "Fiducial series registration")
    widget.reference.value, widget.moving.value, widget.block_size.value = ref, [mov], 64
    widget.run()
    wait_for(widget)
    viewer.dims.set_current_step(0, 2)
    qc = widget.qc_dock()
    tabs = [qc.tabs.tabText(k) for k in range(qc.tabs.count())]
    qc.tabs.setCurrentIndex(tabs.index("drift over rounds"))
    viewer.reset_view()
    settle()
    save(viewer.screenshot(canvas_only=False, flash=False), "09_series.png")
    viewer.close()


if __name__ == "__main__":
    main()
