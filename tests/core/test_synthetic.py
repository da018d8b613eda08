"""Synthetic fiducial pairs: deterministic, the right shapes, and their truth is what the stacks hold."""

import pickle

import numpy as np
import pytest

from napari_fidreg.core.synthetic import SmoothDeformation, fiducial_pair

SHAPE = (48, 96, 96)
SHIFT = (1.3, -4.6, 7.25)


def local_centroid(vol, p, radius=(10, 6, 6)):
    """Intensity centroid in a box around ``p`` (the spots are rendered within 4 sigma)."""
    c = np.rint(p).astype(int)
    sl = tuple(slice(c[k] - radius[k], c[k] + radius[k] + 1) for k in range(3))
    w = vol[sl].astype(np.float64)
    grids = np.meshgrid(*[np.arange(s.start, s.stop) for s in sl], indexing="ij")
    return np.array([(g * w).sum() / w.sum() for g in grids])


def test_same_seed_same_pair_other_seed_other_pair():
    a = fiducial_pair((16, 64, 64), seed=5)
    b = fiducial_pair((16, 64, 64), seed=5)
    c = fiducial_pair((16, 64, 64), seed=6)
    for name in ("reference", "moving", "beads", "amplitudes", "hot_pixels", "shift"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.reference, c.reference)
    assert not np.array_equal(a.beads, c.beads)


