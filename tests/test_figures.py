"""The figures, off-screen: the QC image (Pillow, no matplotlib) has the layout and the text of the
dock's QC figure (matplotlib); the block map marks what was rejected, and by whom."""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import textwrap

import numpy as np

from conftest import cached_pair
from napari_fidreg.core import register, warp
from napari_fidreg.core.block_grid import reject_blocks
from napari_fidreg.core.qc import display_bin, projections
from napari_fidreg.figures import (
    ENGINE_RED,
    GAP,
    HAND_ORANGE,
    PNG_EDGE,
    PNG_LEFT,
    PNG_PLANES,
    PNG_TOP,
    PNG_WIDTH,
    QC_COLUMNS,
    block_map_figure,
    qc_figure,
    qc_panels,
    qc_png,
)


@functools.lru_cache(maxsize=1)
def result():
    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    reg = register(p.reference, p.moving, block_size=64)
    b = display_bin(p.reference.shape)
    proj = [projections(v, bin=b) for v in (p.reference, p.moving, warp(p.moving, reg))]
    return reg, proj


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def test_the_png_is_the_figure_with_xy_xz_and_yz_rows():
    from PIL import Image

    _, proj = result()
    png = qc_png(*proj, title="mov onto ref", voxel_size=(0.2, 0.15, 0.15))
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    h, w = img.shape[:2]
    # the panels drawn 1:1, repeated by a whole factor to about PNG_WIDTH px, below the title band
    # and right of the row names; the dock's three rows (a new user missed YZ in the PNG)
    assert PNG_PLANES == ("xy", "xz", "yz")
    mosaic = qc_panels(*proj, voxel_size=(0.2, 0.15, 0.15), planes=PNG_PLANES).mosaic
    m = PNG_WIDTH // mosaic.shape[1]
    assert w == mosaic.shape[1] * m + PNG_LEFT + PNG_EDGE and h == mosaic.shape[0] * m + PNG_TOP + PNG_EDGE
    assert 1200 < w <= PNG_WIDTH + 48
    shown = img[PNG_TOP : h - PNG_EDGE, PNG_LEFT : w - PNG_EDGE]
    np.testing.assert_array_equal(shown, np.repeat(np.repeat(mosaic, m, 0), m, 1))  # not resampled
    assert (img[h - PNG_EDGE :] == 255).all() and (img[:, w - PNG_EDGE :] == 255).all()  # a white edge
    assert qc_png(*proj, title="mov onto ref", voxel_size=(0.2, 0.15, 0.15)) == png  # the same bytes each time
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


# projections of a stack 1368 px wide binned by 4 (as display_bin does), made without a stack
PROJECTIONS = textwrap.dedent("""
    import numpy as np

    def planes(seed, shift=0):
        rng = np.random.default_rng(seed)
        xy = rng.random((60, 342), dtype=np.float32)
        xy[20:23, 100 + shift : 103 + shift] = 20.0  # a bead
        return {"xy": xy, "xz": rng.random((12, 342), dtype=np.float32), "yz": rng.random((12, 60), dtype=np.float32)}

    proj = planes(0), planes(1, shift=5), planes(0)
""")


