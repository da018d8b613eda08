"""The result's block layers as data (layers.block_layers, crosses, update_block_layers) on a
viewer model: the crosses' geometry and colours, full-depth and z-block grids, none rejected."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Points, Vectors

from napari_fidreg._widgets import layers as L
from napari_fidreg.core import register
from napari_fidreg.core.block_grid import reject_blocks
from napari_fidreg.core.synthetic import fiducial_pair
from napari_fidreg.figures import ENGINE_RED, HAND_ORANGE

GEOM = L.Geometry((0.2, 0.1, 0.1), (0.0, 5.0, -3.0))


@pytest.fixture(scope="module")
def regs():
    pair = fiducial_pair((24, 128, 128), (0.6, 1.3, -2.1), seed=11)
    full = register(pair.reference, pair.moving, block_size=64)
    zblocks = register(pair.reference, pair.moving, block_size=64, block_size_z=12)
    return full, zblocks


def _half_diagonals(reg, strokes):
    """Per rejected block (in block order): its two strokes' midpoints and (dy, dx) extents."""
    n = len(strokes) // 2
    mids = strokes[:, 0] + strokes[:, 1] / 2
    return n, mids[:n], mids[n:], strokes[:n, 1, -2:], strokes[n:, 1, -2:]


@pytest.mark.parametrize("which", [0, 1], ids=["full depth", "z-blocks"])
def test_crosses_are_the_two_diagonals_of_a_third_of_each_rejected_block(regs, which):
    reg = reject_blocks(regs[which], [0, 3])
    rejected = [b for b in reg.blocks if not b.inlier]
    (_, vmeta, _), (strokes, cmeta, kind) = L.block_layers(reg, GEOM)
    ndim = 2 if which == 0 else 3
    assert kind == "vectors" and strokes.shape == (2 * len(rejected), 2, ndim)
    n, mid_a, mid_b, ext_a, ext_b = _half_diagonals(reg, strokes)
    centres = np.array([b.centre for b in rejected])
    if ndim == 3:
        centres[:, 0] = np.floor(centres[:, 0])  # the arrows' plane
        assert np.all(strokes[:, 1, 0] == 0)  # flat in z: drawn on that plane
    np.testing.assert_allclose(mid_a, centres[:, -ndim:])
    np.testing.assert_allclose(mid_b, centres[:, -ndim:])
    side = np.array([min(b.size[1:]) for b in rejected])[:, None] * L.CROSS_SPAN
    np.testing.assert_allclose(ext_a, np.hstack([side, side]))  # down to the right
    np.testing.assert_allclose(ext_b, np.hstack([-side, side]))  # up to the right
    hand = [b.reason == "rejected by hand" for b in rejected]
    expect = [HAND_ORANGE if h else ENGINE_RED for h in hand] * 2
    np.testing.assert_allclose(cmeta["edge_color"], expect)
    assert cmeta["name"] == L.CROSSES and vmeta["name"] != cmeta["name"]
    assert cmeta["scale"] == (GEOM.scale[1:] if ndim == 2 else GEOM.scale)


def _all_inliers(reg):
    return replace(reg, blocks=[replace(b, inlier=True, reason="") for b in reg.blocks])


def test_no_rejected_block_gives_an_empty_layer_of_the_grid_s_dimensions(regs):
    (_, _, _), (strokes, cmeta, _) = L.block_layers(_all_inliers(regs[0]), GEOM)
    assert strokes.shape == (0, 2, 2)
    layer = Vectors(strokes, **{k: v for k, v in cmeta.items() if k != "name"})
    assert layer.ndim == 2 and len(layer.data) == 0


def test_update_block_layers_in_place_as_the_rejected_blocks_change(regs):
    full = _all_inliers(regs[0])
    viewer = ViewerModel()
    for data, meta, kind in L.block_layers(full, GEOM):
        getattr(viewer, f"add_{kind}")(data, **meta)
    cross = viewer.layers[L.CROSSES]
    for rejected in ([0, 1, 3], [], [2]):
        reg = reject_blocks(full, rejected) if rejected else full
        assert L.update_block_layers(viewer, reg, GEOM)
        assert viewer.layers[L.CROSSES] is cross and len(cross.data) == 2 * len(rejected)
        if rejected:
            np.testing.assert_allclose(cross.edge_color, [HAND_ORANGE] * (2 * len(rejected)))
    # a layer of another kind under that name (the user's): not updated, the caller adds them anew
    viewer.layers.remove(cross)
    viewer.add_points(np.zeros((1, 2)), name=L.CROSSES)
    assert isinstance(viewer.layers[L.CROSSES], Points)
    assert not L.update_block_layers(viewer, reject_blocks(full, [0]), GEOM)
