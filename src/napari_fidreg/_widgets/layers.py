"""Registration results -> napari layer data tuples (no Qt, no viewer: easy to test).

Layers keep the reference layer's scale and translate, so everything stays
aligned in world coordinates; the corrected stack is resampled onto the
reference's pixel grid. The QC projections are figures in the QC dock, not layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.block_grid import BY_HAND
from ..core.result import Registration
from ..figures import FILLED_GREY, rejected_colour

# Names of every layer the widget creates, so that a re-run replaces them.
PREFIX = "fidreg: "
VECTOR_GAIN = 10.0  # block arrows are drawn this many times longer than the shift
ARROWS = f"{PREFIX}block shifts"  # the name of the arrows layer starts so (the gain follows)

SUMMARY_HELP = (
    "shift: what to apply to the moving stack (dz, dy, dx), px, and µm when the voxel size is known.\n"
    "± : standard uncertainty of the shift (three times it bounds the error in ~95 % of cases).\n"
    "score: normalized correlation at the peak, -1..1 (bead pairs ~0.6-0.97; dim, sparse beads can "
    "score 0.01-0.1 with a clear peak).\n"
    "sharpness: peak height over the correlation's spread (noise 4-7, a few fiducials 15 and more).\n"
    "LOW CONFIDENCE: the shift could not be confirmed; check the overlay by eye."
)


@dataclass
class Geometry:
    """World placement of the reference: per-axis scale and translate (z, y, x)."""

    scale: tuple[float, float, float]
    translate: tuple[float, float, float]

    @classmethod
    def of(cls, layer) -> Geometry:
        """The placement of a napari layer's last three axes."""
        return cls(tuple(float(s) for s in layer.scale[-3:]), tuple(float(t) for t in layer.translate[-3:]))


def registered_name(moving_name: str) -> str:
    return f"{moving_name} registered"


def corrected_layer(data: np.ndarray, moving_name: str, geom: Geometry, colormap: str = "magenta", contrast=None):
    meta = {
        "name": registered_name(moving_name),
        "scale": geom.scale,
        "translate": geom.translate,
        "colormap": colormap,
        "blending": "additive",
        "metadata": {"fidreg_role": "registered"},
    }
    if contrast is not None:
        meta["contrast_limits"] = contrast
    return (data, meta, "image")


def update_image(layer, array, meta: dict) -> None:
    """An image layer already in the viewer made as ``viewer.add_image(array, **meta)`` would make
    a new one (its contrast from the data unless ``meta`` gives it): the docks' registered layers
    take a new run's data in place. Removed and added again, a layer crashed the next GL paint
    (vispy's glDrawArrays, Mesa under Xvfb), and a removal costs napari ~0.25 s besides."""
    for key in ("scale", "translate"):
        if key in meta:
            setattr(layer, key, meta[key])
    layer.data = array
    if "contrast_limits" not in meta:
        layer.reset_contrast_limits()
    for key in ("contrast_limits", "colormap", "blending", "metadata"):
        if key in meta:
            setattr(layer, key, meta[key])
    layer.visible = True


