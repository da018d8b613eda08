"""Figures drawn from the engine's numbers (matplotlib, off-screen): the QC image.

Kept outside ``core/`` so that the engine never imports a plotting library;
matplotlib is imported only when a figure is drawn. The figures are drawn on a
``Figure`` of their own with the Agg canvas, never through ``pyplot`` or
``matplotlib.use``, so drawing one changes nothing for the rest of the process
(napari's Qt canvas included).
"""

from __future__ import annotations

import io

from .core.qc import alignment_score, overlay_rgb, stretch

QC_COLUMNS = ("reference", "moving (before)", "moving (after)", "overlay before", "overlay after")


def qc_png(reference: dict, before: dict, after: dict, *, title: str = "", voxel_size=None) -> bytes:
    """PNG bytes: XY and XZ max projections of reference, moving before and after, and overlays.

    ``reference``, ``before``, ``after`` are :func:`napari_fidreg.core.qc.projections`
    dicts. Rows: XY, XZ. Columns: reference, moving (before), moving (after),
    overlay before, overlay after (reference green, moving magenta, white where
    they agree). XZ panels are stretched in z by the voxel aspect when known.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    aspect = 1.0 if voxel_size is None else float(voxel_size[0]) / float(voxel_size[2])
    score_b, score_a = alignment_score(reference, before), alignment_score(reference, after)
    ny, nx = reference["xy"].shape
    nz_disp = reference["xz"].shape[0] * aspect
    width = 15
    height = (width / 5) * (ny + nz_disp) / nx + 0.9
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    # fixed margins rather than bbox_inches="tight", which draws the figure twice
    fig.subplots_adjust(left=0.025, right=0.995, bottom=0.1 / height, top=1 - 0.75 / height)
    grid = fig.add_gridspec(2, 5, height_ratios=[ny, max(nz_disp, 1)], hspace=0.05, wspace=0.03)
    for row, key in enumerate(("xy", "xz")):
        r, b, a = reference[key], before[key], after[key]
        imgs = [stretch(r), stretch(b), stretch(a), overlay_rgb(r, b), overlay_rgb(r, a)]
        for col, img in enumerate(imgs):
            ax = fig.add_subplot(grid[row, col])
            kw = {"cmap": "gray"} if img.ndim == 2 else {}
            ax.imshow(img, interpolation="nearest", aspect=aspect if key == "xz" else 1.0, **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(QC_COLUMNS[col], fontsize=10)
            if col == 0:
                ax.set_ylabel("XY (max over z)" if key == "xy" else "XZ (max over y)", fontsize=9)
    fig.suptitle(
        f"{title}    alignment score (cleaned projections) before {score_b:.3f} -> after {score_a:.3f}", fontsize=11
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
