import threading

import numpy as np
import pytest
from scipy import ndimage

from conftest import cached_pair
from napari_fidreg.core import Registration, register, warp
from napari_fidreg.core.errors import FidregError
from napari_fidreg.core.progress import drain
from napari_fidreg.core.qc import alignment_score
from napari_fidreg.core.warp import iter_warp


def test_global_warp_equals_ndimage_linear_shift():
    rng = np.random.default_rng(0)
    vol = (rng.random((12, 40, 36)) * 1000).astype(np.float32)
    shift = (1.3, -2.6, 4.2)
    out = warp(vol, shift)
    ref = ndimage.shift(vol, shift, order=1, mode="constant", cval=0)
    inner = (slice(3, -3), slice(4, -4), slice(6, -6))
    np.testing.assert_allclose(out[inner], ref[inner], rtol=1e-4, atol=1e-2)
    assert np.all(out[:1] == 0)  # moved in from outside: the fill value
    assert np.all(out[:, :, :4] == 0)


def test_dtype_preserved_and_values_clipped():
    vol = np.full((6, 20, 20), 65535, np.uint16)
    out = warp(vol, (0.0, 0.5, 0.5), fill_value=7)
    assert out.dtype == np.uint16
    assert out[2, 10, 10] == 65535
    assert out[2, 0, 5] == 7


def test_zero_shift_is_identity():
    vol = np.random.default_rng(1).integers(0, 4000, (8, 30, 30)).astype(np.uint16)
    np.testing.assert_array_equal(warp(vol, (0, 0, 0)), vol)


def test_registered_stack_matches_reference_and_applies_to_other_channels():
    pair = cached_pair((60, 256, 256), (1.3, -4.6, 7.25), seed=0)
    reg = register(pair.reference, pair.moving)
    corrected = warp(pair.moving, reg)
    assert alignment_score(pair.reference, corrected) > 0.9
    assert alignment_score(pair.reference, pair.moving) < 0.3
    # another channel of the same round (here: the same beads, scaled) gets the same correction
    other = (pair.moving // 2).astype(np.uint16)
    np.testing.assert_allclose(warp(other, reg).astype(float), corrected.astype(float) / 2, atol=1.01)


def test_block_field_warp_beats_global_on_a_deformed_sample():
    pair = cached_pair((60, 512, 512), (1.2, -5.3, 8.6), seed=4, deformation=(0.5, 1.5, 1.5), empty=True)
    reg = register(pair.reference, pair.moving, block_size=128)
    glob = alignment_score(pair.reference, warp(pair.moving, reg, use_blocks=False))
    local = alignment_score(pair.reference, warp(pair.moving, reg))
    assert local > glob + 0.05, (glob, local)


def test_output_shape_is_the_reference_shape_when_asked():
    vol = np.ones((10, 20, 30), np.uint16)
    assert warp(vol, (0, 0, 0), output_shape=(12, 20, 28)).shape == (12, 20, 28)


def test_warp_from_a_json_round_tripped_registration():
    pair = cached_pair((60, 256, 256), (1.3, -4.6, 7.25), seed=0)
    reg = register(pair.reference, pair.moving, block_size=128)
    again = Registration.from_json(reg.to_json())
    np.testing.assert_array_equal(warp(pair.moving, reg), warp(pair.moving, again))


@pytest.mark.parametrize("bad", [(1, 2), (np.nan, 0, 0), "abc"])
def test_bad_shift_is_a_clear_error(bad):
    from napari_fidreg.core import FidregError

    with pytest.raises(FidregError, match="shift must be three finite numbers"):
        warp(np.ones((4, 8, 8)), bad)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int16, np.float32])
@pytest.mark.parametrize("shape", [(9, 47, 53), (1, 30, 40), (5, 3, 2)])
def test_fast_path_equals_the_general_kernel_on_a_varying_field(dtype, shape):
    """The run-based fast path (field constant along z), on an in-memory stack and on the
    slabs of a lazy one, against the per-voxel kernel that fields varying along z use (here
    the same field on two z levels), on a field with steps in every direction."""
    import zarr

    from napari_fidreg.core.warp import ShiftField

    rng = np.random.default_rng(3)
    vol = (rng.random(shape) * 200 - (50 if dtype == np.int16 else 0)).astype(dtype)
    ny, nx = shape[1:]
    cy, cx = np.linspace(0, ny - 1, 3), np.linspace(0, nx - 1, 4)
    shifts = rng.normal(0, 2.0, (1, 3, 4, 3))
    field = ShiftField((np.array([shape[0] / 2]), cy, cx), shifts)
    two_levels = ShiftField((np.array([0.0, shape[0] - 1.0]), cy, cx), np.concatenate([shifts, shifts]))
    fast = warp(vol, field)  # numpy array: the run-based fast path (when nx >= 2)
    fast_lazy = warp(zarr.array(vol, chunks=(1, ny, nx)), field)  # the same kernel on slabs
    slow = warp(vol, two_levels)  # the per-voxel kernel
    slow_lazy = warp(zarr.array(vol, chunks=(1, ny, nx)), two_levels)
    assert fast.dtype == slow.dtype == fast_lazy.dtype == slow_lazy.dtype == np.dtype(dtype)
    for a, b in ((fast, slow), (fast_lazy, fast), (slow_lazy, slow)):
        if np.dtype(dtype).kind in "ui":  # rounding may differ by one level, rarely
            np.testing.assert_allclose(a.astype(float), b.astype(float), atol=1)
            assert (a != b).mean() < 0.01
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)