def test_the_png_is_drawn_without_matplotlib_and_five_342_px_panels_are_not_halved():
    from PIL import Image

    code = PROJECTIONS + textwrap.dedent("""
        import sys
        from napari_fidreg.figures import qc_png

        png = qc_png(*proj, title="H2R2 onto H1R1", voxel_size=(0.3, 0.108, 0.108))
        assert "matplotlib" not in sys.modules, "qc_png imported matplotlib"
        sys.stdout.buffer.write(png)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    img = Image.open(io.BytesIO(run.stdout))
    assert img.format == "PNG" and img.mode == "RGB"
    namespace: dict = {}
    exec(PROJECTIONS, namespace)
    mosaic = qc_panels(*namespace["proj"], voxel_size=(0.3, 0.108, 0.108), planes=PNG_PLANES).mosaic
    assert mosaic.shape[1] == 5 * 342 + 4 * GAP <= PNG_WIDTH
    assert img.size == (mosaic.shape[1] + PNG_LEFT + PNG_EDGE, mosaic.shape[0] + PNG_TOP + PNG_EDGE)  # 1:1
    np.testing.assert_array_equal(np.asarray(img)[PNG_TOP:-PNG_EDGE, PNG_LEFT:-PNG_EDGE], mosaic)


def test_the_png_has_its_title_score_line_and_names_over_their_panels():
    from PIL import Image

    _, proj = result()
    panels = qc_panels(*proj, planes=PNG_PLANES)
    m = PNG_WIDTH // panels.mosaic.shape[1]
    heights, gap = [x * m for x in panels.heights], panels.gap * m
    panel_w = (panels.mosaic.shape[1] * m - 4 * gap) / 5

    def dark(png, below=100):
        grey = np.asarray(Image.open(io.BytesIO(png)).convert("L")).astype(int)
        return grey < below

    with_title, without = dark(qc_png(*proj, title="mov onto ref")), dark(qc_png(*proj))
    band = with_title[:PNG_TOP]
    # the title: dark pixels in its line, about the middle of the image, and none without a title
    title_rows = slice(8, 30)
    ys, xs = np.nonzero(band[title_rows])
    assert len(xs) > 50 and abs(xs.mean() - band.shape[1] / 2) < 40
    assert not without[title_rows].any()
    # a file name beyond ASCII is drawn too (in DejaVu Sans, where Pillow's own font has no µ)
    assert dark(qc_png(*proj, title="Zählung 0.5µm onto ref"))[title_rows].sum() > 50
    # the score line: dark grey, below the title and above the column names
    score = np.asarray(Image.open(io.BytesIO(qc_png(*proj)))).astype(int)[33:48]
    assert (np.abs(score - 64).max(axis=2) < 30).sum() > 100
    # each column name: dark pixels just above its panel, centred on it, none over the gaps
    names = band[50:PNG_TOP]
    for col in range(5):
        x0 = PNG_LEFT + col * (panel_w + gap)
        ys, xs = np.nonzero(names[:, int(x0) : int(x0 + panel_w)])
        assert len(xs) > 30, QC_COLUMNS[col]
        assert abs(xs.mean() - panel_w / 2) < 10, (QC_COLUMNS[col], xs.mean(), panel_w / 2)
        if col:
            assert not names[:, int(x0 - gap) : int(x0)].any()
    assert not names[:, :PNG_LEFT].any()
    # each row name: right-aligned just left of its row, centred on it
    y0 = PNG_TOP
    for hh in heights:
        ys, xs = np.nonzero(with_title[int(y0) : int(y0 + hh), :PNG_LEFT])
        assert len(xs) > 20 and PNG_LEFT - 12 < xs.max() < PNG_LEFT - 2 and abs(ys.mean() - hh / 2) < 4
        y0 += hh + gap


def test_the_block_map_marks_blocks_rejected_by_the_engine_and_by_hand():
    reg, _ = result()
    assert not reg.blocks[0].inlier  # the empty corner
    fig = block_map_figure(reject_blocks(reg, [6]))
    maps = [ax for ax in fig.axes if ax.get_title().endswith("(px)")]
    assert [ax.get_title() for ax in maps] == ["dz (px)", "dy (px)", "dx (px)"]
    for ax in maps:  # crossed as in the viewer: red by the engine, orange by hand
        engine, hand = ax.collections
        # block (y 0, x 0) and block 6 = (y 1, x 2), drawn at (x, y), above the number in the cell
        np.testing.assert_allclose(engine.get_offsets(), [[0, -0.17]])
        np.testing.assert_allclose(hand.get_offsets(), [[2, 1 - 0.17]])
        np.testing.assert_allclose(engine.get_edgecolor()[0], ENGINE_RED)
        np.testing.assert_allclose(hand.get_edgecolor()[0], HAND_ORANGE)
    # the colours are the shifts each block uses
    dx = maps[2].images[0].get_array()
    np.testing.assert_allclose(dx, np.array([b.shift[2] for b in reject_blocks(reg, [6]).blocks]).reshape(4, 4))
    assert "colour = block score" in fig.axes[-1].get_xlabel()


def test_the_png_has_the_block_map_under_the_projections_without_matplotlib():
    """What the dock's second tab shows, in the file a batch run leaves (a new user looked for it)."""
    from PIL import Image

    from napari_fidreg.block_map_png import diverging

    reg, proj = result()
    reg = reject_blocks(reg, [6])
    plain = np.asarray(Image.open(io.BytesIO(qc_png(*proj))).convert("RGB"))
    png = qc_png(*proj, registration=reg)
    assert qc_png(*proj, registration=reg) == png  # the same bytes each time
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[0] > plain.shape[0] + 300 and img.shape[1] == plain.shape[1]
    np.testing.assert_array_equal(img[: plain.shape[0] - PNG_EDGE], plain[:-PNG_EDGE])  # the projections as they were
    below = img[plain.shape[0] :].reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(below, axis=0)}
    # each block's cell in its colour on each component's scale (centred on the median block)
    shifts = np.array([b.shift for b in reg.blocks])
    for k in range(3):
        med = np.median(shifts[:, k])
        half = max(np.abs(shifts[:, k] - med).max(), 0.25)
        for v in shifts[:, k]:
            assert tuple(diverging((v - med) / (2 * half) + 0.5)) in colours
    # the crosses: red by the engine (block 0, the empty corner), orange by hand (block 6)
    assert {tuple(round(255 * c) for c in ENGINE_RED[:3]), tuple(round(255 * c) for c in HAND_ORANGE[:3])} <= colours
    # a global-only result has no map
    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    assert qc_png(*proj, registration=register(p.reference, p.moving)) == qc_png(*proj)


