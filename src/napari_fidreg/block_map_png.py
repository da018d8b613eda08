"""The block map of the QC image (``NAME.qc.png``), drawn with Pillow.

The same map as the dock's block-shift tab (:func:`napari_fidreg.figures.block_map_figure`):
for each component (dz, dy, dx) and z level of the grid, the shift each block uses for the
correction on a diverging scale centred on the median block, at least
``MAP_MIN_HALF_RANGE`` px either side, rejected blocks crossed red (by the engine) or orange
(by hand) and outlined in black. Without matplotlib, as the rest of the QC image: its import
and drawing were most of a fresh CLI process's QC time.
"""

from __future__ import annotations

import numpy as np

from . import figures
from .core.result import Registration
from .figures import MAX_Z_ROWS, block_map_data, map_scale

MAX_CELL = 96  # px of a block on the map
MAX_PANEL = 360  # px: a panel's longer side at most (a 1 x 2 grid was 64 x 128 px, its bar unreadable)
NUMBERS_FROM = 44  # px: cells at least this wide hold their value
ROW_TITLE, BAR_H, BAR_LABELS = 24, 10, 18  # px: a panel's title band, its colour bar and its labels
PANEL_GAP = 36  # px between the three panels
MARGIN = 24  # px left and right of them (the colour bars' end labels overhang a little)
# matplotlib's "coolwarm" at 0, 1/4, 1/2, 3/4 and 1, interpolated in between
_ANCHORS = np.array([(59, 76, 192), (141, 176, 254), (221, 221, 221), (245, 156, 125), (180, 4, 38)], np.float64)
TITLE = "block shifts used for the correction"
LEGEND = (
    "red x = rejected by the engine, orange x = rejected by hand (both filled from their neighbours, "
    "or given the global shift when no block is kept)"
)
ENGINE_RED, HAND_ORANGE = (
    tuple(round(255 * c) for c in rgba[:3]) for rgba in (figures.ENGINE_RED, figures.HAND_ORANGE)
)


def diverging(t: np.ndarray) -> np.ndarray:
    """RGB uint8 of ``t`` in [0, 1] on the coolwarm scale (blue, pale grey, red); mid grey where
    ``t`` is not finite (a hand-made registration's NaN)."""
    t = np.asarray(t, np.float64)
    finite = np.isfinite(t)
    x = np.clip(np.where(finite, t, 0.5), 0.0, 1.0) * (len(_ANCHORS) - 1)
    i = np.minimum(x.astype(int), len(_ANCHORS) - 2)
    f = (x - i)[..., None]
    out = np.rint(_ANCHORS[i] * (1 - f) + _ANCHORS[i + 1] * f).astype(np.uint8)
    out[~finite] = 128
    return out


HEAD, FOOT = 30, 26  # px: the title's band above the panels, the legend's below them


def cell_origin(grid_shape, width: int, component: int, z: int, y: int, x: int) -> tuple[int, int]:
    """Where :func:`block_map_image` draws a block: the (column, row) of the top-left pixel of
    block (``z``, ``y``, ``x``) in the panel of ``component`` (0 dz, 1 dy, 2 dx)."""
    cell, panel_w, _, row_h, img_w = _geometry(grid_shape, width)
    x_left = (img_w - (3 * panel_w + 2 * PANEL_GAP)) // 2
    return x_left + component * (panel_w + PANEL_GAP) + x * cell, HEAD + z * row_h + ROW_TITLE + y * cell


