"""The coarse step: one read of each stack (scan), camera hot pixels, the binned global shift,
and the ranking of blocks by content."""

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.core.coarse import camera_hot_pixels, coarse_shift, correlation_bin, richest_blocks, scan
from napari_fidreg.core.params import Params
from napari_fidreg.core.synthetic import fiducial_pair


def bin_mean(vol, region, factor):
    """Reference implementation: mean over factor x factor y/x bins of the region (ragged edge
    bins average the pixels they have)."""
    (z0, z1), (y0, y1), (x0, x1) = region
    part = np.asarray(vol[z0:z1, y0:y1, x0:x1], dtype=np.float64)
    ny, nx = part.shape[1:]
    out = np.zeros((part.shape[0], -(-ny // factor), -(-nx // factor)))
    for by in range(out.shape[1]):
        for bx in range(out.shape[2]):
            cell = part[:, by * factor : (by + 1) * factor, bx * factor : (bx + 1) * factor]
            out[:, by, bx] = cell.mean(axis=(1, 2))
    return out


def region_of(shape):
    return tuple((0, n) for n in shape)


# --- scan -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [8, 3])
def test_scan_bins_the_region_and_takes_the_minimum_over_z(chunk):
    vol = cached_pair((32, 128, 128), (1.4, -3.3, 5.6), seed=0).reference
    region = ((2, 30), (5, 100), (3, 90))  # 95 x 87 px: ragged last bins with factor 4
    zmin, small = scan(vol, region, 4, chunk=chunk)
    assert small.shape == (28, 24, 22) and small.dtype == np.float32
    np.testing.assert_allclose(small, bin_mean(vol, region, 4), rtol=1e-6)
    # the minimum is over the region's planes, but of the whole camera frame
    assert zmin.shape == (128, 128) and zmin.dtype == vol.dtype
    np.testing.assert_array_equal(zmin, vol[2:30].min(axis=0))


def test_scan_factor_one_is_a_float_copy_of_the_region():
    vol = cached_pair((32, 128, 128), (1.4, -3.3, 5.6), seed=0).moving
    region = ((0, 32), (10, 70), (64, 128))
    zmin, small = scan(vol, region, 1)
    np.testing.assert_array_equal(small, vol[:, 10:70, 64:128].astype(np.float32))
    np.testing.assert_array_equal(zmin, vol.min(axis=0))


def test_scan_reads_big_endian_data_like_native():
    vol = cached_pair((32, 128, 128), (1.4, -3.3, 5.6), seed=0).reference
    region = ((0, 32), (0, 128), (0, 128))
    zmin_be, small_be = scan(vol.astype(">u2"), region, 3)
    zmin, small = scan(vol, region, 3)
    np.testing.assert_array_equal(small_be, small)
    np.testing.assert_array_equal(zmin_be, zmin)


# --- camera_hot_pixels ----------------------------------------------------------------------


def test_camera_hot_pixels_are_the_planted_ones():
    pair = fiducial_pair((24, 128, 128), (1.0, -2.5, 3.5), n_hot_pixels=12, seed=3)
    truth = {tuple(p) for p in pair.hot_pixels}
    assert len(truth) == 12
    mask = camera_hot_pixels((pair.reference.min(axis=0), pair.moving.min(axis=0)), 8.0)
    assert mask.shape == (128, 128)
    assert set(zip(*map(np.ndarray.tolist, np.nonzero(mask)))) == truth


def test_camera_hot_pixels_where_only_one_stack_covers_the_frame():
    """A moving stack narrower than the reference: the columns it lacks use the reference's own
    minimum, and the hot pixels there are found as well."""
    pair = fiducial_pair((24, 128, 128), (1.0, -2.5, 3.5), n_hot_pixels=12, seed=3)
    truth = {tuple(p) for p in pair.hot_pixels}
    assert any(x >= 96 for _, x in truth)  # some lie where only the reference has data
    mask = camera_hot_pixels((pair.reference.min(axis=0), pair.moving[:, :, :96].min(axis=0)), 8.0)
    assert mask.shape == (128, 128)
    assert set(zip(*map(np.ndarray.tolist, np.nonzero(mask)))) == truth


def test_camera_hot_pixels_need_both_stacks_to_be_bright():
    """A pixel bright in every plane of one stack only is not the camera's: it moved."""
    rng = np.random.default_rng(0)
    a = rng.normal(300, 3, (64, 64)).astype(np.float32)
    b = rng.normal(300, 3, (64, 64)).astype(np.float32)
    a[10, 20] += 2000  # in both: hot
    b[10, 20] += 1500
    a[40, 40] += 2000  # in one only
    mask = camera_hot_pixels((a, b), 8.0)
    assert np.argwhere(mask).tolist() == [[10, 20]]


# --- coarse_shift ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed,shift", [(0, (1.4, -3.3, 5.6)), (2, (-2.35, 14.6, -17.1))])
def test_coarse_shift_within_a_bin(seed, shift):
    pair = cached_pair((20, 400, 400), shift, seed=seed)
    c = coarse_shift(pair.reference, pair.moving, region_of((20, 400, 400)), Params(), workers=2)
    assert c.factor == 2  # 400 px binned to <= 384
    assert c.correlation_factor == 4  # and correlated at 100 px: 200 > CORRELATION_TARGET
    err = np.abs(c.shift - shift)
    assert err[0] < 1.0 and np.all(err[1:] < c.correlation_factor), err
    np.testing.assert_allclose(c.shift, c.estimate.shift * (1, 4, 4))  # binned estimate, scaled back
    assert not c.estimate.at_limit
    assert c.max_shift == pytest.approx((20 / 3, 100.0, 100.0))  # default: 1/3 of z, 1/4 of y/x
    assert {tuple(p) for p in np.argwhere(c.hot)} == {tuple(p) for p in pair.hot_pixels}
    assert c.candidates == [(slice(0, 20), slice(0, 400), slice(0, 400))]  # 400 px: one 256+ block


def test_correlation_bin_coarser_only_where_enough_remains():
    assert correlation_bin((256, 256)) == 2  # a 60x256^2 stack: correlated at 128 px
    assert correlation_bin((342, 342)) == 2  # 2048^2 scanned at 6x: correlated at 12x
    assert correlation_bin((175, 104)) == 1  # a Bintu crop: small enough as it is
    assert correlation_bin((400, 80)) == 1  # 40 px along x would be too few
    assert correlation_bin((193, 96)) == 2


def test_coarse_shift_unbinned_and_options():
    pair = cached_pair((32, 128, 128), (1.4, -3.3, 5.6), seed=0)
    region = region_of((32, 128, 128))
    c = coarse_shift(pair.reference, pair.moving, region, Params(), workers=1)
    assert c.factor == 1 and c.hot.sum() == len(pair.hot_pixels)
    assert np.abs(c.shift - (1.4, -3.3, 5.6)).max() < 0.25
    # without the hot-pixel step the camera-fixed hot pixels (4 columns through all planes) win:
    # the peak is at zero lag
    c = coarse_shift(pair.reference, pair.moving, region, Params(hot_pixels=False), workers=1)
    assert c.hot is None
    assert np.abs(c.shift).max() < 0.1
    # a search range smaller than the shift: the peak is at the limit, and the range is recorded
    c = coarse_shift(pair.reference, pair.moving, region_of((32, 128, 128)), Params(max_shift=(3, 4, 4)), workers=1)
    assert c.max_shift == (3.0, 4.0, 4.0)
    assert c.estimate.at_limit


def test_coarse_shift_on_a_subregion():
    pair = cached_pair((32, 128, 128), (1.4, -3.3, 5.6), seed=0)  # read-only arrays: a write would raise
    c = coarse_shift(pair.reference, pair.moving, ((4, 28), (0, 128), (16, 112)), Params(), workers=2)
    assert c.candidates == [(slice(4, 28), slice(0, 128), slice(16, 112))]
    assert np.abs(c.shift - (1.4, -3.3, 5.6)).max() < 0.25


# --- richest_blocks -------------------------------------------------------------------------


def test_richest_blocks_rank_by_content():
    region = ((0, 4), (0, 512), (0, 512))  # 2 x 2 blocks of 256 px, binned by 2
    rng = np.random.default_rng(0)
    small = np.zeros((4, 256, 256), np.float32)
    for (qy, qx), amp in {(0, 0): 0.0, (0, 1): 3.0, (1, 0): 1.0, (1, 1): 2.0}.items():
        small[:, qy * 128 : (qy + 1) * 128, qx * 128 : (qx + 1) * 128] = amp * rng.normal(size=(4, 128, 128))
    ranked = richest_blocks(small, region, 2, 4)
    starts = [(b[1].start, b[2].start) for b in ranked]
    assert starts == [(0, 256), (256, 256), (256, 0), (0, 0)]
    assert all(b[0] == slice(0, 4) for b in ranked)  # full depth
    assert richest_blocks(small, region, 2, 2) == ranked[:2]


def test_richest_blocks_skip_a_region_without_fiducials():
    """Through coarse_shift: the quadrant left without beads is never a candidate."""
    shape = (12, 512, 512)
    pair = fiducial_pair(shape, (0.5, -2.0, 3.0), empty_region=(slice(0, 256), slice(0, 256)), seed=6)
    c = coarse_shift(pair.reference, pair.moving, region_of(shape), Params(n_global_blocks=3), workers=2)
    assert len(c.candidates) == 3
    assert (slice(0, 12), slice(0, 256), slice(0, 256)) not in c.candidates
    assert {(b[1].start, b[2].start) for b in c.candidates} == {(0, 256), (256, 0), (256, 256)}
