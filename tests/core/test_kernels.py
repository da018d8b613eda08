"""The compiled kernels against plain numpy / scipy references on small random arrays."""

import numpy as np
import pytest
from scipy import ndimage

from napari_fidreg.core.interpolate import linear_taps
from napari_fidreg.core.kernels import (
    bin_data,
    bin_planes,
    box_extreme,
    median9_at,
    normalize_window,
    sample_plane,
    sample_plane_yx,
    subtract_rows,
)

NO_MIN = np.zeros((0, 0), dtype=np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def binned_sums(planes, y0, y1, x0, x1, factor):
    """Reference for bin_planes: sums over factor x factor bins of [y0, y1) x [x0, x1), ragged edges included."""
    nby, nbx = -(-(y1 - y0) // factor), -(-(x1 - x0) // factor)
    out = np.zeros((planes.shape[0], nby, nbx))
    for by in range(nby):
        for bx in range(nbx):
            ys = slice(y0 + by * factor, min(y0 + (by + 1) * factor, y1))
            xs = slice(x0 + bx * factor, min(x0 + (bx + 1) * factor, x1))
            out[:, by, bx] = planes[:, ys, xs].sum(axis=(1, 2), dtype=np.float64)
    return out


@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_median9_at_is_the_3x3_median_with_edges_repeated(rng, values):
    shape = (40, 57)
    img = (rng.normal(100, 20, shape) if values == "distinct" else rng.integers(0, 4, shape)).astype(np.float32)
    want = ndimage.median_filter(img, size=3, mode="nearest")
    ys, xs = np.divmod(np.arange(img.size), img.shape[1])
    got = np.empty(img.size, np.float32)
    median9_at(img, ys, xs, got)
    np.testing.assert_array_equal(got.reshape(img.shape), want)


@pytest.mark.parametrize("half", [1, 2, 4, 9])
@pytest.mark.parametrize("use_max", [False, True])
def test_box_extreme_is_ndimage_s_minimum_or_maximum_filter(rng, half, use_max):
    vol = rng.normal(100, 20, (3, 13, 17)).astype(np.float32)
    want = (ndimage.maximum_filter if use_max else ndimage.minimum_filter)(vol, size=(1, 2 * half + 1, 2 * half + 1),
                                                                           mode="nearest")  # fmt: skip
    got = np.empty_like(vol)
    box_extreme(vol, half, use_max, got)
    np.testing.assert_array_equal(got, want)
    box_extreme(vol, half, use_max, vol)  # in place
    np.testing.assert_array_equal(vol, want)


@pytest.mark.parametrize(
    ("shape", "sigma"),
    [((8, 171, 171), 0.667), ((64, 22, 22), 0.6667), ((3, 50, 40), 2.5), ((2, 5, 7), 1.3), ((1, 1, 9), 1.0),
     ((2, 3, 1), 4.0), ((1, 6, 6), 0.1), ((2, 6, 6), 1e-16), ((2, 6, 6), 1e-160), ((2, 6, 6), 1e-200)],
)  # fmt: skip
def test_gaussian_yx_is_ndimage_s_gaussian_filter_to_the_bit(rng, shape, sigma):
    from napari_fidreg.core.kernels import gaussian_yx
    from napari_fidreg.core.preprocess import gaussian_weights

    vol = (rng.random(shape) * 1000 - 100).astype(np.float32)
    got = np.empty_like(vol)
    gaussian_yx(vol, gaussian_weights(sigma), got)
    np.testing.assert_array_equal(got, ndimage.gaussian_filter(vol, sigma=(0, sigma, sigma), mode="nearest"))


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 5), (1, 4, 1), (1, 2, 3)])
def test_the_new_kernels_on_frames_of_a_pixel_or_a_line(rng, shape):
    vol = rng.normal(100, 20, shape).astype(np.float32)
    for half in (1, 3):
        got = np.empty_like(vol)
        box_extreme(vol, half, False, got)
        np.testing.assert_array_equal(got, ndimage.minimum_filter(vol, size=(1, 2 * half + 1, 2 * half + 1),
                                                                  mode="nearest"))  # fmt: skip
    ys, xs = np.divmod(np.arange(shape[1] * shape[2]), shape[2])
    med = np.empty(ys.size, np.float32)
    median9_at(vol[0], ys, xs, med)
    np.testing.assert_array_equal(med.reshape(shape[1:]), ndimage.median_filter(vol[0], size=3, mode="nearest"))
    small = np.empty((shape[0], 1, 1), np.float32)
    bin_data(vol, 8, small)  # one bin larger than the frame: its mean
    np.testing.assert_allclose(small[:, 0, 0], vol.mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.uint8])
