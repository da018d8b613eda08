"""Honest confidence: pairs that cannot be registered are not confident, and the
uncertainty of those that can covers their error (synthetic data only)."""

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.core import register
from napari_fidreg.core.confidence import (
    FLOOR_PX,
    SMALL_SAMPLE,
    THIN_FLOOR,
    floor,
    keep_planes,
    quadrants,
    uncertainty,
)
from napari_fidreg.core.synthetic import fiducial_pair


def with_camera_of(pair, other):
    """``other``'s moving stack with ``pair``'s hot pixels: another field, the same camera."""
    mov = other.moving.astype(np.float32)
    ys, xs = pair.hot_pixels[:, 0], pair.hot_pixels[:, 1]
    zmin = pair.reference.min(axis=0).astype(np.float32)
    mov[:, ys, xs] += zmin[ys, xs] - np.median(zmin)
    return np.clip(mov, 0, 65535).astype(np.uint16)


def covered(reg, truth):
    """|error| <= 3 x uncertainty on every axis."""
    assert reg.global_uncertainty is not None
    return np.abs(np.subtract(reg.global_shift, truth)) <= 3 * np.asarray(reg.global_uncertainty)


# --- negatives ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(60, 256, 256), (40, 160, 160), (60, 512, 512)])
def test_unrelated_fields_of_the_same_camera_are_not_confident(shape):
    """Two bead fields always hold a pair of bright beads that coincide at some lag: a sharp
    peak (15-60 here) that no other part of the field reproduces."""
    a = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=400)
    b = fiducial_pair(shape, (1.0, 2.0, 3.0), seed=500)
    for mov in (b.moving, with_camera_of(a, b)):  # another camera (its own hot pixels), the same
        reg = register(a.reference, mov)
        assert not reg.global_confident, (reg.global_shift, reg.global_sharpness)
        assert reg.global_uncertainty is None
        assert any("not reproduced across the field" in w for w in reg.warnings), reg.warnings
        assert "LOW CONFIDENCE" in reg.summary()


@pytest.mark.parametrize("shape,value", [((40, 256, 256), 60), ((40, 256, 256), 150), ((4, 256, 256), 100)])
def test_the_camera_alone_is_not_confident(shape, value):
    """Hot pixels too faint to be found (and so not replaced) sit at the same place in both
    stacks, with nothing else to register: a clear peak at y/x zero that is the camera's."""
    p = fiducial_pair(shape, (0.0, 0.0, 0.0), amplitude=0.0, hot_pixel_value=value, n_hot_pixels=200, seed=311)
    reg = register(p.reference, p.moving)
    assert not reg.global_confident, (reg.global_shift, reg.global_sharpness)
    assert any("camera's fixed pattern" in w for w in reg.warnings), reg.warnings


def test_camera_only_with_bright_hot_pixels_is_not_confident():
    p = fiducial_pair((40, 256, 256), (0.0, 0.0, 0.0), amplitude=0.0, seed=300)  # hot pixels found and replaced
    reg = register(p.reference, p.moving)
    assert not reg.global_confident and reg.global_uncertainty is None


@pytest.mark.parametrize("shape", [(39, 175, 104), (60, 256, 256), (4, 512, 512), (1, 256, 256)])
def test_pure_noise_is_not_confident(shape):
    rng = np.random.default_rng(13)
    a, b = (rng.poisson(300, shape).astype(np.uint16) for _ in range(2))
    reg = register(a, b)
    assert not reg.global_confident and reg.global_uncertainty is None


# --- positives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,shift,seed",
    [
        ((60, 256, 256), (1.3, -4.6, 7.25), 0),  # one block: its quadrants agree
        ((40, 160, 160), (1.4, -3.3, 5.6), 1),
        ((20, 96, 96), (0.5, 1.0, -2.0), 3),
        ((60, 512, 512), (-2.1, 6.4, -9.3), 2),  # four blocks agree
    ],
)
def test_a_true_pair_is_confident_and_its_uncertainty_covers_the_error(shape, shift, seed):
    p = cached_pair(shape, shift, seed=seed)
    reg = register(p.reference, p.moving)
    assert reg.global_confident, reg.warnings
    assert not reg.warnings
    assert np.all(covered(reg, shift)), (np.subtract(reg.global_shift, shift), reg.global_uncertainty)
    # and it is a precision, not a blanket: below 0.1 px on these beads (0.002-0.07 px)
    assert max(reg.global_uncertainty) < 0.1, reg.global_uncertainty


def test_a_zero_shift_on_a_thick_stack_is_the_sample_not_the_camera():
    """The camera test (stacks half their depth apart in z) keeps a true zero shift."""
    p = cached_pair((60, 256, 256), (0.0, 0.0, 0.0), seed=6)
    reg = register(p.reference, p.moving)
    assert reg.global_confident, reg.warnings
    assert np.abs(reg.global_shift).max() < 0.03


