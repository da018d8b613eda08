import numpy as np
import pytest

from napari_fidreg.core.preprocess import (
    hot_pixel_mask,
    replace_hot_pixels,
    subtract_background,
    window_1d,
    window_autocorrelation,
)
from napari_fidreg.core.synthetic import fiducial_pair


def test_hot_pixels_found_exactly_and_not_beads():
    pair = fiducial_pair((40, 128, 128), (0, 0, 0), n_hot_pixels=12, seed=3)
    mask = hot_pixel_mask(pair.reference.min(axis=0))
    found = set(zip(*np.nonzero(mask)))
    truth = {tuple(p) for p in pair.hot_pixels}
    assert found == truth


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_hot_pixels_of_quantised_data_are_the_cameras_not_the_noise(dtype):
    # 8-bit counts (the 16-bit pair divided by 32): most pixels equal their 3x3 median, so
    # the residuals' MAD is 0; the noise floor is then the data's step, not a millionth
    pair = fiducial_pair((40, 128, 128), (0, 0, 0), n_hot_pixels=12, seed=3)
    scale = 32 if dtype == np.uint8 else 1
    stack = np.clip(pair.reference // scale, 0, np.iinfo(dtype).max).astype(dtype)
    found = set(zip(*np.nonzero(hot_pixel_mask(stack.min(axis=0)))))
    assert found == {tuple(p) for p in pair.hot_pixels}


def test_hot_pixel_mask_ignores_a_bead_in_a_single_plane():
    img = np.full((64, 64), 100.0, np.float32)
    yy, xx = np.mgrid[:64, :64]
    img += 2000 * np.exp(-((yy - 30.3) ** 2 + (xx - 20.6) ** 2) / (2 * 1.3**2))
    img[50, 50] += 2000  # a hot pixel
    mask = hot_pixel_mask(img)
    assert mask[50, 50]
    assert mask.sum() == 1


def test_replace_hot_pixels_uses_neighbours_in_every_plane():
    vol = np.random.default_rng(0).normal(100, 2, (5, 20, 20)).astype(np.float32)
    vol[:, 7, 9] = 5000
    mask = np.zeros((20, 20), bool)
    mask[7, 9] = True
    replace_hot_pixels(vol, mask)
    assert np.all(np.abs(vol[:, 7, 9] - 100) < 8)


def test_background_subtraction_flattens_a_gradient_and_keeps_spots():
    yy, xx = np.mgrid[:128, :128]
    bg = (200 + 3 * yy + 2 * xx).astype(np.float32)
    vol = np.repeat(bg[None], 4, axis=0).copy()
    vol[:, 64, 64] += 1000
    out = subtract_background(vol.copy(), sigma=8)
    flat = np.delete(out[2].ravel(), 64 * 128 + 64)
    assert np.abs(np.median(flat)) < 10  # the gradient spans 200..850 counts
    assert out[2, 64, 64] > 900


def test_window_autocorrelation_of_a_boxcar_is_the_overlap_fraction():
    w = np.ones(10, np.float32)
    a = window_autocorrelation(w, np.array([-3, 0, 2, 12]))
    np.testing.assert_allclose(a, [0.7, 1.0, 0.8, 0.0])


@pytest.mark.parametrize("n", [1, 2, 40])
def test_window_is_positive_and_peaks_in_the_middle(n):
    w = window_1d(n, 0.5)
    assert w.shape == (n,)
    assert np.all(w > 0)
    assert w.max() == w[n // 2]


@pytest.mark.parametrize("n", [3, 4, 10, 39, 60, 256, 257])
@pytest.mark.parametrize("alpha", [0.1, 0.25, 0.5, 0.8, 1.0])
def test_tukey_window_matches_scipy(n, alpha):
    from scipy.signal.windows import tukey as scipy_tukey

    from napari_fidreg.core.preprocess import tukey

    np.testing.assert_allclose(tukey(n, alpha), scipy_tukey(n, alpha), atol=1e-12)


@pytest.mark.parametrize("factor", [1, 3, 12])
def test_bin_mean_averages_each_bin_ragged_edges_included(factor):
    from napari_fidreg.core.preprocess import bin_mean

    vol = np.random.default_rng(0).random((3, 37, 29)).astype(np.float32)
    out = bin_mean(vol, factor)
    ny, nx = -(-37 // factor), -(-29 // factor)
    assert out.shape == (3, ny, nx)
    for by in range(ny):
        for bx in range(nx):
            part = vol[:, by * factor : (by + 1) * factor, bx * factor : (bx + 1) * factor]
            np.testing.assert_allclose(out[:, by, bx], part.mean(axis=(1, 2)), rtol=1e-5)