def test_nearest_for_labels_keeps_the_labels_and_moves_them_by_the_shift():
    rng = np.random.default_rng(5)
    labels = np.zeros((16, 48, 48), np.int32)
    for k in range(1, 30):  # small cuboid objects with label values that no blend gives back
        z, y, x = rng.integers(2, (13, 44, 44))
        labels[z : z + 3, y : y + 4, x : x + 4] = 1000 + 37 * k
    shift = (1.3, -2.6, 4.4)
    out = warp(labels, shift, order=0)
    assert out.dtype == labels.dtype
    assert set(np.unique(out)) <= set(np.unique(labels))  # no interpolated label value
    # each voxel takes the label of the nearest source voxel: ndimage's order-0 shift
    expected = ndimage.shift(labels, shift, order=0, mode="constant", cval=0)
    inner = (slice(2, -2), slice(3, -3), slice(5, -5))
    np.testing.assert_array_equal(out[inner], expected[inner])
    # a label's centre moves by the shift (to within the half voxel of rounding)
    k = 1000 + 37 * 5
    moved = np.argwhere(out == k).mean(axis=0) - np.argwhere(labels == k).mean(axis=0)
    np.testing.assert_allclose(moved, shift, atol=0.5)


def test_nearest_on_a_block_field_and_through_the_slab_path():
    pair = cached_pair((40, 256, 256), (1.3, -4.6, 7.25), seed=0)
    reg = register(pair.reference, pair.moving, block_size=64)
    labels = (pair.moving // 50).astype(np.uint16)
    out = warp(labels, reg, order=0)
    assert out.dtype == np.uint16 and set(np.unique(out)) <= set(np.unique(labels)) | {0}
    big_endian = labels.astype(">u2")  # not readable by the kernels in place: read plane by plane
    np.testing.assert_array_equal(warp(big_endian, reg, order=0), out)
    with pytest.raises(FidregError, match="order must be 1"):
        warp(labels, reg, order=3)


def test_the_warp_hands_each_corrected_plane_to_on_plane():
    vol = (np.random.default_rng(2).random((9, 30, 28)) * 1000).astype(np.uint16)
    made = {}
    out = drain(iter_warp(vol, (0.5, -1.25, 2.0), workers=2, on_plane=lambda z, p: made.update({z: p.copy()})))
    assert sorted(made) == list(range(out.shape[0]))
    for z, plane in made.items():
        np.testing.assert_array_equal(plane, out[z])


@pytest.mark.parametrize("src,dst", [(np.float32, np.uint16), (np.float16, np.float16), (np.uint16, np.uint8)])
def test_on_plane_sees_the_values_stored_when_the_output_has_another_dtype(src, dst):
    vol = (np.random.default_rng(3).random((6, 20, 24)) * 300).astype(src)
    vol[:, :, :3] = 70000 if np.dtype(src) == np.float32 else vol[:, :, :3]  # beyond uint16
    out = np.zeros(vol.shape, dst)  # not written in place: the plane is cast first
    made = {}
    shift = (0.25, 1.5, -2.0)
    drain(iter_warp(vol, shift, out=out, on_plane=lambda z, p: made.update({z: p.copy()})))
    for z, plane in made.items():
        assert plane.dtype == out.dtype
        np.testing.assert_array_equal(plane, out[z])
    if np.dtype(dst).kind == "u":  # into integers of another type: rounded and clipped, never wrapped
        exact = warp(vol.astype(np.float64), shift)
        info = np.iinfo(dst)
        np.testing.assert_allclose(out, np.clip(np.floor(exact + 0.5), info.min, info.max), atol=1)


def test_stopping_the_warp_drops_the_planes_not_started():
    vol = np.random.default_rng(4).random((400, 64, 64)).astype(np.float32)
    made, running, release = [], threading.Event(), threading.Event()

    def on_plane(z, plane):
        made.append(z)
        if z >= 1:  # hold the worker in plane 1 until the generator is being closed
            running.set()
            release.wait(10)

    gen = iter_warp(vol, (0.5, 0.5, 0.5), workers=1, on_plane=on_plane)
    next(gen)  # plane 0 done
    assert running.wait(10)  # plane 1 running, 398 queued
    threading.Timer(0.2, release.set).start()
    gen.close()  # a Cancel: plane 1 finishes, the queued ones are dropped
    assert made == [0, 1]
