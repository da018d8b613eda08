"""Registration results -> napari layer data tuples (no Qt, no viewer: easy to test).

Layers keep the reference layer's scale and translate, so everything stays
aligned in world coordinates; the corrected stack is resampled onto the
reference's pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.qc import overlay_rgb
from ..core.result import Registration

# Names of every layer the widget creates, so that a re-run replaces them.
PREFIX = "fidreg: "
VECTOR_GAIN = 10.0  # block arrows are drawn this many times longer than the shift

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


def projection_layers(proj: dict[str, dict[str, np.ndarray]], geom: Geometry, shape_zyx, bin: int = 1) -> list[tuple]:
    """QC panels: for XY, XZ and YZ, 'reference | before | after' side by side, then
    the overlays before and after (reference green, moving magenta), placed to the
    right of the volume in world coordinates.

    ``proj`` maps 'reference', 'before', 'after' to :func:`core.qc.projections` dicts.
    """
    sz, sy, sx = geom.scale
    tz, ty, tx = geom.translate
    nz, ny, nx = shape_zyx
    k = bin  # stack pixels per projection pixel in y/x
    pixel = {"xy": (sy * k, sx * k), "xz": (sz, sx * k), "yz": (sz, sy * k)}
    gap_px = 8
    x0 = tx + (nx + 2 * gap_px * k) * sx
    y = ty
    layers = []
    for key in ("xy", "xz", "yz"):
        r, b, a = (proj[k][key] for k in ("reference", "before", "after"))
        h = min(r.shape[0], b.shape[0], a.shape[0])
        w = min(r.shape[1], b.shape[1], a.shape[1])
        r, b, a = r[:h, :w], b[:h, :w], a[:h, :w]
        sep = np.zeros((h, gap_px), np.float32)
        strip = np.concatenate([r, sep, b, sep, a], axis=1)
        ps = pixel[key]
        hi = float(np.percentile(strip, 99.9)) or 1.0
        layers.append(
            (
                strip,
                {
                    "name": f"{PREFIX}{key.upper()} max projection: reference | before | after",
                    "scale": ps,
                    "translate": (y, x0),
                    "colormap": "gray",
                    "contrast_limits": (0.0, hi),
                },
                "image",
            )
        )
        ov = np.concatenate([overlay_rgb(r, b), np.zeros((h, gap_px, 3), np.uint8), overlay_rgb(r, a)], axis=1)
        layers.append(
            (
                ov,
                {
                    "name": f"{PREFIX}{key.upper()} overlay before | after",
                    "scale": ps,
                    "translate": (y, x0 + (3 * w + 3 * gap_px) * ps[1]),
                    "rgb": True,
                },
                "image",
            )
        )
        y += (h + 2 * gap_px) * ps[0]
    return layers


def block_layers(reg: Registration, geom: Geometry) -> list[tuple]:
    """Block shifts as arrows (gain ``VECTOR_GAIN``, coloured by score) and rejected blocks as red crosses.

    Full-depth blocks (one z level, the usual case) are drawn as 2D (y, x) layers, which
    napari shows on every plane; their centres sit at half-integer z, where 3D vectors
    fade out of every plane. With z-blocks each arrow sits on its block's middle plane.
    The dz of each block is a feature of the layer (and in the table).
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
    rejected = centres[~features["inlier"]][:, axes]
    return [
        (
            vectors,
            {
                **common,
                "name": f"{PREFIX}block shifts (x{VECTOR_GAIN:g})",
                "features": features,
                "edge_color": "score",
                "edge_colormap": "viridis",
                "edge_width": 3,
            },
            "vectors",
        ),
        (
            rejected if len(rejected) else np.zeros((0, vectors.shape[2])),
            {
                **common,
                "name": f"{PREFIX}rejected blocks",
                "symbol": "x",
                "face_color": "red",
                "border_color": "red",
                "size": 12,
            },
            "points",
        ),
    ]


def block_table(reg: Registration) -> dict[str, list]:
    """Columns for the dock's table, as text in one format per column (fixed decimals: Qt shows
    raw floats as 0.072 beside 7.200e-02)."""
    cols: dict[str, list] = {k: [] for k in ("block", "dz", "dy", "dx", "score", "sharpness", "inlier")}
    for b in reg.blocks:
        cols["block"].append("{},{},{}".format(*b.index))
        for k, v in zip(("dz", "dy", "dx"), b.shift):
            cols[k].append(f"{v:+.3f}")
        cols["score"].append(f"{b.score:.3f}")
        cols["sharpness"].append(f"{b.sharpness:.1f}")
        cols["inlier"].append("yes" if b.inlier else f"no: {b.reason}")
    return cols