@pytest.mark.parametrize("shape,factor", [((3, 12, 16), 4), ((3, 13, 11), 4), ((2, 12, 16), 1), ((2, 7, 9), 16)])
def test_bin_data_averages_the_non_zero_pixels_of_each_bin(rng, dtype, shape, factor):
    planes = rng.integers(1, 200, shape).astype(dtype)
    planes[rng.random(shape) < 0.3] = 0  # fill scattered over the bins, some bins mostly fill
    planes[0, :5, :] = 0  # whole bins of fill
    nz, ny, nx = shape
    got = np.full((nz, -(-ny // factor), -(-nx // factor)), np.nan, np.float32)  # every bin written
    bin_data(planes, factor, got)
    for by in range(got.shape[1]):
        for bx in range(got.shape[2]):
            cell = planes[:, by * factor : (by + 1) * factor, bx * factor : (bx + 1) * factor].reshape(nz, -1)
            data = cell != 0
            mean = cell.sum(axis=1, dtype=np.float64) / np.maximum(data.sum(axis=1), 1)
            want = np.where(2 * (~data).sum(axis=1) <= cell.shape[1], mean, 0.0)
            np.testing.assert_allclose(got[:, by, bx], want, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize(
    "region,factor",
    [((0, 12, 0, 16), 4), ((2, 11, 1, 14), 4), ((0, 12, 0, 16), 1), ((3, 12, 5, 16), 5), ((0, 12, 0, 16), 16)],
)
def test_bin_planes_sums_each_bin_and_takes_the_minimum_over_z(rng, dtype, region, factor):
    planes = rng.integers(0, 1000, (4, 12, 16)).astype(dtype)
    y0, y1, x0, x1 = region
    expected = binned_sums(planes, y0, y1, x0, x1, factor)
    small = np.ones(expected.shape, np.float32)  # the kernel adds to what is there
    zmin = rng.integers(0, 1200, (12, 16)).astype(dtype)  # a minimum carried over from earlier planes
    start = zmin.copy()
    bin_planes(planes, y0, y1, x0, x1, factor, small, zmin)
    np.testing.assert_allclose(small, expected + 1, rtol=1e-6)
    # the minimum covers the whole frame, not only the binned region
    np.testing.assert_array_equal(zmin, np.minimum(start, planes.min(axis=0)))


def test_bin_planes_with_an_empty_zmin_only_bins(rng):
    planes = rng.normal(100, 20, (3, 10, 9)).astype(np.float32)
    small = np.zeros((3, 4, 3), np.float32)
    no_min = NO_MIN.copy()
    bin_planes(planes, 0, 10, 0, 9, 3, small, no_min)
    np.testing.assert_allclose(small, binned_sums(planes, 0, 10, 0, 9, 3), rtol=1e-5)
    assert no_min.shape == (0, 0)


def test_bin_planes_accumulates_over_calls(rng):
    """Two halves of a stack's planes added into one binned copy, as the coarse step reads in chunks."""
    planes = rng.integers(0, 500, (6, 8, 8)).astype(np.uint16)
    small = np.zeros((3, 4, 4), np.float32)
    bin_planes(planes[:3], 0, 8, 0, 8, 2, small, NO_MIN)
    bin_planes(planes[3:], 0, 8, 0, 8, 2, small, NO_MIN)
    np.testing.assert_allclose(small, binned_sums(planes[:3], 0, 8, 0, 8, 2) + binned_sums(planes[3:], 0, 8, 0, 8, 2))


def test_subtract_rows_removes_the_interpolated_rows(rng):
    nz, ny, nx, nrows = 3, 9, 11, 4
    block = rng.normal(0, 10, (nz, ny, nx)).astype(np.float32)
    rows = rng.normal(5, 3, (nz, nrows, nx)).astype(np.float32)
    i0 = rng.integers(0, nrows - 1, ny)
    i1 = np.minimum(i0 + 1, nrows - 1)
    w = rng.uniform(0, 1, ny).astype(np.float32)
    wy = w[None, :, None].astype(np.float64)
    expected = block.astype(np.float64) - ((1 - wy) * rows[:, i0] + wy * rows[:, i1])
    subtract_rows(block, rows, i0, i1, w)
    np.testing.assert_allclose(block, expected, rtol=1e-5, atol=1e-4)


def test_subtract_rows_with_integer_weights_picks_one_row(rng):
    block = np.zeros((2, 3, 5), np.float32)
    rows = rng.normal(0, 1, (2, 3, 5)).astype(np.float32)
    i0 = np.array([0, 1, 1])
    i1 = np.array([1, 2, 2])
    w = np.array([0.0, 0.0, 1.0], np.float32)
    subtract_rows(block, rows, i0, i1, w)
    np.testing.assert_array_equal(block, -rows[:, [0, 1, 2]])


def test_normalize_window_zero_mean_unit_variance_times_window(rng):
    vol = rng.normal(300, 40, (5, 7, 9)).astype(np.float32)
    wz, wy, wx = (rng.uniform(0.1, 1, n).astype(np.float32) for n in vol.shape)
    v = vol.astype(np.float64)
    expected = (v - v.mean()) / v.std() * wz[:, None, None] * wy[None, :, None] * wx[None, None, :]
    energy = normalize_window(vol, wz, wy, wx)
    np.testing.assert_allclose(vol, expected, rtol=1e-4, atol=1e-4)
    assert energy == pytest.approx(np.sum(expected**2), rel=1e-4)
    assert energy == pytest.approx(float(np.sum(vol.astype(np.float64) ** 2)), rel=1e-5)


def test_normalize_window_without_window_standardises(rng):
    vol = rng.uniform(0, 1000, (4, 6, 8)).astype(np.float32)
    ones = [np.ones(n, np.float32) for n in vol.shape]
    energy = normalize_window(vol, *ones)
    assert abs(float(vol.mean())) < 1e-4
    assert float(vol.std()) == pytest.approx(1.0, rel=1e-4)
    assert energy == pytest.approx(vol.size, rel=1e-4)


def test_normalize_window_of_a_constant_volume_is_zero_with_zero_energy():
    vol = np.full((3, 4, 5), 7.0, np.float32)
    ones = [np.ones(n, np.float32) for n in vol.shape]
    assert normalize_window(vol, *ones) == 0.0
    np.testing.assert_array_equal(vol, 0)


def reference_sample(src, z, shift, out_shape, fill):
    """trilinear src at (z - dz, y - dy, x - dx) (scipy, order 1), fill where outside the stack."""
    yy, xx = np.mgrid[0 : out_shape[0], 0 : out_shape[1]].astype(np.float64)
    coords = np.array([np.full(yy.shape, z - shift[0]), yy - shift[1], xx - shift[2]])
    values = ndimage.map_coordinates(src.astype(np.float64), coords, order=1, mode="nearest")
    tol = 1e-4
    inside = np.all([(coords[k] >= -tol) & (coords[k] <= src.shape[k] - 1 + tol) for k in range(3)], axis=0)
    return np.where(inside, values, fill), inside


def field_planes(shift, shape):
    return tuple(np.full(shape, s, np.float32) for s in shift)


def yx_tables(shift, src_shape, out_shape):
    """The z-invariant tables of sample_plane_yx, from the public linear_taps."""
    _, ny, nx = src_shape
    _, sy, sx = field_planes(shift, out_shape)
    ys = np.arange(out_shape[0], dtype=np.float32)[:, None] - sy
    xs = np.arange(out_shape[1], dtype=np.float32)[None, :] - sx
    tol = 1e-4
    inside = (ys >= -tol) & (xs >= -tol) & (ys <= ny - 1 + tol) & (xs <= nx - 1 + tol)
    y0, fy = linear_taps(ys, ny)
    x0, fx = linear_taps(xs, nx)
    zs_base = np.full(out_shape, -shift[0], np.float32)
    return zs_base, y0, x0, fy, fx, inside


SHIFTS = [(0.3, -1.6, 2.25), (-0.7, 0.45, -3.1), (0.0, 0.0, 0.0), (1.5, 2.5, 0.5)]


@pytest.mark.parametrize("shift", SHIFTS)
def test_sample_plane_matches_map_coordinates_for_a_constant_shift(rng, shift):
    src = rng.normal(100, 30, (6, 9, 10)).astype(np.float32)
    out_shape = (8, 11)  # the output grid need not be the source's
    sz, sy, sx = field_planes(shift, out_shape)
    out = np.empty(out_shape, np.float32)
    n_inside = 0
    for z in range(6):
        sample_plane(src, float(z), 0.0, sz, sy, sx, -7.0, 0.0, 0.0, False, out)
        expected, inside = reference_sample(src, z, shift, out_shape, -7.0)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
        n_inside += int(inside.sum())
    assert 0 < n_inside < 6 * out.size  # both interpolated and filled voxels were checked


def test_sample_plane_reads_a_slab_starting_at_z_offset(rng):
    src = rng.normal(100, 30, (7, 8, 8)).astype(np.float32)
    shift = (0.3, 0.5, -0.25)
    sz, sy, sx = field_planes(shift, (8, 8))
    full, part = np.empty((8, 8), np.float32), np.empty((8, 8), np.float32)
    for z in (2, 3, 4):  # sources at z - 0.3 lie inside planes [1, 5) of the stack
        sample_plane(src, float(z), 0.0, sz, sy, sx, 0.0, 0.0, 0.0, False, full)
        sample_plane(src[1:5], float(z), 1.0, sz, sy, sx, 0.0, 0.0, 0.0, False, part)
        np.testing.assert_array_equal(part, full)
    sample_plane(src[1:5], 6.0, 1.0, sz, sy, sx, -1.0, 0.0, 0.0, False, part)  # source beyond the slab
    np.testing.assert_array_equal(part, -1.0)


@pytest.mark.parametrize("shift", SHIFTS)
def test_sample_plane_yx_matches_map_coordinates_and_sample_plane(rng, shift):
    src = rng.normal(100, 30, (6, 9, 10)).astype(np.float32)
    out_shape = (9, 12)
    tables = yx_tables(shift, src.shape, out_shape)
    sz, sy, sx = field_planes(shift, out_shape)
    out, general = np.empty(out_shape, np.float32), np.empty(out_shape, np.float32)
    for z in range(6):
        sample_plane_yx(src, float(z), *tables, -7.0, 0.0, 0.0, False, out)
        expected, _ = reference_sample(src, z, shift, out_shape, -7.0)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)
        sample_plane(src, float(z), 0.0, sz, sy, sx, -7.0, 0.0, 0.0, False, general)
        np.testing.assert_allclose(out, general, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("kernel", ["sample_plane", "sample_plane_yx"])
@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8])
def test_integer_outputs_are_rounded_and_clipped(rng, kernel, dtype):
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)
    span = hi - lo
    # integer samples beyond the output range, and shifts in quarters: every interpolated
    # value is a multiple of 1/64, exact in float32 and float64, halves included
    src = rng.integers(int(lo - 0.2 * span), int(hi + 0.2 * span), (5, 8, 9)).astype(np.float32)
    src[:, :, :3] = lo - 1000  # columns far beyond either end of the range
    src[:, :, -3:] = hi + 1000
    shift = (0.5, -0.25, 1.75)
    out_shape = (8, 9)
    out = np.empty(out_shape, dtype)
    seen = []
    for z in range(5):
        if kernel == "sample_plane":
            sample_plane(src, float(z), 0.0, *field_planes(shift, out_shape), 3.0, lo, hi, True, out)
        else:
            sample_plane_yx(src, float(z), *yx_tables(shift, src.shape, out_shape), 3.0, lo, hi, True, out)
        expected, inside = reference_sample(src, z, shift, out_shape, 3.0)
        rounded = np.where(inside, np.clip(np.floor(expected + 0.5), lo, hi), 3.0)
        np.testing.assert_array_equal(out, rounded.astype(dtype))
        seen.append(out[inside].copy())
    seen = np.concatenate(seen)
    assert seen.min() == lo and seen.max() == hi  # clipping happened at both ends


def test_warm_up_loads_the_signature_a_registration_uses():
    """The GUI's warm-up dispatches a kernel with the types the engine passes it: a registration
    afterwards adds no signature of its own (so the warm-up never compiled one for nothing)."""
    import subprocess
    import sys

    code = (
        "from napari_fidreg.core import register, synthetic\n"
        "from napari_fidreg.core.kernels import gaussian_yx, warm_up\n"
        "warm_up()\n"
        "warmed = list(gaussian_yx.signatures)\n"
        "pair = synthetic.fiducial_pair((12, 64, 64), (0.5, 1.2, -2.0), seed=3)\n"
        "register(pair.reference, pair.moving)\n"
        "print(len(warmed), warmed == list(gaussian_yx.signatures))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True"], out.stderr
