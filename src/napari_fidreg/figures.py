"""Figures drawn from the engine's numbers (matplotlib, off-screen): the QC image.

Kept outside ``core/`` so that the engine never imports a plotting library;
matplotlib is imported only when a figure is drawn. The figures are drawn on a
``Figure`` of their own with the Agg canvas, never through ``pyplot`` or
``matplotlib.use``, so drawing one changes nothing for the rest of the process
(napari's Qt canvas included).
"""

from __future__ import annotations

import io

import numpy as np

from .core.qc import alignment_score, overlay_rgb, stretch

QC_COLUMNS = ("reference", "moving (before)", "moving (after)", "overlay before", "overlay after")
GAP = 6  # px between panels


def qc_png(reference: dict, before: dict, after: dict, *, title: str = "", voxel_size=None) -> bytes:
    """PNG bytes: XY and XZ max projections of reference, moving before and after, and overlays.

    ``reference``, ``before``, ``after`` are :func:`napari_fidreg.core.qc.projections`
    dicts. Rows: XY, XZ. Columns: reference, moving (before), moving (after),
    overlay before, overlay after (reference green, moving magenta, white where
    they agree). XZ panels are stretched in z by the voxel aspect when known.

    The panels are laid out as one image (numpy) in one axes: ten axes cost 0.1 s to
    make and draw, a third of the QC image's time on a small stack.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    aspect = 1.0 if voxel_size is None else float(voxel_size[0]) / float(voxel_size[2])
    score_b, score_a = alignment_score(reference, before), alignment_score(reference, after)
    rows = [_row(reference, before, after, "xy", 1.0), _row(reference, before, after, "xz", aspect)]
    mosaic = _stack(rows, axis=0)
    h, w = mosaic.shape[:2]
    width_in = 15.0
    img_h_in = width_in * h / w
    top_in, left_in = 0.75, 0.3
    fig = Figure(figsize=(width_in + left_in, img_h_in + top_in), dpi=100)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    ax = fig.add_axes(
        (left_in / (width_in + left_in), 0, width_in / (width_in + left_in), img_h_in / (img_h_in + top_in))
    )
    ax.imshow(mosaic, interpolation="antialiased", aspect="auto")
    ax.set_axis_off()
    panel_w = (w - 4 * GAP) / 5
    to_fig_x = lambda px: (left_in + width_in * px / w) / (width_in + left_in)  # noqa: E731
    y_titles = img_h_in / (img_h_in + top_in) + 0.05 / (img_h_in + top_in)
    for col, name in enumerate(QC_COLUMNS):
        fig.text(to_fig_x(col * (panel_w + GAP) + panel_w / 2), y_titles, name, ha="center", va="bottom", fontsize=10)
    heights = [r.shape[0] for r in rows]
    for label, y0, hh in (("XY (max over z)", 0, heights[0]), ("XZ (max over y)", heights[0] + GAP, heights[1])):
        y = 1 - (y0 + hh / 2) / h
        fig.text(0.5 * left_in / (width_in + left_in), y * img_h_in / (img_h_in + top_in), label, rotation=90,
                 ha="center", va="center", fontsize=9)  # fmt: skip
    fig.text(
        0.5, 1 - 0.25 / (img_h_in + top_in),
        f"{title}    alignment score (cleaned projections) before {score_b:.3f} -> after {score_a:.3f}",
        ha="center", va="center", fontsize=11,
    )  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _row(reference: dict, before: dict, after: dict, key: str, aspect: float) -> np.ndarray:
    """One row of the mosaic: the three projections (grey) and the two overlays, RGB uint8."""
    r, b, a = reference[key], before[key], after[key]
    shape = tuple(min(x) for x in zip(r.shape, b.shape, a.shape))
    r, b, a = (p[: shape[0], : shape[1]] for p in (r, b, a))
    grey = [np.repeat((stretch(p) * 255).astype(np.uint8)[..., None], 3, axis=2) for p in (r, b, a)]
    panels = [*grey, overlay_rgb(r, b), overlay_rgb(r, a)]
    if aspect != 1.0:  # stretch z by the voxel aspect (nearest rows)
        n = max(1, int(round(shape[0] * aspect)))
        idx = np.minimum((np.arange(n) / aspect).astype(int), shape[0] - 1)
        panels = [p[idx] for p in panels]
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