def _cells_as_drawn(reg, width=1500):
    """Each block's colour in :func:`block_map_image`, read 3 px inside its cell's top-left
    corner (clear of its number and cross), and the colour expected there: (component, block) rows."""
    from napari_fidreg.block_map_png import block_map_image, cell_origin, diverging
    from napari_fidreg.figures import _font

    img = block_map_image(reg, width, _font)
    gz, gy, gx = reg.grid_shape
    shifts = np.array([b.shift for b in reg.blocks]).reshape(gz, gy, gx, 3)
    seen, want = [], []
    for k in range(3):
        med = np.median(shifts[..., k])
        half = max(np.abs(shifts[..., k] - med).max(), 0.25)
        for z, y, x in np.ndindex(min(gz, 6), gy, gx):
            col, row = cell_origin(reg.grid_shape, width, k, z, y, x)
            seen.append(img[row + 3, col + 3])
            want.append(diverging((shifts[z, y, x, k] - med) / (2 * half) + 0.5))
    return img, np.array(seen), np.array(want)


def test_each_block_of_the_png_map_is_in_its_place_in_its_colour():
    reg, _ = result()
    img, seen, want = _cells_as_drawn(reject_blocks(reg, [6]))
    np.testing.assert_array_equal(seen, want)
    assert len(np.unique(want, axis=0)) > 10  # the blocks differ: a misplaced cell would show


def test_the_png_map_of_z_blocks_has_a_row_per_z_level():
    from napari_fidreg.block_map_png import FOOT, HEAD

    p = cached_pair((40, 128, 128), (1.0, -2.0, 3.0), seed=7, deformation=(0.5, 1.5, 1.5))
    reg = register(p.reference, p.moving, block_size=64, block_size_z=20)
    assert reg.grid_shape == (2, 2, 2)
    img, seen, want = _cells_as_drawn(reg)
    np.testing.assert_array_equal(seen, want)
    one = _cells_as_drawn(register(p.reference, p.moving, block_size=64))[0]
    assert img.shape[0] - HEAD - FOOT == 2 * (one.shape[0] - HEAD - FOOT)  # two z levels, two rows


