"""Figures drawn from the engine's numbers: the QC figure and its PNG, and the block-shift map.

Kept outside ``core/`` so that the engine never imports a plotting library. The QC
panels are one RGB image made in numpy (:func:`qc_panels`). The napari QC dock draws
them with matplotlib on the ``Figure`` it is given (its Qt canvas; :func:`draw_qc`),
as the block map is drawn, never through ``pyplot`` or ``matplotlib.use``, so drawing
one changes nothing for the rest of the process (napari's Qt canvas included); matplotlib
is imported only then. The QC image that the CLI and the dock's Save write
(:func:`qc_png`) is the same layout drawn with Pillow: the panels pasted 1:1 and the
same text around them, without importing matplotlib (0.2 s of import in a fresh process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .core.block_grid import BY_HAND
from .core.qc import alignment_score, data_pixels, display_u8, overlay_u8, single_plane

QC_COLUMNS = ("reference", "moving (before)", "moving (after)", "overlay before", "overlay after")
# row names short and level, so that a flat XZ or YZ row holds its name; the title says what they are
PLANE_LABELS = {"xy": "XY", "xz": "XZ", "yz": "YZ"}
PLANE_NOTES = {"xy": "XY over z", "xz": "XZ over y", "yz": "YZ over x"}
GAP = 6  # px between panels
# rejected blocks, in the block map as in the viewer's crosses: by the engine, by hand (RGBA)
ENGINE_RED, HAND_ORANGE = (1.0, 0.0, 0.0, 1.0), (1.0, 0.55, 0.0, 1.0)
FILLED_GREY = (0.6, 0.6, 0.6, 1.0)  # a rejected block's arrow in the viewer: the shift filled in
TOP_IN, LEFT_IN = 0.75, 0.4  # draw_qc's margins for the title band and the row names (inches)
NO_TITLE_SAVES_IN = 0.22  # inches of that band, the title's line, when there is no title
# the PNG: panels up to PNG_WIDTH px wide drawn 1:1 (five 342-px panels of a 2048-px stack, binned
# by 6, fit), below a band of PNG_TOP px and right of a margin of PNG_LEFT px (draw_qc's at 100 dpi)
PNG_WIDTH, PNG_TOP, PNG_LEFT = 1800, 75, 40
PNG_EDGE = 8  # white right of and below the panels, so that the last ones do not look cut off
PNG_PLANES = ("xy", "xz", "yz")  # the PNG's rows, as the dock's
PNG_MAP_GAP = 24  # px between the projections and the block map
# type sizes in px: draw_qc's (11, 9, 10, 9 pt at 100 dpi) and a px more, as Pillow's Aileron is
# smaller than matplotlib's DejaVu at a size; the band's two lines centred at PNG_TITLE_Y and
# PNG_SCORE_Y, and the column and row names PNG_PAD px from their panels
PNG_TITLE, PNG_SCORE, PNG_COLUMN, PNG_ROW = 16, 13, 15, 14
PNG_TITLE_Y, PNG_SCORE_Y, PNG_PAD = 19, 40, 7
SCORE_GREY = (64, 64, 64)  # draw_qc's "0.25"


@dataclass
class QCPanels:
    """The QC panels as one RGB image, ready to draw (numpy only: the dock makes them in its
    worker thread, so that laying the figure out again at another size is cheap)."""

    mosaic: np.ndarray  # (h, w, 3) uint8: rows ``planes``, columns QC_COLUMNS
    heights: list[int]  # of each row
    planes: tuple[str, ...]
    score_before: float  # alignment score of the cleaned projections
    score_after: float
    gap: float = GAP  # between panels, in mosaic pixels
    _rgba: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def rgba(self) -> np.ndarray:
        """The mosaic as opaque uint8 RGBA (h, w, 4), the form matplotlib draws with the least work.

        Given RGB, matplotlib adds an alpha channel (float64) to the whole mosaic at every draw;
        given float, it makes a masked copy of it at ``imshow``: either cost 0.04-0.08 s of the
        QC dock's first paint at 1024^2, on the GUI thread. Made by :meth:`keep_rgba` ahead (the
        dock's worker does, for one result), else here, each call (~3 ms at 1024^2), not kept:
        a series of rounds would hold ~5 MB more a round."""
        if self._rgba is not None:
            return self._rgba
        out = np.full((*self.mosaic.shape[:2], 4), 255, dtype=np.uint8)
        out[..., :3] = self.mosaic
        return out

    def keep_rgba(self) -> QCPanels:
        """These panels, with :meth:`rgba` made now and kept (in a worker thread, before drawing)."""
        self._rgba = self.rgba()
        return self

    def score_line(self) -> str:
        """The line under the title, the same in the dock and the PNG."""
        notes = ", ".join(PLANE_NOTES[p] for p in self.planes)
        return (
            f"alignment score (cleaned projections) before {self.score_before:.3f} -> after {self.score_after:.3f};"
            f"   maximum projections: {notes}"
        )

    def resized(self, width: int) -> QCPanels:
        """The panels at about ``width`` pixels: repeated by an integer factor (crisp beads) or
        max-pooled (a bead stays as bright as it was), so that they are drawn 1:1."""
        h, w = self.mosaic.shape[:2]
        if w < width:
            m = max(1, width // w)
            mosaic = np.repeat(np.repeat(self.mosaic, m, axis=0), m, axis=1)
            return QCPanels(mosaic, [x * m for x in self.heights], self.planes, self.score_before,
                            self.score_after, self.gap * m)  # fmt: skip
        f = -(-w // width)
        if f == 1:
            return self
        pad = ((0, -h % f), (0, -w % f), (0, 0))
        padded = np.pad(self.mosaic, pad, constant_values=255)
        mosaic = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f, 3).max(axis=(1, 3))
        return QCPanels(mosaic, [x / f for x in self.heights], self.planes, self.score_before,
                        self.score_after, self.gap / f)  # fmt: skip


def qc_panels(reference: dict, before: dict, after: dict, *, voxel_size=None, planes=("xy", "xz")) -> QCPanels:
    """The panels of :func:`qc_figure` from :func:`napari_fidreg.core.qc.projections` dicts.

    A single image (one plane) has its XY row only: its XZ and YZ projections are a line."""
    if single_plane(reference):
        planes = ("xy",)
    mosaic, heights = _mosaic(reference, before, after, tuple(planes), _aspect(voxel_size))
    where = data_pixels(after)  # both scores on the pixels where the corrected stack has data
    return QCPanels(
        mosaic, heights, tuple(planes), alignment_score(reference, before, where=where),
        alignment_score(reference, after, where=where),
    )  # fmt: skip


def qc_png(reference: dict, before: dict, after: dict, *, title: str = "", voxel_size=None, registration=None) -> bytes:
    """PNG bytes of :func:`qc_figure`'s layout with XY, XZ and YZ rows, drawn with Pillow, and
    below it the block map of ``registration`` when it has blocks (as the dock's two tabs).

    The panels (:func:`qc_panels`, resized in numpy to about ``PNG_WIDTH`` px) are pasted
    1:1 below a band with the title and the score line, the column names centred above
    their columns and the row names right-aligned left of their rows, as :func:`draw_qc`
    lays them out. No matplotlib: its import was 0.2 s of every fresh CLI process, and its
    drawing and resampling most of the rest (the block map: :mod:`.block_map_png`).
    Deterministic (same inputs, same bytes).
    """
    from PIL import Image, ImageDraw

    panels = qc_panels(reference, before, after, voxel_size=voxel_size, planes=PNG_PLANES).resized(PNG_WIDTH)
    mosaic, gap = panels.mosaic, panels.gap
    h, w = mosaic.shape[:2]
    block_map = None
    if registration is not None and registration.has_blocks:
        from .block_map_png import block_map_image

        block_map = block_map_image(registration, w + PNG_LEFT, _font)
    extra = 0 if block_map is None else block_map.shape[0] + PNG_MAP_GAP
    img = Image.new("RGB", (max(w + PNG_LEFT, 0 if block_map is None else block_map.shape[1]) + PNG_EDGE,
                            h + PNG_TOP + PNG_EDGE + extra), "white")  # fmt: skip
    if block_map is not None:
        img.paste(Image.fromarray(block_map), ((img.width - block_map.shape[1]) // 2, h + PNG_TOP + PNG_MAP_GAP))
    img.paste(Image.fromarray(np.ascontiguousarray(mosaic, dtype=np.uint8)), (PNG_LEFT, PNG_TOP))  # RGB
    draw = ImageDraw.Draw(img)
    width = img.width
    score = panels.score_line()
    for text, y, size, fill in ((title, PNG_TITLE_Y, PNG_TITLE, "black"), (score, PNG_SCORE_Y, PNG_SCORE, SCORE_GREY)):
        if text:  # centred on the image as draw_qc's fig.text, smaller type where a long title would not fit
            draw.text((width / 2, y), text, fill=fill, font=_fitted_font(text, size, width - 8), anchor="mm")
    panel_w = (w - 4 * gap) / 5
    for col, name in enumerate(QC_COLUMNS):  # the bottom of the name (descenders) PNG_PAD above the panels
        x = PNG_LEFT + col * (panel_w + gap) + panel_w / 2
        draw.text((x, PNG_TOP - PNG_PAD), name, fill="black", font=_font(PNG_COLUMN, name), anchor="md")
    y0 = PNG_TOP
    for key, hh in zip(panels.planes, panels.heights):
        label = PLANE_LABELS[key]
        draw.text((PNG_LEFT - PNG_PAD, y0 + hh / 2), label, fill="black", font=_font(PNG_ROW, label), anchor="rm")
        y0 += hh + gap
    return _png_bytes(np.asarray(img))


def _png_bytes(rgb: np.ndarray) -> bytes:
    """An RGB image (h, w, 3) uint8 as PNG: every row Up-filtered (its difference from the row
    above, mod 256) and deflated by zlib-ng at level 2 (imagecodecs, a TIFF dependency
    already), or by the standard library's zlib where that build lacks it.

    libpng at level 1 took 5.5 ms for a Bintu round's image, where zlib-ng takes 3 ms for a
    file of the same size (230 kB); Pillow's encoder tries five filters on every row and took
    twice libpng's time. Deterministic: the same image gives the same bytes.
    """
    import struct
    import zlib

    import imagecodecs

    h, w = rgb.shape[:2]
    flat = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(h, 3 * w)
    rows = np.empty((h, 1 + 3 * w), dtype=np.uint8)
    rows[:, 0] = 2  # filter type 2, Up; the first row's "row above" is zeros
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])  # uint8: wraps mod 256, as the filter does
    if imagecodecs.ZLIBNG.available:
        data = bytes(imagecodecs.zlibng_encode(rows, level=2))
    else:
        data = zlib.compress(rows.tobytes(), 2)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, adaptive filters, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _fitted_font(text: str, size: int, width: float):
    """The font of :func:`_font` at ``size`` px, or smaller (down to 8 px) until ``text`` fits in ``width``."""
    font = _font(size, text)
    while size > 8 and font.getlength(text) > width:
        size -= 1
        font = _font(size, text)
    return font


def _font(size: int, text: str = ""):
    """Pillow's own TrueType font (Aileron, ASCII) at ``size`` px; for ``text`` beyond ASCII (a
    file name with an accent or a µ), DejaVu Sans, matplotlib's font, when its file is there.
    Loaded for each call (26 us), never shared, so that threads drawing QC images share no font."""
    from PIL import ImageFont

    if not text.isascii():
        import importlib.util
        from pathlib import Path

        spec = importlib.util.find_spec("matplotlib")  # finds the package without importing it
        for folder in (spec.submodule_search_locations or []) if spec else []:
            path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
            if path.is_file():
                return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def qc_figure(
    reference: dict, before: dict, after: dict, *, title: str = "", voxel_size=None, planes=("xy", "xz"), figure=None
):
    """Draw the QC panels on ``figure`` (cleared first; a new one when None) and return it.

    ``reference``, ``before``, ``after`` are :func:`napari_fidreg.core.qc.projections`
    dicts. One row per plane of ``planes`` ('xy', 'xz', 'yz'); columns: reference,
    moving (before), moving (after), overlay before, overlay after (reference green,
    moving magenta, white where they agree). XZ and YZ panels are stretched in z by the
    voxel aspect when known. The title line gives the alignment score of the cleaned
    projections before and after. Column and row names follow the panels when the
    figure is zoomed (the dock's toolbar) and are hidden when their panel is out of view.
    """
    return draw_qc(qc_panels(reference, before, after, voxel_size=voxel_size, planes=planes), title=title,
                   figure=figure)  # fmt: skip


def draw_qc(panels: QCPanels, *, title: str = "", figure=None, interpolation: str = "antialiased"):
    """Lay out :class:`QCPanels` on ``figure`` (cleared first; a new one when None); see :func:`qc_figure`."""
    from matplotlib.figure import Figure

    mosaic, heights, planes = panels.mosaic, panels.heights, panels.planes
    fig = Figure() if figure is None else figure
    fig.clear()
    fig.patch.set_facecolor("white")
    w_in, h_in = fig.get_size_inches()
    k = min(1.0, max(0.75, w_in / 10.0))  # smaller type on a small canvas (the dock); the PNG's at 1
    # without a title (the dock's: the line above its tabs says it) the score line takes its place
    band = TOP_IN if title else TOP_IN - NO_TITLE_SAVES_IN
    left, top = min(LEFT_IN / w_in, 0.12), min(band / h_in, 0.3)
    right = min(PNG_EDGE / (w_in * fig.dpi), 0.03)  # the PNG's white edge: the last panel not flush with the frame
    ax = fig.add_axes((left, 0, 1 - left - right, 1 - top))
    ax.imshow(panels.rgba(), interpolation=interpolation, aspect="equal")
    ax.set_anchor("N")  # a figure wider or taller than the panels leaves the room below / at the sides
    ax.set_axis_off()
    h, w = mosaic.shape[:2]
    panel_w = (w - 4 * panels.gap) / 5
    for col, name in enumerate(QC_COLUMNS):
        x = col * (panel_w + panels.gap) + panel_w / 2
        _label(ax, name, (x, 0.995), ("data", "axes fraction"), (0, 5), "center", "bottom", 10 * k, 0)
    y0 = 0
    for key, hh in zip(planes, heights):
        xy = (0.0005, y0 + hh / 2)  # just inside the axes: hidden only when its row is out of view
        _label(ax, PLANE_LABELS[key], xy, ("axes fraction", "data"), (-5, 0), "right", "center", 9 * k, 0)
        y0 += hh + panels.gap
    top_in = top * h_in * TOP_IN / band  # the title lines share the band above the column names
    if title:
        fig.text(0.5, 1 - 0.22 * top_in / TOP_IN / h_in, title, ha="center", va="center", fontsize=11 * k)
    fig.text(
        0.5, 1 - (0.44 if title else 0.22) * top_in / TOP_IN / h_in,
        panels.score_line(), ha="center", va="center", fontsize=9 * k, color="0.25",
    )  # fmt: skip
    return fig


ARROW_LEGEND = (
    "block arrows in the viewer: colour = block score (0 to 1), grey if rejected; length = {gain:g} x (dy, dx)\n"
    "red x = rejected by the engine, orange x = rejected by hand: given their neighbours' shift (or the global one)"
)
MAX_Z_ROWS = 6  # z levels of the grid drawn in the block map


def block_map_data(reg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What both block maps (this module's and :mod:`.block_map_png`'s) draw: the shifts used,
    (gz, gy, gx, 3), and the masks (gz, gy, gx) of the blocks rejected by the engine and by hand."""
    gz, gy, gx = reg.grid_shape
    shifts = np.array([b.shift for b in reg.blocks], np.float64).reshape(gz, gy, gx, 3)
    auto = np.array([not b.inlier and b.reason != BY_HAND for b in reg.blocks]).reshape(gz, gy, gx)
    hand = np.array([b.reason == BY_HAND for b in reg.blocks]).reshape(gz, gy, gx)
    return shifts, auto, hand


def map_scale(values: np.ndarray) -> tuple[float, float]:
    """A block map's colour scale for one component: its median block and half-range (at least
    ``MAP_MIN_HALF_RANGE``), over the finite values (0 when there is none)."""
    finite = values[np.isfinite(values)]
    med = float(np.median(finite)) if finite.size else 0.0
    return med, max(float(np.abs(finite - med).max()) if finite.size else 0.0, MAP_MIN_HALF_RANGE)


def rejected_colour(block) -> tuple[float, float, float, float]:
    """A rejected block's colour (RGBA), in the viewer, the table and the maps alike."""
    return HAND_ORANGE if block.reason == BY_HAND else ENGINE_RED


# the block map's colour scale spans at least this many px either side of the median block: a
# rigid shift's ±0.05 px of measurement noise filled the whole scale and read as a deformation
MAP_MIN_HALF_RANGE = 0.25


def block_map_figure(reg, *, figure=None, arrow_gain: float = 10.0):
    """Draw the block shifts of a :class:`~napari_fidreg.core.result.Registration` as heat maps.

    One panel per component (dz, dy, dx) and z level of the grid (the first
    ``MAX_Z_ROWS``): the shift each block uses for the correction, in px, on a diverging
    scale centred on the median block (so a deformation shows as red and blue; at least
    ``MAP_MIN_HALF_RANGE`` px either side, so that noise stays pale), with a colour bar per
    component. Rejected blocks are crossed as in the viewer: red (by the engine) or
    orange (by hand), outlined in black to stand out on red cells. A colour bar under the maps explains the colours of the viewer's
    block arrows (drawn ``arrow_gain`` times the shift). Returns the figure (a new one when ``figure`` is None).
    """
    from matplotlib.figure import Figure

    fig = Figure() if figure is None else figure
    fig.clear()
    fig.patch.set_facecolor("white")
    if not reg.has_blocks:
        fig.text(0.5, 0.5, "global shift only: no blocks", ha="center", va="center", fontsize=11)
        return fig
    gz, gy, gx = reg.grid_shape
    rows = min(gz, MAX_Z_ROWS)
    shifts, auto, hand = block_map_data(reg)
    cell_pt = 72 * fig.get_size_inches()[0] * 0.25 / max(gy, gx)  # about a block's width on the map
    grid = fig.add_gridspec(rows + 1, 3, height_ratios=[1.0] * rows + [0.05], hspace=0.5, wspace=0.35,
                            left=0.07, right=0.93, top=0.84, bottom=0.16)  # fmt: skip
    for k, name in enumerate(("dz", "dy", "dx")):
        med, half = map_scale(shifts[..., k])
        for iz in range(rows):
            ax = fig.add_subplot(grid[iz, k])
            im = ax.imshow(shifts[iz, :, :, k], cmap="coolwarm", vmin=med - half, vmax=med + half,
                           interpolation="nearest")  # fmt: skip
            numbers = gy * gx * rows <= 48  # few blocks drawn: the numbers as well (z rows make them small)
            crossed = auto[iz] | hand[iz]
            lift = 0.17 if numbers else 0.0  # a cross above its cell's number, not over it
            for mask, colour in ((auto[iz], ENGINE_RED), (hand[iz], HAND_ORANGE)):
                _mark(ax, mask, colour, min(60.0, (0.5 * cell_pt) ** 2), lift)
            if numbers:  # in the middle of the cell, or under its cross
                for (j, i), v in np.ndenumerate(shifts[iz, :, :, k]):
                    y = j + (0.27 if crossed[j, i] else 0.0)
                    ax.text(i, y, f"{v:+.2f}", ha="center", va="center", fontsize=7)
            ax.set_title(f"{name} (px)" + (f", z level {iz}" if gz > 1 else ""), fontsize=10)
            if max(gy, gx) <= 10:  # one tick per block while they can be read
                ax.set_xticks(range(gx))
                ax.set_yticks(range(gy))
            ax.tick_params(labelsize=7)
            ax.set_xlabel("block x", fontsize=8)
            if k == 0:
                ax.set_ylabel("block y", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    legend = fig.add_subplot(grid[rows, :])
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), "viridis"), cax=legend, orientation="horizontal")
    bar.ax.tick_params(labelsize=7)
    bar.set_label(ARROW_LEGEND.format(gain=arrow_gain), fontsize=8)
    # the crosses are explained by the legend under the maps: a title that said it too was
    # cut at both ends in the dock
    note = f" (z levels {rows}-{gz - 1} not drawn)" if gz > rows else ""
    fig.suptitle(f"block shifts used for the correction{note}", fontsize=10)
    return fig