@pytest.mark.parametrize("shape", [(16, 64, 80), (1, 48, 40)])
def test_shapes_and_dtypes(shape):
    pair = fiducial_pair(shape, (0.5, 2.0, -1.0), seed=1)
    assert pair.reference.shape == pair.moving.shape == shape
    assert pair.reference.dtype == pair.moving.dtype == np.uint16
    n = len(pair.beads)
    assert n >= 1 and pair.beads.shape == (n, 3) and pair.amplitudes.shape == (n,)
    assert np.all(pair.amplitudes > 0)
    assert pair.hot_pixels.shape == (max(1, shape[1] * shape[2] // 4000), 2)
    np.testing.assert_array_equal(pair.shift, (0.5, 2.0, -1.0))
    assert pair.local_shift is None
    # the beads lie in a slab in the middle of the depth (on the coverslip)
    assert np.all(pair.beads[:, 0] >= 0.25 * shape[0] - 0.5) and np.all(pair.beads[:, 0] <= 0.75 * shape[0] - 0.5)


def test_hot_pixels_are_bright_at_the_same_place_in_both_stacks_and_every_plane():
    pair = fiducial_pair((16, 64, 64), n_hot_pixels=6, seed=2)
    assert pair.hot_pixels.shape == (6, 2)
    for vol in (pair.reference, pair.moving):
        zmin = vol.min(axis=0).astype(float)
        level = np.median(zmin)
        for y, x in pair.hot_pixels:
            assert zmin[y, x] > level + 500  # hot_pixel_value 3000 x at least 0.3
    none = fiducial_pair((16, 64, 64), n_hot_pixels=0, seed=2)
    assert none.hot_pixels.shape == (0, 2)


@pytest.mark.parametrize("deformation", [None, (0.5, 1.5, 1.5)])
def test_moving_beads_sit_at_p_minus_shift(deformation):
    """Each isolated bead's centroid: at p in the reference, at p - shift(p) in the moving stack."""
    pair = fiducial_pair(
        SHAPE,
        SHIFT,
        density=1.5e-3,
        background=0.0,
        uneven_background=0.0,
        read_noise=0.0,
        n_hot_pixels=0,
        deformation=deformation,
        seed=3,
    )
    total = pair.shift_at(pair.beads)
    if deformation is None:
        np.testing.assert_array_equal(total, np.broadcast_to(SHIFT, total.shape))
    moved = pair.beads - total
    checked = 0
    for i, (p, m) in enumerate(zip(pair.beads, moved)):
        inside = all(10 <= v[0] <= SHAPE[0] - 11 and all(7 <= v[k] <= SHAPE[k] - 8 for k in (1, 2)) for v in (p, m))
        others = np.delete(np.arange(len(pair.beads)), i)
        isolated = all(
            np.abs(pts[others, 1:] - v[1:]).max(axis=1).min() > 14 for pts, v in ((pair.beads, p), (moved, m))
        )
        if not (inside and isolated):
            continue
        np.testing.assert_allclose(local_centroid(pair.reference, p), p, atol=0.05)
        np.testing.assert_allclose(local_centroid(pair.moving, m), m, atol=0.05)
        checked += 1
    assert checked >= 2


def test_block_truth_is_none_for_a_block_without_beads():
    pair = fiducial_pair((24, 96, 96), SHIFT, empty_region=(slice(0, 32), slice(0, 32)), seed=4)
    inside_empty = (pair.beads[:, 1] < 36) & (pair.beads[:, 2] < 36)
    assert not inside_empty.any()
    assert pair.block_truth((0, 0, 0), (24, 32, 32)) is None
    # a block with beads reports the global shift when there is no deformation
    np.testing.assert_allclose(pair.block_truth((0, 48, 48), (24, 48, 48)), SHIFT, rtol=1e-12)


def test_block_truth_is_a_weighted_mean_of_its_beads_shifts():
    pair = fiducial_pair((24, 128, 128), SHIFT, deformation=(0.5, 1.5, 1.5), seed=4)
    origin, size = np.array((0, 64, 0)), np.array((24, 64, 64))
    rel = pair.beads - origin
    in_block = np.all((rel >= 0) & (rel < size), axis=1)
    shifts = pair.shift_at(pair.beads[in_block])
    assert in_block.sum() >= 3
    truth = pair.block_truth(origin, size)
    assert np.all(truth >= shifts.min(axis=0) - 1e-12) and np.all(truth <= shifts.max(axis=0) + 1e-12)
    # the windows weight the beads: without them only brightness counts
    flat = pair.block_truth(origin, size, z_taper=0.0, yx_taper=0.0)
    w = pair.amplitudes[in_block] ** 2
    np.testing.assert_allclose(flat, (shifts * w[:, None]).sum(axis=0) / w.sum(), rtol=1e-12)


def test_smooth_deformation_stays_within_its_amplitude_and_reaches_it():
    amp = (0.5, 1.5, 2.0)
    field = SmoothDeformation((10, 64, 80), amp)
    yy, xx = np.meshgrid(np.linspace(0, 63.9, 200), np.linspace(0, 79.9, 200), indexing="ij")
    pts = np.stack([np.zeros(yy.size), yy.ravel(), xx.ravel()], axis=1)
    values = field(pts)
    assert values.shape == pts.shape
    peak = np.abs(values).max(axis=0)
    assert np.all(peak <= np.asarray(amp) + 1e-12)
    assert np.all(peak >= 0.97 * np.asarray(amp))
    # smooth in y/x, the same at every depth
    deeper = pts.copy()
    deeper[:, 0] = 7.5
    np.testing.assert_array_equal(field(deeper), values)


def test_a_deformed_pair_and_its_truth_can_be_pickled():
    pair = fiducial_pair((8, 48, 48), SHIFT, deformation=(0.5, 1.5, 1.5), seed=9)
    again = pickle.loads(pickle.dumps(pair))
    np.testing.assert_array_equal(again.moving, pair.moving)
    np.testing.assert_array_equal(again.shift_at(pair.beads), pair.shift_at(pair.beads))
    local = pair.shift_at(pair.beads) - SHIFT
    assert np.all(np.abs(local) <= np.array([0.5, 1.5, 1.5]) + 1e-12)
    assert np.abs(local).max() > 0.1


def test_shift_at_a_single_point():
    pair = fiducial_pair((8, 48, 48), SHIFT, seed=9)
    out = pair.shift_at(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(out, [SHIFT])