def test_the_diverging_scale_runs_blue_to_pale_to_red():
    from napari_fidreg.block_map_png import diverging

    lo, mid, hi = diverging(np.array([0.0, 0.5, 1.0]))
    assert lo[2] > 150 > lo[0] and hi[0] > 150 > hi[2] and np.ptp(mid.astype(int)) < 5 and mid.min() > 200
    np.testing.assert_array_equal(diverging(np.array([-3.0, 7.0])), [lo, hi])  # clipped
    np.testing.assert_array_equal(diverging(np.array([np.nan])), [[128, 128, 128]])  # not a value: grey


def test_the_block_map_of_a_global_only_run_says_so():
    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    fig = block_map_figure(register(p.reference, p.moving))
    assert _texts(fig) == ["global shift only: no blocks"] and not fig.axes


def test_a_single_image_has_its_xy_row_only_not_a_one_pixel_xz_sliver():
    from PIL import Image

    p = cached_pair((1, 168, 145), (0.0, -3.0, 4.0), seed=5)
    reg = register(p.reference, p.moving)
    proj = [projections(v) for v in (p.reference, p.moving, warp(p.moving, reg))]
    assert proj[0]["xz"].shape[0] == 1
    for planes in (("xy", "xz"), ("xy", "xz", "yz")):  # the PNG's rows and the dock's
        panels = qc_panels(*proj, planes=planes)
        assert panels.planes == ("xy",) and panels.heights == [168] and panels.mosaic.shape[0] == 168
        assert panels.score_line().endswith("maximum projections: XY over z")
        # scored on XY alone: the one-line XZ scored this corrected image below the uncorrected one
        assert panels.score_after > panels.score_before + 0.05, (panels.score_before, panels.score_after)
    img = Image.open(io.BytesIO(qc_png(*proj, title="one image")))
    assert img.height == PNG_TOP + 168 * (PNG_WIDTH // panels.mosaic.shape[1]) + PNG_EDGE
    stack = qc_panels(*result()[1], planes=("xy", "xz"))  # a stack keeps its XZ row
    assert stack.planes == ("xy", "xz") and len(stack.heights) == 2


def test_the_png_encoder_round_trips_an_image_exactly_with_or_without_zlib_ng(monkeypatch):
    import imagecodecs
    from PIL import Image

    from napari_fidreg.figures import _png_bytes

    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[10:20] = rgb[9]  # runs of equal rows: the Up filter's zeros
    png = _png_bytes(rgb)
    assert png == _png_bytes(rgb.copy())  # deterministic
    for decoded in (np.asarray(Image.open(io.BytesIO(png))), imagecodecs.png_decode(png)):
        np.testing.assert_array_equal(decoded, rgb)
    monkeypatch.setattr(imagecodecs.ZLIBNG, "available", False)  # a build without zlib-ng: the standard zlib
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(_png_bytes(rgb)))), rgb)


def test_block_map_of_a_rigid_shift_keeps_its_noise_pale():
    """±0.05 px of noise about a rigid shift filled the whole colour scale (a new user read it
    as a deformation): the scale spans at least MAP_MIN_HALF_RANGE either side of the median."""
    from napari_fidreg._sample_data import SAMPLE_SHAPE, SAMPLE_SHIFT
    from napari_fidreg.core import register
    from napari_fidreg.core.synthetic import fiducial_pair
    from napari_fidreg.figures import MAP_MIN_HALF_RANGE, block_map_figure

    pair = fiducial_pair(SAMPLE_SHAPE, SAMPLE_SHIFT, seed=11)  # the napari sample, rigid: the user's case
    reg = register(pair.reference, pair.moving, block_size=64)
    fig = block_map_figure(reg)
    maps = [ax for ax in fig.axes if ax.images]  # dz, dy, dx (one z level)
    assert len(maps) == 3
    for ax, k in zip(maps, range(3)):
        lo, hi = ax.images[0].get_clim()
        med = float(np.median([b.shift[k] for b in reg.blocks]))
        assert hi - med >= MAP_MIN_HALF_RANGE - 1e-9 and med - lo >= MAP_MIN_HALF_RANGE - 1e-9
        spread = max(abs(b.shift[k] - med) for b in reg.blocks)
        assert spread < 0.1 and spread / (hi - med) < 0.5, (spread, hi - med)  # pale: within half the scale
