"""The QC dock: the figures of a result on matplotlib Qt canvases, beside the scene, not in it.

QC images laid out as layers beside the volume made napari's "fit to view" frame them
too (hidden or not) and shrink the stack to a thumbnail; here they are figures in a
dock of their own, zoomable with matplotlib's toolbar. The figures are those of
:mod:`napari_fidreg.figures`, the ones the QC image on disk shows.
"""

from __future__ import annotations

import traceback

from qtpy.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from ..core.result import Registration
from ..figures import block_map_figure, draw_qc, qc_panels
from .jobs import DOCK_PLANES

DOCK_NAME = "fidreg QC"
QC_TAB, MAP_TAB = "projections", "block shifts"
# a figure is built and rendered this long after it is asked for (a new result, a resize, the
# toolbar's pan), in a turn of the event loop of its own; requests meanwhile join it
UPDATE_GAP_MS = 30


def _canvas_class():
    """matplotlib's Qt canvas, whose render is left to its tab (see ``draw_idle``); imported
    when the first tab is made (matplotlib's Qt backend is 0.5 s of import)."""
    import numpy as np
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.backends.qt_compat import QT_API
    from qtpy.QtGui import QImage, QPainter

    if QT_API == "PyQt6":
        from PyQt6 import sip

    class Canvas(FigureCanvasQTAgg):
        """A canvas that never renders inside a paint of the window. matplotlib's own
        ``draw_idle`` leaves the render (Agg: 60-140 ms for the QC figure at 1024^2) to the
        next paint; after a run, the new dock's layout resized the canvas, and that one paint
        composed the window, drew the scene and rendered the figure, with the figure's build
        just before it: 0.3-0.4 s of a frozen GUI under Xvfb. Here ``draw_idle`` asks the tab
        (``request``), and a paint copies what was last rendered: stretched to the canvas
        while the render for a new size is due (a resize, a dragged splitter), not blank."""

        request = None  # the tab's: build the figure if due and render it, soon

        def draw_idle(self):
            if self.request is not None:
                self.request()

        def rendered_for_size(self) -> bool:
            """Whether the last render is of the canvas's present size."""
            renderer = getattr(self, "renderer", None)
            size = self.get_width_height(physical=True)
            return renderer is not None and (int(renderer.width), int(renderer.height)) == size

        def paintEvent(self, event):  # noqa: N802 - Qt's name
            renderer = getattr(self, "renderer", None)
            if renderer is None or self.rendered_for_size() or getattr(self, "_draw_pending", False):
                super().paintEvent(event)  # matplotlib's copy (or its render, after a save)
                return
            # matplotlib's paint would make an empty renderer of the new size and show it
            rgba = np.ascontiguousarray(renderer.buffer_rgba())
            buf = memoryview(rgba)
            ptr = int(sip.voidptr(buf)) if QT_API == "PyQt6" else buf  # as matplotlib's own paint
            image = QImage(ptr, rgba.shape[1], rgba.shape[0], rgba.strides[0], QImage.Format.Format_RGBA8888)
            painter = QPainter(self)
            try:
                painter.drawImage(self.rect(), image)
            finally:
                painter.end()

    return Canvas


class FigureTab(QWidget):
    """One matplotlib figure on a Qt canvas, with the navigation toolbar (pan, zoom, save)."""

    def __init__(self, parent=None):
        from matplotlib.backends.backend_qtagg import NavigationToolbar2QT
        from matplotlib.figure import Figure
        from qtpy.QtCore import QTimer

        super().__init__(parent)
        self.figure = Figure(figsize=(10, 3.5))
        self.canvas = _canvas_class()(self.figure)
        self.canvas.setMinimumHeight(220)
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        self._draw = None  # how to draw the figure: kept to lay it out again at another size
        self._stale = False  # a figure to build the next time the tab is shown
        self._relayout = False  # the figure to build again, for the canvas's new size
        self._due = False  # a render asked for and not made yet (the tab hidden meanwhile)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._update)
        self.canvas.request = self._update_soon
        # the figures lay out their text for the figure's size: lay them out again when it changes
        self.canvas.mpl_connect("resize_event", lambda _: self._resized())

    def show_figure(self, draw) -> None:
        """Show ``draw(figure)``: built and rendered ``UPDATE_GAP_MS`` later when the tab is in
        view, else when it is first shown (a figure's build and render take 0.1-0.2 s of the
        GUI thread: a hidden tab costs nothing). Not at once: a dock just added is laid out
        first, and its resizes built the figure again and its paint rendered it."""
        self._draw, self._stale, self._relayout = draw, True, False
        self._update_soon()

    def _update_soon(self) -> None:
        try:
            self._due = True
            if not self._timer.isActive():
                self._timer.start(UPDATE_GAP_MS)
        except RuntimeError:  # the tab is deleted (a closed dock's figure, drawn by a script)
            pass

    def _update(self) -> None:
        """Build the figure if it is due, and render it (in this turn: the paints that follow
        copy it)."""
        if not self.isVisible() or self.canvas.width() <= 0 or self.canvas.height() <= 0:
            return  # showEvent asks again
        if self._relayout and not self._stale and self._draw is not None:
            self._draw(self.figure)
        self._relayout = False
        try:
            self.drawn_figure()
            self.canvas.draw()
        except Exception:  # noqa: BLE001 - as matplotlib's draw_idle: an exception in a Qt slot can abort
            traceback.print_exc()
        self._due = False
        self._timer.stop()  # the build's own request (draw_idle) is met by this render

    def _resized(self) -> None:
        self._relayout = True  # built again at the new size by the update it asks for (draw_idle)

    def drawn_figure(self):
        """The figure, built if it is due (for a tab not shown yet, or a viewer without a window);
        rendered later (``draw_idle``)."""
        if self._stale and self._draw is not None:
            self._stale = False
            self._draw(self.figure)
            self.toolbar.update()  # forget the zoom history of the previous figure
            self.canvas.draw_idle()
        return self.figure

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        # a render asked for while hidden (a new figure, a resize: each asks), or a size it was
        # not rendered for; a tab shown again as it was keeps its render (no 50-100 ms render on
        # each switch back)
        if self._due or not self.canvas.rendered_for_size():
            self._update_soon()

    def clear(self) -> None:
        self._draw, self._stale = None, False
        self.figure.clear()
        self.toolbar.update()
        self.canvas.draw_idle()