def _mark(ax, mask: np.ndarray, colour, size: float, lift: float = 0.0) -> None:
    """Cross the blocks of ``mask`` on a heat map in ``colour``, outlined in black (a red
    cross on a red cell of the diverging scale would not show), ``lift`` cells above their
    centres."""
    from matplotlib import patheffects

    j, i = np.nonzero(mask)
    if len(j):
        outline = [patheffects.withStroke(linewidth=3.5, foreground="black")]
        ax.scatter(i, j - lift, marker="x", s=size, linewidths=2, color=colour, path_effects=outline)


def _label(ax, text, xy, xycoords, offset, ha, va, size, rotation):
    """A panel name tied to its panel: drawn only while that point of the panels is in view."""
    return ax.annotate(
        text, xy=xy, xycoords=xycoords, xytext=offset, textcoords="offset points", ha=ha, va=va,
        fontsize=size, rotation=rotation, annotation_clip=True,
    )  # fmt: skip


def _aspect(voxel_size) -> float:
    return 1.0 if voxel_size is None else float(voxel_size[0]) / float(voxel_size[2])


def _mosaic(reference: dict, before: dict, after: dict, planes, aspect: float) -> tuple[np.ndarray, list[int]]:
    """The panels as one RGB image (rows: ``planes``), and each row's height.

    Every panel is padded to the widest row's panel width (centred in it), so that the
    columns line up under their names: a YZ row is as wide as the stack is tall (ny), XY
    and XZ as it is wide (nx), and a stack of 175 x 104 px would otherwise shift the
    columns of one row.
    """
    width = max(min(reference[k].shape[1], before[k].shape[1], after[k].shape[1]) for k in planes)
    rows = [_row(reference, before, after, key, aspect if key != "xy" else 1.0, width) for key in planes]
    return _stack(rows, axis=0), [r.shape[0] for r in rows]


