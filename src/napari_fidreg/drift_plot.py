"""The drift plot of a series: dz, dy, dx per round, with uncertainty bars.

Outside ``core/`` (the engine never imports a plotting library). What is drawn is
worked out once (:func:`drift_data`) and painted on two surfaces, as the QC figure is
(:mod:`.figures`): :func:`drift_figure` on a matplotlib ``Figure`` of its own (the
napari dock's canvas, with its zoom and the marker of the round under the slider;
never ``pyplot``), and :func:`drift_png`, the ``drift.png`` that the CLI and the dock's
Save write, with Pillow, the same layout without importing matplotlib (its import and
drawing were 0.3-0.4 s of a fresh series run, a fifth of a 19-round batch of small
stacks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core.drift import DriftRow

AXES = ("z", "y", "x")
COLOURS = ("#1f77b4", "#2ca02c", "#d62728")
LABELS = {
    "sure": "shift ± 3 × uncertainty",
    "unsure": "low confidence: check by eye",
    "failed": "failed (see drift.csv)",
}
# each mark's size (matplotlib's markersize, pt) and edge width (pt), for both painters
MARKS = {"sure": (4, 0), "unsure": (7, 1.5), "reference": (10, 0), "failed": (8, 2)}


@dataclass
class AxisData:
    """One panel: the rounds with a shift, at their places (x), in the plot's unit."""

    x: np.ndarray  # place in round order
    y: np.ndarray  # shift
    err: np.ndarray  # 3 x uncertainty (0 where unknown)
    sure: np.ndarray  # bool: confident


