import numpy as np
import pytest
from scipy import ndimage

from napari_fidreg.core.correlate import correlate, fourier_shift
from napari_fidreg.core.preprocess import prepare
from napari_fidreg.core.synthetic import fiducial_pair


def _clean(vol):
    return prepare(vol, hot_mask=None, background=True, background_sigma=8)


@pytest.mark.parametrize("shift", [(0.0, 0.0, 0.0), (0.4, -0.3, 0.2), (2.6, 3.4, -4.8)])
def test_sign_convention_matches_scikit_image_and_ndimage(shift):
    """The shift found, applied with ndimage.shift, brings the moving stack onto the reference."""
    from skimage.registration import phase_cross_correlation

    pair = fiducial_pair((40, 96, 96), shift, n_hot_pixels=0, density=4e-3, seed=5)
    ref, mov = _clean(pair.reference), _clean(pair.moving)
    est = correlate(ref.copy(), mov.copy(), max_shift=(8, 8, 8), refine=1)
    np.testing.assert_allclose(est.shift, shift, atol=0.05)
    sk, _, _ = phase_cross_correlation(ref, mov, upsample_factor=10)
    np.testing.assert_allclose(est.shift, sk, atol=0.5)  # same convention as scikit-image
    back = ndimage.shift(mov, est.shift, order=1)
    inner = (slice(6, -6), slice(8, -8), slice(8, -8))
    before = np.corrcoef(ref[inner].ravel(), mov[inner].ravel())[0, 1]
    after = np.corrcoef(ref[inner].ravel(), back[inner].ravel())[0, 1]
    # noise caps the correlation of two independent exposures near 0.8 here
    assert after > 0.7
    if max(abs(v) for v in shift) > 1:
        assert after > before + 0.3


def test_other_way_round_gives_the_opposite_shift():
    pair = fiducial_pair((40, 96, 96), (1.2, -2.7, 3.3), n_hot_pixels=0, density=4e-3, seed=6)
    ref, mov = _clean(pair.reference), _clean(pair.moving)
    a = correlate(ref.copy(), mov.copy(), max_shift=(6, 6, 6), refine=1).shift
    b = correlate(mov.copy(), ref.copy(), max_shift=(6, 6, 6), refine=1).shift
    np.testing.assert_allclose(a, -b, atol=0.03)


def test_score_is_one_for_identical_and_small_for_independent_noise():
    rng = np.random.default_rng(0)
    pair = fiducial_pair((30, 64, 64), (0, 0, 0), n_hot_pixels=0, seed=2)
    ref = _clean(pair.reference)
    same = correlate(ref.copy(), ref.copy(), max_shift=(3, 3, 3))
    assert same.score == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(same.shift, 0, atol=1e-6)
    noise = correlate(
        rng.normal(size=(30, 64, 64)).astype(np.float32),
        rng.normal(size=(30, 64, 64)).astype(np.float32),
        max_shift=(3, 3, 3),
    )
    assert -1 <= noise.score < 0.1
    assert noise.sharpness < same.sharpness / 5


def test_constant_input_gives_zero_score_not_nan():
    est = correlate(np.ones((8, 32, 32), np.float32), np.ones((8, 32, 32), np.float32), max_shift=(2, 2, 2))
    assert est.score == 0.0 and np.all(np.isfinite(est.shift))


def test_no_circular_wraparound_for_shifts_beyond_half_the_block():
    """A shift larger than half the block would alias to the wrong sign in a circular correlation."""
    pair = fiducial_pair((20, 64, 64), (0.0, 0.0, 30.0), n_hot_pixels=0, density=4e-3, seed=8)
    est = correlate(_clean(pair.reference), _clean(pair.moving), max_shift=(2, 2, 40))
    assert est.shift[2] == pytest.approx(30.0, abs=0.1)


def test_fourier_shift_matches_ndimage_for_integer_shifts():
    vol = np.random.default_rng(1).normal(size=(8, 16, 16)).astype(np.float32)
    out = fourier_shift(vol, (1, -2, 3))
    ref = ndimage.shift(vol, (1, -2, 3), order=0, mode="constant")
    np.testing.assert_allclose(out[2:-2, 3:-3, 4:-4], ref[2:-2, 3:-3, 4:-4], atol=1e-4)


def _tilted_texture(shape, seed):
    """Dense texture of streaks elongated along the y = x diagonal (a tilted correlation peak)."""
    rng = np.random.default_rng(seed)
    vol = rng.normal(size=shape)
    cov = np.array([[4.0, 0, 0], [0, 9.0, 8.0], [0, 8.0, 9.0]])  # yx strongly coupled
    g = np.stack(np.meshgrid(*[np.arange(-8, 9)] * 3, indexing="ij"), axis=-1)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", g, np.linalg.inv(cov), g))
    return ndimage.convolve(vol, kernel, mode="wrap").astype(np.float32)


def test_tilted_peak_is_fitted_with_cross_terms():
    """Per-axis 3-point fits through the integer peak miss a tilted peak by ~(cov_xy/cov_yy) x the
    other axes' fraction (0.5 px here); the fit with cross terms recovers it."""
    shift = np.array([0.3, 0.45, -0.4])
    ref = _tilted_texture((32, 64, 64), seed=3)
    mov = fourier_shift(ref, -shift)  # content displaced by -shift: the shift to apply is +shift
    inner = (slice(4, -4), slice(6, -6), slice(6, -6))
    est = correlate(ref[inner].copy(), mov[inner].copy(), max_shift=(3, 3, 3))
    np.testing.assert_allclose(est.shift, shift, atol=0.1)


@pytest.mark.parametrize(
    "shape,limits", [((64, 64, 64), (4, 5, 5)), ((9, 63, 45), (3, 7, 2)), ((1, 40, 41), (0, 6, 39))]
)
def test_the_searched_lags_and_the_sharpness_moments_are_those_of_the_whole_correlation(shape, limits):
    from scipy import fft as sfft

    from napari_fidreg.core.correlate import _lag_window, _spectrum_moments

    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape).astype(np.float32)
    b = (np.roll(a, (1, 2, -3), (0, 1, 2)) + 0.3 * rng.standard_normal(shape)).astype(np.float32)
    product = np.conj(sfft.rfftn(a, shape)) * sfft.rfftn(b, shape)
    full = sfft.irfftn(product, shape)  # what the correlation transformed back in full
    lags = [np.arange(-m, m + 1) for m in limits]
    expected = full[np.ix_(*[lag % n for lag, n in zip(lags, shape)])]
    mean, std = _spectrum_moments(product, shape)
    np.testing.assert_allclose(
        _lag_window(product.copy(), shape, lags, 1), expected, rtol=0, atol=1e-5 * np.abs(full).max()
    )
    assert mean == pytest.approx(full.mean(dtype=np.float64), rel=1e-5, abs=1e-6 * float(full.std()))
    assert std == pytest.approx(full.std(dtype=np.float64), rel=1e-5)
