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


def frame(viewer, *layers) -> None:
    """Centre the camera on some layers: QC panels beside the volume would make 'fit' zoom far out."""
    lo = np.min([layer.extent.world[0][-2:] for layer in layers], axis=0)
    hi = np.max([layer.extent.world[1][-2:] for layer in layers], axis=0)
    viewer.camera.center = tuple((lo[-2:] + hi[-2:]) / 2)
    canvas_h, canvas_w = viewer.window._qt_viewer.canvas.size
    viewer.camera.zoom = 0.9 * min(canvas_h / (hi[-2] - lo[-2]), canvas_w / (hi[-1] - lo[-1]))


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
    viewer.reset_view()
    for _ in range(50):  # let the dock lay itself out before the first screenshot
        QApplication.processEvents()
        time.sleep(0.02)
    save(viewer.screenshot(canvas_only=False, flash=False), "01_sample_loaded.png")

    widget.block_size.value = 128
    widget.run()
    wait_for(widget)
    names = [layer.name for layer in viewer.layers]
    for layer in viewer.layers:
        layer.visible = layer.name in (REFERENCE_NAME, f"{MOVING_NAME} registered", "fidreg: block shifts (x10)")
    frame(viewer, viewer.layers[REFERENCE_NAME])
    save(viewer.screenshot(canvas_only=False, flash=False), "02_registered_overlay.png")

    for layer in viewer.layers:
        layer.visible = layer.name in (REFERENCE_NAME, MOVING_NAME)
    save(viewer.screenshot(canvas_only=True, flash=False), "03_overlay_before.png")
    for layer in viewer.layers:
        layer.visible = layer.name in (REFERENCE_NAME, f"{MOVING_NAME} registered")
    save(viewer.screenshot(canvas_only=True, flash=False), "04_overlay_after.png")

    for layer in viewer.layers:
        layer.visible = layer.name.startswith("fidreg: X") or layer.name.startswith("fidreg: Y")
    frame(viewer, *[layer for layer in viewer.layers if layer.visible])
    save(viewer.screenshot(canvas_only=True, flash=False), "05_projections.png")
    print("layers:", names)
    viewer.close()


if __name__ == "__main__":
    main()