def block_layers(reg: Registration, geom: Geometry) -> list[tuple]:
    """Block shifts as arrows (gain ``VECTOR_GAIN``, coloured by score on a fixed 0-1 viridis scale,
    which the QC dock's legend explains; grey on rejected blocks, whose arrow is the shift filled
    from their neighbours, not one they measured) and rejected blocks as crosses: red when the
    engine rejected them, orange when the user did.

    Full-depth blocks (one z level, the usual case) are drawn as 2D (y, x) layers, which
    napari shows on every plane; their centres sit at half-integer z, where 3D vectors
    fade out of every plane. With z-blocks each arrow sits on its block's middle plane.
    The dz of each block is a feature of the layer (and in the table).

    The crosses are a vectors layer too, two strokes a block (:func:`crosses`): a points layer
    drew them as its "x" symbol, but napari gives every points layer a text visual, whose
    first glyphs cost 0.1-0.19 s of the GUI thread when the result's layers were first drawn
    (the longest stall of a napari run at 1024^2).
    """
    if not reg.has_blocks:
        return []
    centres = np.array([b.centre for b in reg.blocks])
    shifts = np.array([b.shift for b in reg.blocks])
    features = {
        "score": np.array([b.score for b in reg.blocks]),
        "sharpness": np.array([b.sharpness for b in reg.blocks]),
        "inlier": np.array([b.inlier for b in reg.blocks]),
        "dz": shifts[:, 0],
        "dy": shifts[:, 1],
        "dx": shifts[:, 2],
    }
    if reg.grid_shape[0] == 1:  # full depth: 2D layers, on every plane
        axes, scale, translate = slice(1, 3), geom.scale[1:], geom.translate[1:]
    else:
        centres[:, 0] = np.floor(centres[:, 0])
        axes, scale, translate = slice(0, 3), geom.scale, geom.translate
    vectors = np.stack([centres[:, axes], shifts[:, axes] * VECTOR_GAIN], axis=1)
    common = {"scale": scale, "translate": translate}
    strokes, colours = crosses(reg, centres[:, axes])
    return [
        (
            vectors,
            {
                **common,
                "name": f"{ARROWS} (x{VECTOR_GAIN:g})",
                "features": features,
                "edge_color": arrow_colours(reg),
                "edge_width": 3,
            },
            "vectors",
        ),
        (
            strokes,
            {
                **common,
                "name": CROSSES,
                "edge_color": colours if len(colours) else "red",
                "edge_width": CROSS_WIDTH,
                "vector_style": "line",
            },
            "vectors",
        ),
    ]


def arrow_colours(reg: Registration) -> np.ndarray:
    """RGBA a block: its score on viridis over a fixed 0-1 scale (one legend holds for every
    run), :data:`~napari_fidreg.figures.FILLED_GREY` where the block is rejected (a user read a
    rejected block's arrow, under its cross, as a shift it had measured)."""
    from napari.utils.colormaps import ensure_colormap

    scores = np.clip([b.score for b in reg.blocks], 0.0, 1.0)
    colours = np.asarray(ensure_colormap("viridis").map(scores), np.float64).reshape(-1, 4)
    colours[[not b.inlier for b in reg.blocks]] = FILLED_GREY
    return colours


CROSSES = f"{PREFIX}rejected blocks"
CROSS_WIDTH = 3  # px of the data, like the arrows'
CROSS_SPAN = 1 / 3  # each stroke spans this fraction of the block's smaller y/x side


