"""The figures (matplotlib, off-screen): the QC image and the dock's QC figure are one drawing;
the block map marks what was rejected, and by whom."""

from __future__ import annotations

import functools
import io

import numpy as np

from conftest import cached_pair
from napari_fidreg.core import register, warp
from napari_fidreg.core.block_grid import reject_blocks
from napari_fidreg.core.qc import display_bin, projections
from napari_fidreg.figures import QC_COLUMNS, block_map_figure, qc_figure, qc_panels, qc_png


@functools.lru_cache(maxsize=1)
def result():
    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    reg = register(p.reference, p.moving, block_size=64)
    b = display_bin(p.reference.shape)
    proj = [projections(v, bin=b) for v in (p.reference, p.moving, warp(p.moving, reg))]
    return reg, proj


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def test_the_png_is_the_figure_with_xy_and_xz_rows():
    from PIL import Image

    _, proj = result()
    png = qc_png(*proj, title="mov onto ref", voxel_size=(0.2, 0.15, 0.15))
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w = img.shape[:2]
    # the panels drawn 1:1, repeated by a whole factor to about 15 in at 100 dpi, + the row names
    mosaic = qc_panels(*proj, voxel_size=(0.2, 0.15, 0.15)).mosaic
    m = 1500 // mosaic.shape[1]
    assert w == mosaic.shape[1] * m + 40 and h == mosaic.shape[0] * m + 75 and 1200 < w <= 1540
    np.testing.assert_array_equal(img[75:, 40:], np.repeat(np.repeat(mosaic, m, 0), m, 1))  # nothing resampled
    fig = qc_figure(*proj, title="mov onto ref", voxel_size=(0.2, 0.15, 0.15))
    texts = _texts(fig)
    for name in (*QC_COLUMNS, "XY", "XZ", "mov onto ref"):
        assert name in texts, (name, texts)
    assert "YZ" not in texts and any("before 0.0" in t and "-> after 0.9" in t for t in texts)
    three = qc_figure(*proj, planes=("xy", "xz", "yz"))
    assert "YZ" in _texts(three)
    # one image in one axes, three rows high now: taller by the YZ row and a gap
    (a,), (b,) = fig.axes[0].images, three.axes[0].images
    assert b.get_array().shape[0] > a.get_array().shape[0] and b.get_array().shape[1] == a.get_array().shape[1]


def test_the_block_map_marks_blocks_rejected_by_the_engine_and_by_hand():
    reg, _ = result()
    assert not reg.blocks[0].inlier  # the empty corner
    fig = block_map_figure(reject_blocks(reg, [6]))
    maps = [ax for ax in fig.axes if ax.get_title().endswith("(px)")]
    assert [ax.get_title() for ax in maps] == ["dz (px)", "dy (px)", "dx (px)"]
    for ax in maps:
        crosses, squares = (c.get_offsets() for c in ax.collections)
        np.testing.assert_array_equal(crosses, [[0, 0]])  # block (y 0, x 0)
        np.testing.assert_array_equal(squares, [[2, 1]])  # block 6 = (y 1, x 2), drawn at (x, y)
    # the colours are the shifts each block uses
    dx = maps[2].images[0].get_array()
    np.testing.assert_allclose(dx, np.array([b.shift[2] for b in reject_blocks(reg, [6]).blocks]).reshape(4, 4))
    assert "colour = block score" in fig.axes[-1].get_xlabel()


def test_the_block_map_of_a_global_only_run_says_so():
    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    fig = block_map_figure(register(p.reference, p.moving))
    assert _texts(fig) == ["global shift only: no blocks"] and not fig.axes