def _row(reference: dict, before: dict, after: dict, key: str, aspect: float, width: int = 0) -> np.ndarray:
    """One row of the mosaic: the three projections (grey) and the two overlays, RGB uint8."""
    r, b, a = reference[key], before[key], after[key]
    shape = tuple(min(x) for x in zip(r.shape, b.shape, a.shape))
    r, b, a = (p[: shape[0], : shape[1]] for p in (r, b, a))
    g_r, g_b, g_a = (display_u8(p) for p in (r, b, a))  # each projection stretched once, for its panel and overlays
    panels = [np.stack([g, g, g], axis=-1) for g in (g_r, g_b, g_a)] + [overlay_u8(g_r, g_b), overlay_u8(g_r, g_a)]
    if aspect != 1.0:  # stretch z by the voxel aspect (nearest rows)
        n = max(1, int(round(shape[0] * aspect)))
        idx = np.minimum((np.arange(n) / aspect).astype(int), shape[0] - 1)
        panels = [p[idx] for p in panels]
    if width > shape[1]:  # a narrower panel centred in its column, white either side as between panels
        left = (width - shape[1]) // 2  # (left-aligned, the column names sat over its right edge)
        pad = ((0, 0), (left, width - shape[1] - left), (0, 0))
        panels = [np.pad(p, pad, constant_values=255) for p in panels]
    return _stack(panels, axis=1)


def _stack(parts: list[np.ndarray], axis: int) -> np.ndarray:
    """``parts`` side by side (axis 1) or one above the other (axis 0), white gaps between them."""
    if axis == 1:
        gap = np.full((parts[0].shape[0], GAP, 3), 255, np.uint8)
    else:
        width = max(p.shape[1] for p in parts)
        parts = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in parts]
        gap = np.full((GAP, width, 3), 255, np.uint8)
    out = [parts[0]]
    for p in parts[1:]:
        out += [gap, p]
    return np.concatenate(out, axis=axis)
