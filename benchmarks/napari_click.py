"""What a napari user feels: click 'Register' on a 60xNxN pair, wait for the result layers.

Run under a display (the README's test set-up provides Xvfb), in a fresh process::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python benchmarks/napari_click.py --size 1024

Prints one JSON line: how long the dock takes to open and the longest event-loop stall (a
10 ms timer's largest gap) from then until the click (``--pick-s`` later, the time a user
takes to pick layers: the dock warms the engine up meanwhile); click-to-layers seconds, the
first progress tick after the click, the longest stall during the run, and how long Cancel
takes to stop a second run at each stage it is pressed in.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

import napari
from napari_fidreg._widgets import RegistrationWidget
from napari_fidreg.core.synthetic import fiducial_pair


class StallMeter:
    """The largest gap between ticks of a 10 ms timer: how long the event loop was blocked."""

    def __init__(self, where=lambda: ""):
        self.where = where  # what was running: said with the worst stall
        self.last = time.perf_counter()
        self.worst = 0.0
        self.worst_during = ""
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(10)

    def _tick(self):
        now = time.perf_counter()
        if now - self.last > self.worst:
            self.worst, self.worst_during = now - self.last, self.where()
        self.last = now

    def reset(self):
        self.last = time.perf_counter()
        self.worst = 0.0


def spin_until(condition, timeout=600.0):
    t0 = time.perf_counter()
    while not condition() and time.perf_counter() - t0 < timeout:
        QApplication.processEvents()
        time.sleep(0.002)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--pick-s", type=float, default=2.0, help="seconds between the dock's opening and the click")
    args = ap.parse_args(argv)

    pair = fiducial_pair((60, args.size, args.size), (1.3, -4.6, 7.25), seed=1, deformation=(0.5, 1.5, 1.5))
    viewer = napari.Viewer(show=True)
    viewer.add_image(pair.reference, name="reference", colormap="green", blending="additive")
    viewer.add_image(pair.moving, name="moving", colormap="magenta", blending="additive")
    spin_until(lambda: False, timeout=1.0)  # the viewer settles before the dock opens
    opening = StallMeter()
    t_open = time.perf_counter()
    widget = RegistrationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Fiducial registration")
    widget.block_size.value = args.block_size
    dock_s = time.perf_counter() - t_open
    # the user picks layers and a block size: the dock's warm-up thread runs meanwhile
    spin_until(lambda: False, timeout=args.pick_s)
    opening.timer.stop()

    ticks = []
    widget.progress.changed.connect(lambda *_: ticks.append(time.perf_counter()))
    meter = StallMeter(lambda: str(widget.status.value))
    meter.reset()
    t0 = time.perf_counter()
    widget.run()  # what the Register button does
    spin_until(lambda: widget.worker is None)
    spin_until(lambda: False, timeout=0.5)  # the layers' first draw
    result = {
        "size": args.size,
        "dock_open_s": round(dock_s, 3),  # making and docking the widget, on the GUI thread
        "dock_open_worst_stall_s": round(opening.worst, 3),  # from then until the click
        "pick_s": args.pick_s,
        "click_to_layers_s": round(time.perf_counter() - t0 - 0.5, 2),
        "first_progress_s": round(ticks[0] - t0, 3) if ticks else None,
        "worst_stall_s": round(meter.worst, 3),
        "worst_stall_after": meter.worst_during,
        "error": widget.last_error or None,
        "shift": [round(v, 3) for v in widget.result.registration.global_shift] if widget.result else None,
    }

    cancel = {}
    for stage in ("reading", "global shift", "blocks", "correcting", "projections"):
        widget.run()
        spin_until(lambda s=stage: widget.worker is None or s in str(widget.progress.label), timeout=300)
        if widget.worker is None:
            cancel[stage] = None  # the run ended before this stage could be seen
            continue
        t1 = time.perf_counter()
        widget.cancel()
        spin_until(lambda: widget.worker is None)
        cancel[stage] = round(time.perf_counter() - t1, 3)
    result["cancel_s"] = cancel
    print(json.dumps(result))
    viewer.close()
    return 0 if np.isfinite(result["click_to_layers_s"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