@pytest.mark.parametrize(
    "nz,shift,seed", [(4, (0.4, -5.3, 6.6), 0), (4, (-0.8, 3.2, -2.7), 1), (3, (-0.6, 2.5, 4.4), 2)]
)
def test_a_thin_pair_is_confident_and_covered(nz, shift, seed):
    """3-4 planes: a z offset of a plane would leave too few planes in common to measure
    a block (it is reduced), and the z shift is barely measurable: the uncertainty says so
    (at least a quarter of a plane), and in y/x it is a few hundredths to a tenth."""
    p = fiducial_pair((nz, 512, 512), shift, seed=200 + seed)
    reg = register(p.reference, p.moving)
    assert reg.global_confident, reg.warnings
    assert np.all(covered(reg, shift)), (np.subtract(reg.global_shift, shift), reg.global_uncertainty)
    u = np.asarray(reg.global_uncertainty)
    assert u[0] >= THIN_FLOOR[0] and np.all(u[1:] < 0.25), u


def test_a_thin_pair_of_one_block():
    p = fiducial_pair((4, 256, 256), (0.3, -4.2, 3.1), seed=7)
    reg = register(p.reference, p.moving)
    assert reg.global_confident, reg.warnings
    assert np.all(covered(reg, (0.3, -4.2, 3.1)))


def test_a_deforming_pair_stays_confident():
    """The richest blocks disagree by more than AGREE_BLOCK_PX (the sample deforms); each
    block's quadrants still agree with it."""
    p = cached_pair((60, 512, 512), (1.2, -5.3, 8.6), seed=4, deformation=(0.5, 1.5, 1.5), empty=True)
    reg = register(p.reference, p.moving)
    assert reg.global_confident, reg.warnings


# --- the pieces -----------------------------------------------------------------------------


def test_quadrants_cut_each_wide_enough_side_in_two():
    z = slice(0, 10)
    q = quadrants((z, slice(0, 100), slice(50, 151)))
    assert q == [
        (z, slice(0, 50), slice(50, 100)),
        (z, slice(0, 50), slice(100, 151)),
        (z, slice(50, 100), slice(50, 100)),
        (z, slice(50, 100), slice(100, 151)),
    ]
    # a side narrower than two measurable halves stays whole
    assert quadrants((z, slice(0, 20), slice(0, 64))) == [
        (z, slice(0, 20), slice(0, 32)),
        (z, slice(0, 20), slice(32, 64)),
    ]


def test_keep_planes_leaves_three_planes_in_common():
    np.testing.assert_array_equal(keep_planes((-1, 5, 7), 3), (0, 5, 7))
    np.testing.assert_array_equal(keep_planes((2, 5, 7), 4), (1, 5, 7))
    np.testing.assert_array_equal(keep_planes((-4, 5, 7), 40), (-4, 5, 7))
    np.testing.assert_array_equal(keep_planes((0, 5, 7), 1), (0, 5, 7))


def test_uncertainty_widens_few_estimates_and_keeps_a_floor():
    parts = np.array([[0.0, 1.0, 2.0], [0.2, 1.2, 2.4]])
    se = parts.std(axis=0, ddof=1) / np.sqrt(2)
    u = uncertainty(parts, np.zeros(3), 40)
    np.testing.assert_allclose(u, np.sqrt((se * SMALL_SAMPLE[2]) ** 2 + FLOOR_PX**2))
    # from five estimates on, the standard error as it is
    many = np.arange(15, dtype=float).reshape(5, 3)
    np.testing.assert_allclose(
        uncertainty(many, np.zeros(3), 40), np.sqrt((many.std(axis=0, ddof=1) / np.sqrt(5)) ** 2 + FLOOR_PX**2)
    )
    # the refinement step adds in quadrature; thin stacks and single planes have their floors
    np.testing.assert_allclose(uncertainty(parts[:1], np.array([0.3, 0.0, 0.4]), 40), np.hypot([0.3, 0, 0.4], FLOOR_PX))
    np.testing.assert_allclose(floor(4), THIN_FLOOR)
    np.testing.assert_allclose(floor(1), (0.0, FLOOR_PX, FLOOR_PX))


def test_a_y_x_shift_zero_within_its_uncertainty_is_said_with_its_numbers():
    from napari_fidreg.core.confidence import _zero_yx

    assert _zero_yx(np.array([0.0, 0.0]), np.array([0.1, 0.1])) == "the shift is zero in y/x"
    said = _zero_yx(np.array([0.002, 0.345]), np.array([0.6, 0.75]))
    assert said == "the y/x shift (+0.002, +0.345) px is zero within its uncertainty (±0.75 px)"
    flat = fiducial_pair((1, 168, 145), (0.0, 0.0, 0.0), seed=5)  # a single image that did not move
    reg = register(flat.reference, flat.moving)
    notes = [w for w in reg.warnings if "camera's fixed pattern" in w]
    dy, dx = reg.global_shift[1:]
    assert notes and notes[0].startswith(f"the y/x shift ({dy:+.3f}, {dx:+.3f}) px is zero within its uncertainty")
    assert "a single plane is too few" in notes[0] and "1 planes" not in notes[0]
