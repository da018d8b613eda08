"""How often a dock shows its worker's progress ticks.

A worker yields a tick per plane or block: at 1024^2 the correction's 60 planes came ~10 ms
apart, and each shown tick repainted the window (~20 ms under Xvfb), so the ticks queued up
and the event loop ran their repaints back to back: 0.26-0.39 s without a turn for input or
timers. A dock shows at most one tick per ``TICK_GAP_MS``: at once the first, a new stage's
first and a stage's last; one held back meanwhile is shown when the gap is over (the bar
never lags behind a pause in the ticks), and dropped when the worker ends (it would write
over "done" or "cancelled").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from qtpy.QtCore import QTimer

from ..core.progress import Progress

TICK_GAP_MS = 50


class TickGate:
    """Calls ``show(tick)`` for the ticks worth showing (see the module); use it as the worker's
    ``yielded`` handler, and :meth:`follow` the worker."""

    def __init__(self, show: Callable[[Progress], None], gap_ms: int = TICK_GAP_MS):
        self._show, self._gap = show, gap_ms / 1000
        self._at, self._label = -float("inf"), None
        self._held: Progress | None = None
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)

    def __call__(self, tick: Progress) -> None:
        wait = self._at + self._gap - time.perf_counter()
        if tick.finished or tick.label != self._label or wait <= 0:
            self._timer.stop()
            self._held = None
            self._shown(tick)
            return
        self._held = tick  # the newest wins
        if not self._timer.isActive():
            self._timer.start(max(1, int(wait * 1000)))

    def follow(self, worker) -> None:
        """Drop a held tick when ``worker`` ends, whichever way."""
        for signal in (worker.returned, worker.errored, worker.aborted, worker.finished):
            signal.connect(self.drop)

    def drop(self, *_) -> None:
        self._timer.stop()
        self._held = None

    def _flush(self) -> None:
        tick, self._held = self._held, None
        if tick is not None:
            self._shown(tick)

    def _shown(self, tick: Progress) -> None:
        self._at, self._label = time.perf_counter(), tick.label
        self._show(tick)