@dataclass
class DriftData:
    """What the drift plot shows, whatever draws it."""

    names: list[str]  # the x axis, in round order (the reference among them when placed)
    unit: str  # "µm" when every round's voxel size is known, else "px"
    axes: list[AxisData]  # z, y, x
    failed: list[int]  # places of the rounds that failed
    reference: str  # its name, "" when not drawn
    reference_at: int | None  # its place, None when not drawn
    title: str  # the suptitle

    @property
    def line(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per axis, the points joined by the line, in x order (the reference at 0 included)."""
        out = []
        for a in self.axes:
            x, y = a.x, a.y
            if self.reference_at is not None:
                x, y = np.append(x, self.reference_at), np.append(y, 0.0)
            order = np.argsort(x, kind="stable")
            out.append((x[order], y[order]))
        return out

    def legend(self) -> list[str]:
        """The legend's entries in matplotlib's order: keys of LABELS and "reference"."""
        sure = self.axes[0].sure
        keys = ["unsure"] if (~sure).any() else []
        if self.reference_at is not None:
            keys.append("reference")
        if self.failed:
            keys.append("failed")
        return keys + (["sure"] if sure.any() else [])  # matplotlib lists the error bars last

    def label(self, key: str) -> str:
        return f"reference ({self.reference})" if key == "reference" else LABELS[key]

    @property
    def width_in(self) -> float:
        """The figure's width in inches (6 to 16, more rounds wider)."""
        return min(max(6.0, 0.42 * len(self.names) + 2.5), 16.0)

    @property
    def legend_columns(self) -> int:
        """All entries in a row on a wide figure, two a row on a narrow one."""
        return len(self.legend()) if self.width_in >= 10 else 2

    def frame(self) -> dict[str, float]:
        """The panels' place on the figure in fractions of it (matplotlib's ``subplots_adjust``):
        room above for the title and the legend's rows, below for the round names."""
        width = self.width_in
        return {
            "left": max(0.1, 1.0 / width),
            "right": 0.98,
            "top": 0.86 if len(self.legend()) > 2 and width < 10 else 0.89,
            "bottom": 0.2 if len(self.names) > 6 else 0.1,
            "hspace": 0.12,
        }


def drift_data(rows: list[DriftRow], *, reference: str = "", title: str = "", place_reference=True) -> DriftData:
    """The drift plot's content for ``rows`` (in round order); see :func:`drift_figure`."""
    from .core.drift import natural_key

    names = [r.moving for r in rows]
    if reference and place_reference and reference not in names:
        names = sorted([*names, reference], key=natural_key)
    pos = {n: i for i, n in enumerate(names)}
    regs = [r.registration for r in rows if r.registration is not None]
    in_um = bool(regs) and all(r.voxel_size is not None for r in regs)
    unit = "µm" if in_um else "px"
    ok = [(pos[r.moving], r.registration) for r in rows if r.registration is not None]
    axes = []
    for k in range(3):
        scale = [reg.voxel_size[k] if in_um else 1.0 for _, reg in ok]
        x = np.array([i for i, _ in ok], dtype=float)
        y = np.array([reg.global_shift[k] * f for (_, reg), f in zip(ok, scale)], dtype=float)
        err = np.array([3 * reg.global_uncertainty[k] * f if reg.global_uncertainty else 0.0
                        for (_, reg), f in zip(ok, scale)], dtype=float)  # fmt: skip
        sure = np.array([reg.global_confident for _, reg in ok], dtype=bool)
        # a hand-made result's NaN or inf is not drawn (nor its bar), as matplotlib leaves it out
        err = np.where(np.isfinite(err) & sure, err, 0.0)  # no bars for low-confidence rounds
        shown = np.isfinite(y)
        axes.append(AxisData(x=x[shown], y=y[shown], err=err[shown], sure=sure[shown]))
    at = pos.get(reference) if reference else None
    onto = f" onto {reference}" if reference else ""
    text = f"shift to apply to each of {len(rows)} rounds{onto} ({unit})"
    return DriftData(
        names=names, unit=unit, axes=axes, failed=[pos[r.moving] for r in rows if r.registration is None],
        reference=reference if at is not None else "", reference_at=at,
        title=f"{title}: {text}" if title else text[0].upper() + text[1:],
    )  # fmt: skip


def drift_figure(rows: list[DriftRow], *, reference: str = "", title: str = "", figure=None, place_reference=True):
    """Draw the drift of ``rows`` (in round order) on a matplotlib ``Figure`` and return it.

    One panel per axis, shift per round (µm when every round's voxel size is
    known, else px) with ±3 x uncertainty bars (about 95 % bounds, see
    ``docs/validation.md``); rounds whose shift is not confident are drawn as open
    red circles and named in the legend; rounds that failed are marked ``x`` on the
    axis. ``reference``, when given, is drawn at 0 as a star at its place in
    round order (by name) unless ``place_reference`` is False (rounds of a 4D layer,
    whose names say nothing of the reference's place). ``figure`` draws into an existing
    figure (the napari dock's canvas) instead of a new one.
    """
    from matplotlib.figure import Figure

    d = drift_data(rows, reference=reference, title=title, place_reference=place_reference)
    names, width = d.names, d.width_in
    fig = figure if figure is not None else Figure(figsize=(width, 6.4), dpi=100)
    fig.clear()
    axes = fig.subplots(3, 1, sharex=True)
    for k, (ax, a, (line_x, line_y)) in enumerate(zip(axes, d.axes, d.line)):
        first = k == 0
        ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
        if len(a.x):
            ax.plot(line_x, line_y, color=COLOURS[k], lw=0.8, alpha=0.5, zorder=1)
            ax.errorbar(
                a.x[a.sure], a.y[a.sure], yerr=a.err[a.sure], fmt="o", ms=MARKS["sure"][0], color=COLOURS[k], ecolor="0.35",
                elinewidth=0.9, capsize=2, zorder=3, label=LABELS["sure"] if first and a.sure.any() else None,
            )  # fmt: skip
            if (~a.sure).any():
                ax.plot(
                    a.x[~a.sure], a.y[~a.sure], "o", ms=MARKS["unsure"][0], mfc="none", mec="red", mew=MARKS["unsure"][1], zorder=4,
                    label=LABELS["unsure"] if first else None,
                )  # fmt: skip
        if d.reference_at is not None:
            ax.plot([d.reference_at], [0.0], "*", ms=MARKS["reference"][0], color="black", zorder=5,
                    label=d.label("reference") if first else None)  # fmt: skip
        if d.failed:  # on the axis's bottom edge, not at a value: a failed round has none
            ax.plot(d.failed, [0.04] * len(d.failed), "x", ms=MARKS["failed"][0], mew=MARKS["failed"][1], color="0.3", zorder=5,
                    transform=ax.get_xaxis_transform(), clip_on=False,
                    label=LABELS["failed"] if first else None)  # fmt: skip
        ax.set_ylabel(f"d{AXES[k]} ({d.unit})")
        ax.grid(True, axis="y", lw=0.4, color="0.9")
    axes[-1].set_xticks(range(len(names)))
    axes[-1].set_xticklabels(names, rotation=60 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                             fontsize=8)  # fmt: skip
    axes[-1].set_xlim(-0.6, len(names) - 0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # a row of its own under the title, wrapped on narrow figures
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.01, 0.955), fontsize=8, frameon=False,
                   ncol=d.legend_columns)  # fmt: skip
    fig.suptitle(d.title, x=0.01, y=0.99, ha="left", fontsize=11)
    fig.subplots_adjust(**d.frame())
    return fig


