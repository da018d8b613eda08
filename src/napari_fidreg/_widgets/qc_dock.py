"""The QC dock: the figures of a result on matplotlib Qt canvases, beside the scene, not in it.

QC images laid out as layers beside the volume made napari's "fit to view" frame them
too (hidden or not) and shrink the stack to a thumbnail; here they are figures in a
dock of their own, zoomable with matplotlib's toolbar. The figures are those of
:mod:`napari_fidreg.figures`, the ones the QC image on disk shows.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from ..core.result import Registration
from ..figures import block_map_figure, draw_qc, qc_panels
from .jobs import DOCK_PLANES

DOCK_NAME = "fidreg QC"
QC_TAB, MAP_TAB = "projections", "block shifts"


class FigureTab(QWidget):
    """One matplotlib figure on a Qt canvas, with the navigation toolbar (pan, zoom, save)."""

    def __init__(self, parent=None):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
        from matplotlib.figure import Figure

        super().__init__(parent)
        self.figure = Figure(figsize=(10, 3.5))
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        self._draw = None  # how to draw the figure: kept to lay it out again at another size
        self._stale = False  # a figure to build the next time the tab is shown
        # the figures lay out their text for the figure's size: lay them out again when it changes
        self.canvas.mpl_connect("resize_event", lambda _: self._resized())

    def show_figure(self, draw) -> None:
        """Show ``draw(figure)``: built at the next turn of the event loop when the tab is in view,
        else when it is first shown (building a figure takes 40-110 ms on the GUI thread: a hidden
        tab costs nothing). Not at once: a dock just added is resized first, which built the
        figure a second time (0.06-0.1 s more of the stall at the end of a napari run)."""
        from qtpy.QtCore import QTimer

        self._draw, self._stale = draw, True
        if self.isVisible():
            QTimer.singleShot(0, self._build_if_visible)

    def _build_if_visible(self) -> None:
        if self.isVisible():  # still in view (else it is built when shown: showEvent)
            self.drawn_figure()

    def _resized(self) -> None:
        if not self.isVisible():
            return
        if self._stale:
            self.drawn_figure()  # a figure due: built once, at this size
        elif self._draw is not None:
            self._draw(self.figure)

    def drawn_figure(self):
        """The figure, built if it is due (for a tab not shown yet, or a viewer without a window)."""
        if self._stale and self._draw is not None:
            self._stale = False
            self._draw(self.figure)
            self.toolbar.update()  # forget the zoom history of the previous figure
            self.canvas.draw_idle()  # drawn at the next paint, not now
        return self.figure

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.drawn_figure()

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