class QCDock(QWidget):
    """Tabs: XY/XZ/YZ projections reference | before | after with the overlays, and the block-shift map.

    :meth:`show_result` draws a result, :meth:`clear` empties both tabs (a failed run
    leaves no figure of an earlier one). Other views (a drift plot) can be added as
    tabs with :meth:`add_tab`.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName(DOCK_NAME)
        self.tabs = QTabWidget(self)
        self.message = QLabel("run a registration to see its QC views here")
        self.message.setWordWrap(True)
        self.qc = self.add_tab(QC_TAB)
        self.block_map = self.add_tab(MAP_TAB)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs)
        self.title = ""

    def add_tab(self, name: str) -> FigureTab:
        """A new tab holding an empty figure; show one with ``tab.show_figure(draw)``."""
        tab = FigureTab(self)
        self.tabs.addTab(tab, name)
        return tab

    def show_result(
        self,
        projections: dict,
        reg: Registration,
        *,
        title: str = "",
        arrow_gain: float = 10.0,
        panels=None,
        keep_tabs: bool = False,
    ) -> None:
        """Draw the projections (a :class:`~.jobs.JobResult`'s ``projections``) and ``reg``'s block
        shifts. ``panels``: the :class:`~napari_fidreg.figures.QCPanels` of those projections when
        a worker made them already (~0.1 s that the GUI thread then spares). Tabs added by
        other views (the series dock's drift) are removed unless ``keep_tabs``: they would not be
        of this result."""
        if not keep_tabs:  # another view's tab (the series dock's drift) would not be of this result
            for k in reversed(range(2, self.tabs.count())):
                self.tabs.removeTab(k)
        p = projections
        if panels is None:
            panels = qc_panels(p["reference"], p["before"], p["after"], voxel_size=reg.voxel_size, planes=DOCK_PLANES)
        self.title = title
        # the title in the line above the tabs, not again in the figure (a new user's report)
        self.qc.show_figure(lambda fig: draw_qc(panels, figure=fig))
        self.block_map.show_figure(lambda fig: block_map_figure(reg, figure=fig, arrow_gain=arrow_gain))
        self.message.setText(title)

    def clear(self, message: str = "") -> None:
        """Empty every tab; ``message`` says why (a failed run)."""
        self.title = ""
        for i in range(self.tabs.count()):
            self.tabs.widget(i).clear()
        self.message.setText(message or "no result")

    def has_figure(self) -> bool:
        """Whether the projections tab holds a result (drawn, or to be drawn when shown)."""
        return self.qc._draw is not None


def qc_dock_of(viewer) -> QCDock:
    """The viewer's QC dock, shared by the registration and series docks: added below the
    canvas the first time, and again if the user closed it (a viewer without a window gets
    one of its own)."""
    window = getattr(viewer, "window", None)
    dock = None if window is None else window.dock_widgets.get(DOCK_NAME)
    if dock is None:
        dock = QCDock()
        if window is not None:
            window.add_dock_widget(dock, name=DOCK_NAME, area="bottom")
            _bottom_dock_under_the_canvas(dock.window())
            _frame_again_once_laid_out(viewer)
    return dock


REFRAME_MS = 100  # after the new dock is laid out and the canvas has its new, smaller size


def _frame_again_once_laid_out(viewer) -> None:
    """Frame the layers again once the new dock has taken its share of the window: napari
    keeps the zoom when its canvas shrinks, and after the first result only about a quarter
    of the stack was in view (a new user's report). The result's layers are added after
    this, so it frames the stacks, not the arrows that reach past them."""
    from qtpy.QtCore import QTimer

    QTimer.singleShot(REFRAME_MS, viewer.reset_view)


def _bottom_dock_under_the_canvas(main) -> None:
    """Let the side docks keep the window's full height, so that a bottom dock sits under the
    canvas only: spanning the width, it stacked below the tall registration dock and made
    the window taller than a laptop screen."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QMainWindow

    if isinstance(main, QMainWindow):
        main.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        main.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