def drift_png(rows: list[DriftRow], *, reference: str = "", title: str = "", place_reference: bool = True) -> bytes:
    """PNG bytes of the drift plot: :func:`drift_figure`'s layout at 100 dpi, drawn with Pillow.

    The same panels, marks, tick labels, legend and title as the matplotlib figure,
    drawn at twice the size and reduced (smooth circles and lines). Deterministic.
    """
    from .figures import _png_bytes

    d = drift_data(rows, reference=reference, title=title, place_reference=place_reference)
    return _png_bytes(np.asarray(_paint(d, layout(d))))


@dataclass
class Layout:
    """Where :func:`drift_png` draws, in output pixels: each panel's box and y range."""

    size: tuple[int, int]  # (width, height)
    boxes: list[tuple[float, float, float, float]]  # (left, top, right, bottom) of the z, y, x panels
    ylims: list[tuple[float, float]]  # (low, high) of each panel, in the plot's unit
    yticks: list[np.ndarray]
    n: int  # rounds on the x axis

    def px(self, k: int, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Output pixel (column, row) of the point (place x, value y) in panel ``k``."""
        left, top, right, bottom = self.boxes[k]
        lo, hi = self.ylims[k]
        u = left + (np.asarray(x, dtype=float) + 0.6) / (self.n + 0.2) * (right - left)  # x limits -0.6, n - 0.4
        v = bottom - (np.asarray(y, dtype=float) - lo) / (hi - lo) * (bottom - top)
        return u, v


DPI = 100
PT = DPI / 72  # px per point


def layout(d: DriftData) -> Layout:
    """The boxes and y ranges of :func:`drift_png`, as :func:`drift_figure` places them."""
    w, h = round(d.width_in * DPI), round(6.4 * DPI)
    f = d.frame()
    left, right = f["left"] * w, f["right"] * w
    panel = (f["top"] - f["bottom"]) / (3 + 2 * f["hspace"]) * h  # hspace: of a panel's height, between panels
    boxes, ylims, yticks = [], [], []
    for k, a in enumerate(d.axes):
        y0 = (1 - f["top"]) * h + k * panel * (1 + f["hspace"])
        boxes.append((left, y0, right, y0 + panel))
        values = np.concatenate([[0.0], a.y - a.err, a.y + a.err])  # the zero line and the star are drawn too
        values = values[np.isfinite(values)]
        lo, hi = float(values.min()), float(values.max())
        if hi - lo < 1e-12:  # all at one value (all zero): matplotlib widens by 5 % of it, or 0.05
            e = 0.05 * abs(lo) if abs(lo) > 1e-12 else 0.05
            lo, hi = lo - e, hi + e
        margin = 0.05 * (hi - lo)  # matplotlib's default margins
        lo, hi = lo - margin, hi + margin
        ylims.append((lo, hi))
        yticks.append(_ticks(lo, hi))
    return Layout((w, h), boxes, ylims, yticks, len(d.names))


def _ticks(lo: float, hi: float, most: int = 5) -> np.ndarray:
    """Round values inside [lo, hi]: the finest of 1, 2, 2.5, 5 x 10^k that gives at most ``most``."""
    span = hi - lo
    base = 10.0 ** np.floor(np.log10(span / most))
    for m in (1, 2, 2.5, 5, 10, 20):
        step = m * base
        ticks = np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step
        if len(ticks) <= most:
            return np.round(ticks, 12) + 0.0  # + 0.0: no "-0"
    return np.array([lo, hi])


def _tick_label(v: float, ticks: np.ndarray) -> str:
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = 0
    while decimals < 15 and abs(round(step, decimals) - step) > 1e-6 * abs(step):
        decimals += 1
    return f"{v:.{decimals}f}"


def _rgb(colour: str | float) -> tuple[int, int, int]:
    if isinstance(colour, float):  # matplotlib's grey levels ("0.35")
        g = round(colour * 255)
        return (g, g, g)
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _faded(colour: str, alpha: float) -> tuple[int, int, int]:
    """``colour`` at ``alpha`` over white (the line joining the points)."""
    return tuple(round(c * alpha + 255 * (1 - alpha)) for c in _rgb(colour))  # type: ignore[return-value]


def _paint(d: DriftData, lay: Layout, scale: int = 2):
    """The drift plot as a Pillow RGB image, drawn at ``scale`` times the size and reduced."""
    from PIL import Image, ImageDraw

    from .figures import _font

    s = scale
    w, h = lay.size
    img = Image.new("RGB", (w * s, h * s), "white")
    draw = ImageDraw.Draw(img)

    def font(pt: float, text: str):
        return _font(round(pt * PT * s), text)

    def lw(pt: float) -> int:
        return max(1, round(pt * PT * s))

    black, grey = (0, 0, 0), _rgb(0.35)
    for k, (a, box, ticks, (line_x, line_y)) in enumerate(zip(d.axes, lay.boxes, lay.yticks, d.line)):
        left, top, right, bottom = (c * s for c in box)

        def at(x, y, k=k):
            u, v = lay.px(k, x, y)
            return u * s, v * s

        for t in ticks:  # grid, then the zero line, under the data
            v = at(0, t)[1]
            draw.line([(left, v), (right, v)], fill=_rgb(0.9), width=lw(0.4))
        v0 = at(0, 0.0)[1]
        draw.line([(left, v0), (right, v0)], fill=_rgb(0.8), width=lw(0.8))
        if len(line_x) > 1:
            u, v = at(line_x, line_y)
            draw.line(list(zip(u, v)), fill=_faded(COLOURS[k], 0.5), width=lw(0.8), joint="curve")
        u, v = at(a.x, a.y)
        top_v, bottom_v = at(a.x, a.y + a.err)[1], at(a.x, a.y - a.err)[1]
        cap = 2 * PT * s
        for i in np.flatnonzero(a.sure):
            if a.err[i] > 0:  # the uncertainty bar and its caps
                draw.line([(u[i], top_v[i]), (u[i], bottom_v[i])], fill=grey, width=lw(0.9))
                for vv in (top_v[i], bottom_v[i]):
                    draw.line([(u[i] - cap, vv), (u[i] + cap, vv)], fill=grey, width=lw(0.9))
            _mark(draw, "sure", u[i], v[i], s, COLOURS[k])
        for i in np.flatnonzero(~a.sure):
            _mark(draw, "unsure", u[i], v[i], s)
        if d.reference_at is not None:
            _mark(draw, "reference", *at(d.reference_at, 0.0), s)
        for i in d.failed:  # on the bottom edge, as drift_figure's axis-fraction 0.04
            _mark(draw, "failed", at(i, 0)[0], bottom - 0.04 * (bottom - top), s)
        draw.rectangle([left, top, right, bottom], outline=black, width=lw(0.8))
        tick_font = font(10, "0")
        for t in ticks:  # the value labels left of 3.5-pt ticks
            v = at(0, t)[1]
            draw.line([(left - 3.5 * PT * s, v), (left, v)], fill=black, width=lw(0.8))
            draw.text((left - 5.5 * PT * s, v), _tick_label(t, ticks), fill=black, font=tick_font, anchor="rm")
        label = f"d{AXES[k]} ({d.unit})"
        _vertical_text(img, label, font(10, label), left - 5.5 * PT * s - _widest(tick_font, ticks) - 6 * s,
                       (top + bottom) / 2)  # fmt: skip
    # the x axis: a tick under every round on each panel, the names under the bottom one
    last = [c * s for c in lay.boxes[-1]]
    rotate = len(d.names) > 6
    name_font_pt = 8
    for i, name in enumerate(d.names):
        u = lay.px(2, i, 0)[0] * s
        for box in lay.boxes:
            b = box[3] * s
            draw.line([(u, b), (u, b + 3.5 * PT * s)], fill=black, width=lw(0.8))
        f = font(name_font_pt, name)
        y = last[3] + 5.5 * PT * s
        if rotate:
            _rotated_text(img, name, f, u, y)
        else:
            draw.text((u, y), name, fill=black, font=f, anchor="ma")
    # the legend's row(s) under the title, then the title
    keys = d.legend()
    ncol = d.legend_columns
    nrows = -(-len(keys) // ncol) if keys else 0
    x0, y0 = 0.01 * w * s, (1 - 0.955) * h * s + 8 * PT * s
    fonts = [font(8, d.label(key)) for key in keys]
    # filled column by column, as matplotlib's legend; a column as wide as its widest entry
    widths = [12 * PT * s + f.getlength(d.label(key)) + 18 * PT * s for key, f in zip(keys, fonts)]
    col_x = [x0]
    for c in range(1, ncol):
        col_x.append(col_x[-1] + max(widths[(c - 1) * nrows : c * nrows], default=0.0))
    for j, (key, f) in enumerate(zip(keys, fonts)):
        cx = col_x[j // nrows] + 10 * PT * s
        cy = y0 + (j % nrows) * 14 * PT * s
        if key == "sure":  # the error bar's handle: a bar through the dot
            draw.line([(cx, cy - 4 * PT * s), (cx, cy + 4 * PT * s)], fill=grey, width=lw(0.9))
        _mark(draw, key, cx, cy, s, COLOURS[0])
        draw.text((cx + 12 * PT * s, cy), d.label(key), fill=black, font=f, anchor="lm")
    draw.text((0.01 * w * s, 0.01 * h * s), d.title, fill=black, font=font(11, d.title), anchor="la")
    return img.reduce(s)


def _mark(draw, key: str, u, v, scale: int, colour: str = COLOURS[0]) -> None:
    """The mark of ``key`` (see MARKS) centred at (u, v), drawn as drift_figure draws it: a
    dot of ``colour``, an open red ring, a black five-pointed star (inner radius 0.38 of the
    outer, matplotlib's "*"), a grey cross."""
    size, edge = MARKS[key]
    r = size / 2 * PT * scale
    width = max(1, round(edge * PT * scale))
    if key in ("sure", "unsure"):
        fill, outline = (_rgb(colour), None) if key == "sure" else (None, (255, 0, 0))
        draw.ellipse([u - r, v - r, u + r, v + r], fill=fill, outline=outline, width=width)
    elif key == "reference":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.381966 * r)
        draw.polygon(list(zip(u + radii * np.cos(angles), v - radii * np.sin(angles))), fill=(0, 0, 0))
    else:
        for dv in (r, -r):
            draw.line([(u - r, v - dv), (u + r, v + dv)], fill=_rgb(0.3), width=width)


def _widest(font, ticks) -> float:
    return max((font.getlength(_tick_label(t, ticks)) for t in ticks), default=0.0)


def _text_image(text: str, font):
    """``text`` in black on a transparent tile (a mask to paste)."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    tile = Image.new("L", (int(right - min(left, 0)) + 2, int(bottom - min(top, 0)) + 2), 0)
    ImageDraw.Draw(tile).text((-min(left, 0) + 1, -min(top, 0) + 1), text, fill=255, font=font)
    return tile


def _vertical_text(img, text: str, font, right: float, middle: float) -> None:
    """``text`` turned 90 degrees anticlockwise, its box's right edge at ``right``, centred on ``middle``."""
    tile = _text_image(text, font).rotate(90, expand=True)
    img.paste((0, 0, 0), (round(right - tile.width), round(middle - tile.height / 2)), tile)


def _rotated_text(img, text: str, font, u: float, top: float) -> None:
    """``text`` turned 60 degrees anticlockwise, ending at (``u``, ``top``): a tick label under
    its tick, as matplotlib's rotation=60, ha="right" (the box's top right corner at the tick)."""
    tile = _text_image(text, font).rotate(60, expand=True, resample=3)
    img.paste((0, 0, 0), (round(u - tile.width), round(top)), tile)