def crosses(reg: Registration, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crosses on ``reg``'s rejected blocks as napari vectors, two strokes a block (its two
    diagonals, in the y/x plane through ``centres``, the blocks' centres in the layer's axes),
    and their colours (RGBA, a row a stroke): (2 n, 2, ndim) and (2 n, 4)."""
    out = np.array([not b.inlier for b in reg.blocks])
    ndim = centres.shape[1]
    if not out.any():
        return np.zeros((0, 2, ndim)), np.zeros((0, 4))
    rejected = [b for b, o in zip(reg.blocks, out) if o]
    half = np.array([min(b.size[1:]) * CROSS_SPAN / 2 for b in rejected])[:, None]
    down, up = np.zeros(ndim), np.zeros(ndim)  # the two diagonals: down and up to the right
    down[-2:], up[-2:] = (1.0, 1.0), (-1.0, 1.0)
    mid = centres[out]
    starts = np.concatenate([mid - half * down, mid - half * up])
    projections = np.concatenate([2 * half * down, 2 * half * up])
    colour = np.array([rejected_colour(b) for b in rejected])
    return np.stack([starts, projections], axis=1), np.concatenate([colour, colour])


def update_block_layers(viewer, reg: Registration, geom: Geometry) -> bool:
    """Show ``reg``'s block arrows and crosses in the layers already there, in place: removing
    a layer costs napari ~0.25 s of scene-graph clean-up on the GUI thread. False (nothing
    changed) when those layers are not there as :func:`block_layers` would make them."""
    from napari.layers import Vectors

    new = block_layers(reg, geom)
    if len(new) != 2 or not all(meta["name"] in viewer.layers for _, meta, _ in new):
        return False
    (vectors, vmeta, _), (strokes, cmeta, _) = new
    arrows, cross = viewer.layers[vmeta["name"]], viewer.layers[cmeta["name"]]
    if not isinstance(cross, Vectors) or np.shape(arrows.data) != vectors.shape or cross.ndim != strokes.shape[2]:
        return False
    arrows.data = vectors
    arrows.features = vmeta["features"]
    arrows.edge_color = vmeta["edge_color"]
    cross.data = strokes
    if len(strokes):
        cross.edge_color = cmeta["edge_color"]
    return True


def result_text(reg: Registration) -> str:
    """The dock's result text: the registration's summary, and the region it was measured on."""
    lines = reg.summary().split("\n")
    if reg.subvolume is None:
        region = "  region: the whole stack"
    else:
        (z0, z1), (y0, y1), (x0, x1) = reg.subvolume
        region = f"  region: sub-volume z {z0}-{z1}, y {y0}-{y1}, x {x0}-{x1} (reference px, end excluded)"
    return "\n".join([lines[0], region, *lines[1:]])


KEPT = "kept"  # the block table's last column: yes, no (rejected by the engine), no (hand)


def block_table(reg: Registration) -> dict[str, list]:
    """Columns for the dock's table, as text in one format per column (fixed decimals: Qt shows
    raw floats as 0.072 beside 7.200e-02), short enough that all seven fit a dock's width (the
    reasons, up to 70 characters, are said under the table: :func:`rejection_text`)."""
    cols: dict[str, list] = {k: [] for k in ("block", "dz", "dy", "dx", "score", "sharp.", KEPT)}
    for b in reg.blocks:
        cols["block"].append(block_name(b))
        for k, v in zip(("dz", "dy", "dx"), b.shift):
            cols[k].append(f"{v:+.3f}")
        cols["score"].append(f"{b.score:.3f}")
        cols["sharp."].append(f"{b.sharpness:.1f}")
        cols[KEPT].append("yes" if b.inlier else "no (hand)" if b.reason == BY_HAND else "no")
    return cols


def rejected_tooltip(block) -> str:
    """A rejected row's tooltip: why, and what it measured (the row shows the shift filled in
    from its neighbours, the one the correction uses)."""
    lines = [block.reason]
    if block.measured_shift is not None:
        measured = ", ".join(f"{v:+.3f}" for v in block.measured_shift)
        lines.append(f"measured (dz, dy, dx) = ({measured}); shown: the shift used instead (from its neighbours, "
                     "or the global shift when no block is kept)")  # fmt: skip
    return "\n".join(lines)


def block_name(block) -> str:
    """A block as the table's first column names it: its grid index z,y,x."""
    return "{},{},{}".format(*block.index)


def rejection_text(reg: Registration, rows=(), *, limit: int = 3) -> str:
    """Why blocks were rejected, a line a block: those among ``rows`` (positions in
    ``reg.blocks``, the table's selection) when any of them is rejected, else every rejected
    block; the first ``limit``, then how many more. Empty when no block is rejected."""
    rejected = [i for i, b in enumerate(reg.blocks) if not b.inlier]
    out = set(rejected)  # once: a 2048^2 grid of 16-px blocks has 16384 rows to select
    chosen = [i for i in sorted(set(rows)) if i in out] or rejected
    lines = [f"block {block_name(reg.blocks[i])}: {reg.blocks[i].reason}" for i in chosen[:limit]]
    if len(chosen) > limit:
        lines.append(f"… and {len(chosen) - limit} more (select their rows to see why)")
    return "\n".join(lines)


def source_file(layer) -> str:
    """The file a layer was opened from, as an absolute path ("" when it was made in memory:
    a sample, a script's array, a computed layer)."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return str(Path(path).resolve()) if path else ""
