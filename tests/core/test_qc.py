"""QC numbers and images: projections, their cleaning, correlation scores, the overlay."""

import numpy as np
import pytest

from napari_fidreg.core import alignment_score, projections
from napari_fidreg.core.preprocess import bin_mean
from napari_fidreg.core.qc import QC_SIZE, Reduction, _reduced, data_pixels, display_bin, ncc, overlay_rgb, stretch
from napari_fidreg.core.synthetic import fiducial_pair


@pytest.fixture(scope="module")
def aligned():
    """A pair without any shift: the same beads, different noise and illumination."""
    pair = fiducial_pair((16, 96, 96), (0.0, 0.0, 0.0), seed=3)
    pair.reference.setflags(write=False)
    pair.moving.setflags(write=False)
    return pair


def speckled(hot=(17, 23), bead=(6, 30, 10)):
    """Noise on a flat background, one hot pixel (every plane) and one bead (a few planes)."""
    rng = np.random.default_rng(1)
    vol = rng.normal(200, 5, (12, 40, 48)).astype(np.float32)
    vol[:, hot[0], hot[1]] += 2000
    z, y, x = np.ogrid[0:12, 0:40, 0:48]
    vol += 1000 * np.exp(-0.5 * (((z - bead[0]) / 1.5) ** 2 + ((y - bead[1]) / 1.3) ** 2 + ((x - bead[2]) / 1.3) ** 2))
    return vol


@pytest.mark.parametrize("chunk", [3, 8, 100])
def test_raw_projections_are_maximum_projections(chunk):
    vol = np.random.default_rng(0).integers(0, 5000, (7, 10, 12)).astype(np.uint16)
    p = projections(vol, clean=False, chunk=chunk)
    assert set(p) == {"xy", "xz", "yz"}
    assert p["xy"].shape == (10, 12) and p["xz"].shape == (7, 12) and p["yz"].shape == (7, 10)
    assert all(v.dtype == np.float32 for v in p.values())
    np.testing.assert_array_equal(p["xy"], vol.max(axis=0))
    np.testing.assert_array_equal(p["xz"], vol.max(axis=1))
    np.testing.assert_array_equal(p["yz"], vol.max(axis=2))


def test_cleaning_removes_a_hot_pixel_column_and_keeps_a_bead():
    vol = speckled()
    raw = projections(vol, clean=False)
    clean = projections(vol, chunk=5)
    assert raw["xz"][:, 23].min() > 2000  # the hot pixel: a bright column through every plane
    assert clean["xz"][:, 23].max() < 60  # gone: at the level of the cleaned noise
    assert clean["xy"][17, 23] < 60
    assert clean["xy"][30, 10] > 800  # the bead stays, its background removed
    assert clean["xz"][6, 10] > 800 and clean["yz"][6, 30] > 800
    for v in clean.values():
        assert v.min() >= 0  # negative residuals are clipped
    assert np.median(clean["xy"]) < 0.1 * np.median(raw["xy"])  # the flat background is gone


def test_cleaning_leaves_the_fill_of_a_corrected_stack_at_zero():
    vol = speckled()
    vol[:, :, :6] = 0  # what a correction fills in where the source was outside the moving stack
    clean = projections(vol)
    np.testing.assert_array_equal(clean["xy"][:, :6], 0)
    np.testing.assert_array_equal(clean["xz"][:, :6], 0)
    assert clean["xy"][30, 10] > 800
    assert clean["xz"][:, 23].max() < 60


def test_projections_do_not_modify_a_read_only_input():
    vol = speckled()
    before = vol.copy()
    vol.setflags(write=False)
    projections(vol, chunk=4)
    np.testing.assert_array_equal(vol, before)


def test_ncc():
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, (20, 30))
    b = a + rng.normal(0, 1, a.shape)
    assert ncc(a, a) == pytest.approx(1.0)
    assert ncc(a, 3 * a + 7) == pytest.approx(1.0)
    assert ncc(a, -a) == pytest.approx(-1.0)
    assert ncc(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)
    assert ncc(np.full((4, 4), 3.0), a[:4, :4]) == 0.0
    assert isinstance(ncc(a, b), float)


