"""The drift plot of a series: dz, dy, dx per round, with uncertainty bars (matplotlib, off-screen).

Outside ``core/`` (the engine never imports a plotting library), drawn on a ``Figure``
of its own with the Agg canvas like :mod:`.figures`, so drawing it changes nothing for
the rest of the process. The CLI writes it as ``drift.png``; the napari dock shows the
same figure.
"""

from __future__ import annotations

import io

import numpy as np

from .core.drift import DriftRow

AXES = ("z", "y", "x")
COLOURS = ("#1f77b4", "#2ca02c", "#d62728")


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

    from .core.drift import natural_key

    names = [r.moving for r in rows]
    if reference and place_reference and reference not in names:
        names = sorted([*names, reference], key=natural_key)
    pos = {n: i for i, n in enumerate(names)}
    regs = [r.registration for r in rows if r.registration is not None]
    in_um = bool(regs) and all(r.voxel_size is not None for r in regs)
    unit = "µm" if in_um else "px"
    width = min(max(6.0, 0.42 * len(names) + 2.5), 16.0)
    fig = figure if figure is not None else Figure(figsize=(width, 6.4), dpi=100)
    fig.clear()
    axes = fig.subplots(3, 1, sharex=True)
    for k, ax in enumerate(axes):
        scale_of = (lambda reg, k=k: reg.voxel_size[k]) if in_um else (lambda reg: 1.0)
        ok = [(pos[r.moving], r.registration) for r in rows if r.registration is not None]
        x = np.array([i for i, _ in ok], dtype=float)
        y = np.array([reg.global_shift[k] * scale_of(reg) for _, reg in ok])
        err = np.array(
            [3 * reg.global_uncertainty[k] * scale_of(reg) if reg.global_uncertainty else 0.0 for _, reg in ok]
        )
        sure = np.array([reg.global_confident for _, reg in ok], dtype=bool)
        ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
        if len(ok):
            line_x, line_y = x, y
            if reference and reference in pos:  # the reference round is at 0 by definition
                line_x, line_y = np.append(x, pos[reference]), np.append(y, 0.0)
            order = np.argsort(line_x, kind="stable")
            ax.plot(line_x[order], line_y[order], color=COLOURS[k], lw=0.8, alpha=0.5, zorder=1)
            ax.errorbar(
                x[sure], y[sure], yerr=err[sure], fmt="o", ms=4, color=COLOURS[k], ecolor="0.35",
                elinewidth=0.9, capsize=2, zorder=3, label="shift ± 3 × uncertainty" if k == 0 else None,
            )  # fmt: skip
            if (~sure).any():
                ax.plot(
                    x[~sure], y[~sure], "o", ms=7, mfc="none", mec="red", mew=1.5, zorder=4,
                    label="low confidence: check by eye" if k == 0 else None,
                )  # fmt: skip
        if reference and reference in pos:
            ax.plot([pos[reference]], [0.0], "*", ms=10, color="black", zorder=5,
                    label=f"reference ({reference})" if k == 0 else None)  # fmt: skip
        failed = [pos[r.moving] for r in rows if r.registration is None]
        if failed:  # on the axis's bottom edge, not at a value: a failed round has none
            ax.plot(failed, [0.04] * len(failed), "x", ms=8, mew=2, color="0.3", zorder=5,
                    transform=ax.get_xaxis_transform(), clip_on=False,
                    label="failed (see drift.csv)" if k == 0 else None)  # fmt: skip
        ax.set_ylabel(f"d{AXES[k]} ({unit})")
        ax.grid(True, axis="y", lw=0.4, color="0.9")
    axes[-1].set_xticks(range(len(names)))
    axes[-1].set_xticklabels(names, rotation=60 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                             fontsize=8)  # fmt: skip
    axes[-1].set_xlim(-0.6, len(names) - 0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # a row of its own under the title, wrapped on narrow figures
        ncol = len(handles) if width >= 10 else 2
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.01, 0.955), fontsize=8, frameon=False,
                   ncol=ncol)  # fmt: skip
    onto = f" onto {reference}" if reference else ""
    text = f"shift to apply to each of {len(rows)} rounds{onto} ({unit})"
    fig.suptitle(f"{title}: {text}" if title else text[0].upper() + text[1:], x=0.01, y=0.99, ha="left", fontsize=11)
    top = 0.86 if handles and len(handles) > 2 and width < 10 else 0.89
    fig.subplots_adjust(
        left=max(0.1, 1.0 / width), right=0.98, top=top, bottom=0.2 if len(names) > 6 else 0.1, hspace=0.12
    )
    return fig


def drift_png(rows: list[DriftRow], *, reference: str = "", title: str = "", place_reference: bool = True) -> bytes:
    """PNG bytes of :func:`drift_figure`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = drift_figure(rows, reference=reference, title=title, place_reference=place_reference)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
