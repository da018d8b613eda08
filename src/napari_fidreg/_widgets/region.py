"""Where and at what scale to register, from what the user set in the viewer: the sub-volume
box, the z range, the voxel size field. Functions of the viewer's layers; no widget state."""

from __future__ import annotations

import numpy as np

from ..core.errors import FidregError
from ..core.io import voxel_size_from_scale
from ..core.params import MIN_BLOCK_YX

SUBVOLUME_LAYER = "fidreg: sub-volume"


def voxel_size_text(layer) -> str:
    """The voxel-size field's text for a layer: its scale, or empty when napari's 1, 1, 1 says unknown."""
    vs = None if layer is None else voxel_size_from_scale(layer.scale)
    return "" if vs is None else ",".join(f"{v:g}" for v in vs)


def fitting_block_size(layer, size: int) -> int:
    """``size``, or for a stack narrower than it (the Bintu crops are 104 px wide, the default
    block 128) the largest power of two, at least MIN_BLOCK_YX (16), that fits its y/x extent."""
    if layer is None or layer.ndim < 2:
        return size
    extent = int(min(layer.data.shape[-2:]))
    if size <= extent:
        return size
    return max(MIN_BLOCK_YX, 2 ** int(np.log2(max(extent, 1))))


def parse_voxel_size(text: str) -> tuple[float, float, float] | None:
    """The voxel size (µm) typed as ``z,y,x``, None when empty; a one-line error otherwise."""
    text = str(text).strip()
    if not text:
        return None
    try:
        vs = tuple(float(v) for v in text.replace(";", ",").split(","))
    except ValueError:
        vs = ()
    if len(vs) != 3 or not all(np.isfinite(vs)) or min(vs) <= 0:
        raise FidregError(f"voxel size {text!r}: expected three positive numbers z,y,x in µm (e.g. 0.2,0.15,0.15)")
    return vs  # type: ignore[return-value]


def subvolume_layer(viewer, ref):
    """The Shapes layer in which the user draws the y/x box (added on the reference's y/x grid).

    A 2D (y, x) layer: napari draws it on every plane of the stack, so the region shows
    wherever the user scrolls (a 3D rectangle shows only on the plane it was drawn on).
    """
    if SUBVOLUME_LAYER in viewer.layers:
        return viewer.layers[SUBVOLUME_LAYER]
    kwargs = {} if ref is None else {"scale": ref.scale[-2:], "translate": ref.translate[-2:]}
    return viewer.add_shapes(
        ndim=2, name=SUBVOLUME_LAYER, edge_color="yellow", face_color="transparent", edge_width=2, **kwargs
    )


def subvolume(viewer, ref, z_start: int, z_stop: int, use_box: bool) -> tuple | None:
    """The chosen region in reference pixel indices ((z0, z1), (y0, y1), (x0, x1)), or None
    for the whole stack. ``z_stop`` 0 means the last plane; the box is the last rectangle drawn."""
    nz, ny, nx = ref.data.shape
    z0, z1 = int(z_start), int(z_stop) or nz
    box_yx = ((0, ny), (0, nx))
    if use_box:
        if SUBVOLUME_LAYER not in viewer.layers or not len(viewer.layers[SUBVOLUME_LAYER].data):
            raise FidregError("draw a rectangle in the 'fidreg: sub-volume' layer first (or untick the box option)")
        shapes = viewer.layers[SUBVOLUME_LAYER]
        verts = np.asarray(shapes.data[-1])
        # (y, x) in world units; a 3D layer (older sessions) gives (z, y, x): its y, x count
        world = np.array([shapes.data_to_world(v)[-2:] for v in verts])
        pix = np.array([ref.world_to_data(np.r_[ref.translate[-3], w]) for w in world])
        y0, x0 = np.floor(pix[:, -2:].min(axis=0)).astype(int)
        y1, x1 = np.ceil(pix[:, -2:].max(axis=0)).astype(int)
        box_yx = ((max(y0, 0), min(y1, ny)), (max(x0, 0), min(x1, nx)))
    if (z0, z1) == (0, nz) and box_yx == ((0, ny), (0, nx)):
        return None
    return ((z0, min(z1, nz)), *box_yx)
