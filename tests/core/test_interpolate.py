"""Linear-interpolation taps and matrices: clipping, weights, edges held."""

import numpy as np
import pytest

from napari_fidreg.core.interpolate import interp_matrix, linear_taps


def test_linear_taps_clips_index_and_weight():
    pos = np.array([-1.5, 0.0, 0.25, 1.0, 2.5, 3.0, 3.7, 10.0], np.float32)
    idx, w = linear_taps(pos, 4)
    np.testing.assert_array_equal(idx, [0, 0, 0, 1, 2, 2, 2, 2])
    np.testing.assert_allclose(w, [0.0, 0.0, 0.25, 0.0, 0.5, 1.0, 1.0, 1.0])
    assert idx.dtype == np.int32 and w.dtype == np.float32
    # the upper sample always exists
    assert idx.min() >= 0 and (idx + 1).max() <= 3


def test_linear_taps_overwrites_its_input_with_the_weights():
    pos = np.array([0.5, 1.75, 5.0], np.float32)
    idx, w = linear_taps(pos, 3)
    assert w is pos
    np.testing.assert_allclose(pos, [0.5, 0.75, 1.0])
    np.testing.assert_array_equal(idx, [0, 1, 1])


def test_linear_taps_interpolates_and_holds_the_edges():
    samples = np.array([10.0, 20.0, 40.0, 80.0])
    pos = np.array([-3.0, 0.0, 0.5, 1.25, 2.0, 2.75, 3.0, 7.0], np.float32)
    idx, w = linear_taps(pos.copy(), len(samples))
    upper = np.minimum(idx + 1, len(samples) - 1)
    values = samples[idx] * (1 - w) + samples[upper] * w
    np.testing.assert_allclose(values, [10, 10, 15, 25, 40, 70, 80, 80])
    np.testing.assert_allclose(values, np.interp(pos, np.arange(4), samples))


def test_linear_taps_keeps_the_shape_of_a_2d_field():
    pos = np.arange(12, dtype=np.float32).reshape(3, 4) / 2 - 1
    idx, w = linear_taps(pos, 5)
    assert idx.shape == w.shape == (3, 4)
    np.testing.assert_array_equal(idx[0], [0, 0, 0, 0])
    np.testing.assert_allclose(w[0], [0, 0, 0, 0.5])


@pytest.mark.parametrize("n", [1, 2])
def test_linear_taps_for_one_or_two_samples(n):
    idx, w = linear_taps(np.array([-1.0, 0.0, 0.4, 1.0, 3.0], np.float32), n)
    np.testing.assert_array_equal(idx, 0)
    samples = np.arange(1, n + 1, dtype=float)
    values = samples[idx] * (1 - w) + samples[np.minimum(idx + 1, n - 1)] * w
    expected = [1, 1, 1, 1, 1] if n == 1 else [1, 1, 1.4, 2, 2]
    np.testing.assert_allclose(values, expected)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_interp_matrix_rows_sum_to_one_with_two_adjacent_taps(n):
    coords = np.random.default_rng(3).uniform(-3, n + 3, 50)
    m = interp_matrix(coords, n)
    assert m.shape == (50, n) and m.dtype == np.float32
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)
    assert m.min() >= 0
    for row in m:
        nonzero = np.flatnonzero(row)
        assert 1 <= len(nonzero) <= 2 and np.ptp(nonzero) <= 1


def test_interp_matrix_interpolates_a_linear_ramp_exactly_and_holds_edges():
    n = 9
    ramp = 2.5 + 1.5 * np.arange(n)
    coords = np.concatenate([np.linspace(-4, n + 3, 61), [0, n - 1, 3.5]])
    m = interp_matrix(coords, n)
    expected = 2.5 + 1.5 * np.clip(coords, 0, n - 1)
    np.testing.assert_allclose(m @ ramp, expected, atol=1e-4)
    below, above = coords < 0, coords > n - 1
    assert below.any() and above.any()
    np.testing.assert_array_equal(m[below], np.eye(n, dtype=np.float32)[[0] * below.sum()])
    np.testing.assert_array_equal(m[above], np.eye(n, dtype=np.float32)[[n - 1] * above.sum()])


def test_interp_matrix_integer_coordinates_pick_one_sample_and_leave_the_input_alone():
    coords = np.array([0, 3, 1, 4], np.float32)
    m = interp_matrix(coords, 5)
    np.testing.assert_array_equal(m, np.eye(5, dtype=np.float32)[[0, 3, 1, 4]])
    np.testing.assert_array_equal(coords, [0, 3, 1, 4])  # unlike linear_taps, the caller's array is kept