def _geometry(grid_shape, width: int) -> tuple[int, int, int, int, int]:
    """(cell, panel width, panel height, a z level's height, image width) in px."""
    _, gy, gx = grid_shape
    cell = int(max(4, min(MAX_CELL, MAX_PANEL // max(gy, gx), (width - 2 * PANEL_GAP - 2 * MARGIN) // (3 * gx))))
    panel_w, panel_h = cell * gx, cell * gy
    row_h = ROW_TITLE + panel_h + 6 + BAR_H + BAR_LABELS
    return cell, panel_w, panel_h, row_h, max(3 * panel_w + 2 * PANEL_GAP + 2 * MARGIN, min(width, 900))


def block_map_image(reg: Registration, width: int, font) -> np.ndarray:
    """The map of ``reg``'s blocks as RGB uint8, at most ``width`` px wide; ``font(size, text)``
    gives a Pillow font. ``reg`` must have blocks."""
    from PIL import Image, ImageDraw

    gz = reg.grid_shape[0]
    rows = min(gz, MAX_Z_ROWS)
    shifts, auto, hand = block_map_data(reg)
    cell, panel_w, panel_h, row_h, img_w = _geometry(reg.grid_shape, width)
    img = Image.new("RGB", (img_w, HEAD + rows * row_h + FOOT), "white")
    draw = ImageDraw.Draw(img)
    note = f" (z levels {rows}-{gz - 1} not drawn)" if gz > rows else ""
    draw.text((img.width / 2, HEAD / 2), TITLE + note, fill="black", font=font(14, TITLE), anchor="mm")
    for k, name in enumerate(("dz", "dy", "dx")):
        med, half = map_scale(shifts[..., k])
        for iz in range(rows):
            x0, top = cell_origin(reg.grid_shape, width, k, iz, 0, 0)  # the panel's top-left corner
            title = f"{name} (px)" + (f", z level {iz}" if gz > 1 else "")
            draw.text((x0 + panel_w / 2, top - 6), title, fill="black", font=font(13, title), anchor="md")
            values = shifts[iz, :, :, k]
            colours = diverging((values - med) / (2 * half) + 0.5)
            tiles = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
            img.paste(Image.fromarray(tiles), (x0, top))
            draw.rectangle((x0 - 1, top - 1, x0 + panel_w, top + panel_h), outline="black")
            small = font(11, "+0.00")
            for (j, i), v in np.ndenumerate(values):
                numbers, crossed = cell >= NUMBERS_FROM, auto[iz, j, i] or hand[iz, j, i]
                cx = x0 + (i + 0.5) * cell
                if crossed:  # with a number, the cross above it, the number below: both readable
                    cy = top + (j + (0.36 if numbers else 0.5)) * cell
                    _cross(draw, cx, cy, cell, ENGINE_RED if auto[iz, j, i] else HAND_ORANGE)
                if numbers:  # in the middle of its cell (low in it, it read as the cell's below)
                    y = top + (j + (0.8 if crossed else 0.5)) * cell
                    draw.text((cx, y), f"{v:+.2f}", fill="black", font=small, anchor="mm")
            _colour_bar(draw, img, x0, top + panel_h + 6, panel_w, med, half, font)
    draw.text((img.width / 2, img.height - FOOT / 2), LEGEND, fill="black", font=font(12, LEGEND), anchor="mm")
    return np.asarray(img)


def _cross(draw, cx: float, cy: float, cell: int, colour) -> None:
    """An x over a block, ``colour`` on a black outline (it shows on red and on blue cells)."""
    r = max(2.0, cell * 0.17)
    strokes = ((max(3, cell // 8), "black"), (max(1, cell // 16), colour)) if cell >= 16 else ((1, colour),)
    for width, fill in strokes:  # under 16 px a black outline made a blob of red and orange alike
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=fill, width=width)
        draw.line((cx - r, cy + r, cx + r, cy - r), fill=fill, width=width)


def _colour_bar(draw, img, x0: int, y0: int, w: int, med: float, half: float, font) -> None:
    """The panel's scale under it: the colours from med - half to med + half, three values."""
    from PIL import Image

    bar = np.repeat(diverging(np.linspace(0.0, 1.0, max(w, 2)))[None], BAR_H, axis=0)
    img.paste(Image.fromarray(bar), (x0, y0))
    small = font(11, "+0.00")
    y = y0 + BAR_H + 2
    ends = ((x0, med - half, "la"), (x0 + w, med + half, "ra"))
    middle = ((x0 + w / 2, med, "ma"),)
    widest = max(small.getlength(f"{v:+.2f}") for v in (med - half, med, med + half)) + 6
    # as many values as fit side by side (on a narrow panel they ran into one another)
    labels = ends + middle if w >= 3 * widest else ends if w >= 2 * widest else middle
    for x, v, anchor in labels:
        draw.text((x, y), f"{v:+.2f}", fill="black", font=small, anchor=anchor)