def test_alignment_score_is_higher_for_an_aligned_pair(aligned):
    ref, mov = aligned.reference, aligned.moving
    misaligned = np.roll(mov, (6, -5), axis=(1, 2))
    good = alignment_score(ref, mov)
    bad = alignment_score(ref, misaligned)
    assert good > 0.9
    assert bad < 0.2
    assert alignment_score(ref, ref) == pytest.approx(1.0)
    # projections can be given instead of stacks
    assert alignment_score(projections(ref), projections(mov)) == pytest.approx(good)
    # stacks of different sizes are compared on their common region
    assert alignment_score(ref, mov[:, :80, :90]) > 0.9


def test_a_shifted_pair_scores_low_but_raw_data_would_reward_it(aligned):
    """Camera-fixed hot pixels and illumination correlate whatever the sample did: hence the cleaning."""
    shifted = fiducial_pair((16, 96, 96), (1.0, 4.0, -3.0), seed=3)
    clean = alignment_score(shifted.reference, shifted.moving)
    assert clean < alignment_score(aligned.reference, aligned.moving) - 0.5
    raw = alignment_score(shifted.reference, shifted.moving, clean=False)
    assert raw > clean + 0.2


def test_overlay_rgb_is_green_magenta_and_white_where_they_coincide():
    green = np.zeros((20, 30))
    magenta = np.zeros((20, 30))
    green[:, :20] = 1
    magenta[:, 10:] = 5
    rgb = overlay_rgb(green, magenta)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)
    np.testing.assert_array_equal(rgb[:, :10], np.broadcast_to([0, 255, 0], (20, 10, 3)))
    np.testing.assert_array_equal(rgb[:, 10:20], 255)
    np.testing.assert_array_equal(rgb[:, 20:], np.broadcast_to([255, 0, 255], (20, 10, 3)))


def test_overlay_rgb_crops_to_the_common_shape():
    rng = np.random.default_rng(2)
    rgb = overlay_rgb(rng.normal(size=(20, 30)), rng.normal(size=(25, 28)))
    assert rgb.shape == (20, 28, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])  # magenta is red + blue


def test_stretch_maps_the_1st_to_998th_percentiles_onto_0_1():
    img = np.arange(1000, dtype=np.float64).reshape(20, 50)
    lo, hi = np.percentile(img, (1, 99.8))
    out = stretch(img)
    assert out.dtype.kind == "f" and out.shape == img.shape
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_array_equal(out.ravel()[:10], 0)  # below the 1st percentile
    np.testing.assert_array_equal(out.ravel()[998:], 1)  # above the 99.8th
    assert out.ravel()[500] == pytest.approx((500 - lo) / (hi - lo), rel=1e-6)
    assert np.all(np.diff(out.ravel()) >= 0)


def test_stretch_of_a_constant_or_integer_image():
    np.testing.assert_array_equal(stretch(np.full((4, 5), 9, np.uint16)), np.zeros((4, 5), np.float32))
    out = stretch(np.array([[0, 100], [200, 65535]], np.uint16))
    assert out.dtype.kind == "f" and out[0, 0] == 0 and out[1, 1] == 1


@pytest.mark.parametrize("order", ["in order", "reversed", "shuffled"])
def test_a_reduction_fed_as_planes_are_made_gives_the_projections(aligned, order):
    vol = aligned.moving.astype(np.float32)
    vol[:2, :40] = 0  # a correction's fill in the first planes
    red = Reduction(vol.shape, 3)
    zs = list(range(vol.shape[0]))
    zs = {"in order": zs, "reversed": zs[::-1], "shuffled": list(np.random.default_rng(1).permutation(zs))}[order]
    for z in zs:  # the warp's threads finish planes in any order
        assert not red.complete
        red.add_plane(z, vol[z])
    assert red.complete
    want = projections(vol, bin=3, chunk=4)
    got = red.projections(chunk=4)
    for key in ("xy", "xz", "yz"):
        np.testing.assert_array_equal(got[key], want[key])


def test_a_reduction_refuses_a_plane_that_is_not_one_of_its_stack(aligned):
    red = Reduction(aligned.moving.shape, 2)
    for z, plane in ((-1, aligned.moving[0]), (16, aligned.moving[0]), (0, aligned.moving[0, :95])):
        with pytest.raises(ValueError, match="is not a plane of this 16x96x96 stack"):
            red.add_plane(z, plane)
    assert not red._made.any()


def test_a_reduction_refuses_projections_before_every_plane_is_fed(aligned):
    red = Reduction(aligned.moving.shape, 2)
    for z in range(8):
        red.add_plane(z, aligned.moving[z])
    with pytest.raises(ValueError, match="8 of 16 planes"):
        red.projections()


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int16, np.uint8])
@pytest.mark.parametrize("bin", [1, 3, 6])
def test_the_reduction_rounds_as_the_coarse_scan_s_binning(dtype, bin):
    """bin_data against bin_mean's arithmetic (the coarse scan's: float32 row sums, sum / n,
    then / (1 - fill)), to the bit: a rounding difference can flip a hot-pixel decision."""
    rng = np.random.default_rng(7)
    vol = (rng.gamma(2.0, 30.0, (5, 37, 41)) * (1.37 if np.dtype(dtype).kind == "f" else 1)).astype(dtype)
    vol[1, :9, :] = 0  # fill: whole bins, and partly filled bins along its edge
    vol[2][rng.random((37, 41)) < 0.2] = 0
    want = bin_mean(vol, bin)
    if bin > 1:
        fill = bin_mean((vol == 0).view(np.uint8), bin)
        partial = (fill > 0) & (fill <= 0.5)
        want[partial] /= 1 - fill[partial]
        want[fill > 0.5] = 0
    np.testing.assert_array_equal(_reduced(vol, bin), want)


def test_bins_partly_of_fill_average_their_stack_pixels_only():
    vol = np.full((3, 8, 8), 100, np.uint16)
    vol[:, :, :1] = 0  # a quarter of each 4x4 bin of the first column of bins is fill
    vol[:, :3, :] = 0  # the first row of bins: three quarters fill
    small = _reduced(vol, 4)
    np.testing.assert_array_equal(small[:, 1, :], 100)  # not diluted to 75
    np.testing.assert_array_equal(small[:, 0, :], 0)  # mostly fill stays fill


def test_display_bin_brings_a_stack_to_the_qc_size():
    assert display_bin((60, 2048, 2048)) == 6  # the coarse scan's binning
    assert display_bin((40, 175, 104)) == 1
    assert display_bin((60, 385, 200)) == 2
    for shape in ((60, 2048, 2048), (5, 1000, 3000), (1, 384, 384)):
        assert max(shape[1:]) / display_bin(shape) <= QC_SIZE


def test_scores_compare_the_pixels_where_the_corrected_stack_has_data():
    from napari_fidreg.core import register, warp

    pair = fiducial_pair((20, 96, 96), (0.4, 0.3, -0.2), seed=8)
    reg = register(pair.reference, pair.moving)
    ref, before = projections(pair.reference), projections(pair.moving)
    after = projections(warp(pair.moving, reg))
    where = data_pixels(after)
    # a z shift of 0.4 leaves one edge plane without a source: fill, a black row in XZ
    edge = 0 if reg.global_shift[0] > 0 else -1
    assert not where["xz"][edge].any() and where["xz"][5, 2:-2].all()  # (and a strip at an x edge)
    assert where["xy"].mean() > 0.85  # the rims that the y/x shift left without a source, no more
    assert alignment_score(ref, after, where=where) > alignment_score(ref, before, where=where)
    # without the mask the fill row counts against the correction
    assert alignment_score(ref, after) < alignment_score(ref, after, where=where)
    assert data_pixels(projections(pair.moving[:1])) is None  # a single plane: no such test


def test_a_score_compares_the_region_that_both_projections_and_the_mask_cover():
    pair = fiducial_pair((20, 96, 96), (0.4, 0.3, -0.2), seed=8)
    ref, image = projections(pair.reference), projections(pair.moving[:, 4:, 2:])  # smaller
    where = data_pixels(projections(pair.moving[:, 6:, 5:]))  # smaller again: a corrected stack's
    score = alignment_score(ref, image, where=where)
    # the same as on the arrays cropped to the mask's region by hand
    crop = {k: {"xy": p["xy"][:90, :91], "xz": p["xz"][:, :91]} for k, p in (("r", ref), ("i", image))}
    assert score == pytest.approx(alignment_score(crop["r"], crop["i"], where=where))
