"""as_volume, native and check_finite_and_varying: what the engine accepts, and the messages when not."""

import numpy as np
import pytest

from napari_fidreg.core import FidregError
from napari_fidreg.core.validate import (
    as_volume,
    check_finite_and_varying,
    kernel_dtype,
    kernel_input,
    kernel_ready,
    native,
    read_only,
)


@pytest.mark.parametrize(
    "shape,expected",
    [
        ((1, 4, 5, 6), (4, 5, 6)),
        ((4, 1, 5, 6), (4, 5, 6)),
        ((2, 1, 1, 5, 6), (2, 5, 6)),
        ((1, 1, 5, 6), (1, 5, 6)),  # a single-plane stack stays 3D
        ((1, 5, 6), (1, 5, 6)),
    ],
)
def test_singleton_axes_beyond_three_are_squeezed_without_a_copy(shape, expected):
    data = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    vol = as_volume(data, "reference")
    assert vol.shape == expected
    assert np.shares_memory(vol, data)
    np.testing.assert_array_equal(vol.ravel(), data.ravel())


def test_a_3d_array_is_returned_as_is():
    data = np.zeros((3, 4, 5), np.float32)
    assert as_volume(data, "moving") is data
    ro = np.zeros((3, 4, 5), np.uint16)
    ro.setflags(write=False)
    assert as_volume(ro, "moving") is ro


def test_a_single_image_becomes_a_stack_of_one_plane():
    image = np.arange(20, dtype=np.uint16).reshape(4, 5)
    vol = as_volume(image, "moving")
    assert vol.shape == (1, 4, 5)
    assert np.shares_memory(vol, image)
    np.testing.assert_array_equal(vol[0], image)


def test_lazy_arrays_are_not_read():
    """Anything with a shape and a dtype (a zarr or dask array) is passed through, not converted."""
    zarr = pytest.importorskip("zarr")
    z = zarr.zeros((4, 5, 6), dtype="u2")
    assert as_volume(z, "reference") is z


def test_nested_lists_are_converted():
    vol = as_volume([[[1, 2], [3, 4]]], "moving")
    assert isinstance(vol, np.ndarray) and vol.shape == (1, 2, 2)
    np.testing.assert_array_equal(vol, [[[1, 2], [3, 4]]])


@pytest.mark.parametrize(
    "data,msg",
    [
        (None, "no image given"),
        (
            np.zeros((2, 3, 5, 6)),
            r"expected a 3D \(z, y, x\) stack or a 2D \(y, x\) image, got 4D array of shape \(2, 3, 5, 6\)",
        ),
        (np.zeros((5,)), r"got 1D array of shape \(5,\)"),
        (np.zeros(()), r"got 0D array of shape \(\)"),
        ("abc", "got 0D array"),
        (np.zeros((0, 5, 6)), r"stack is empty, shape \(0, 5, 6\)"),
        (np.zeros((1, 0, 5, 6)), r"stack is empty, shape \(1, 0, 5, 6\)"),
        (np.zeros((3, 0)), r"stack is empty, shape \(3, 0\)"),
        (np.zeros((2, 5, 6), complex), r"unsupported data type complex128 \(need integers or floats\)"),
        (np.zeros((2, 5, 6), bool), "unsupported data type bool"),
        (np.zeros((2, 5, 6), object), "unsupported data type object"),
        (np.zeros((2, 5, 6), "M8[s]"), r"unsupported data type datetime64\[s\]"),
    ],
)
def test_refused_with_a_message_naming_the_input(data, msg):
    with pytest.raises(FidregError, match=f"^reference: (.* )?{msg}"):
        as_volume(data, "reference")


@pytest.mark.parametrize("dtype", ["u1", "u2", "i2", "u4", "i8", "f4", "f8", "f2"])
def test_integer_and_float_types_are_accepted(dtype):
    assert as_volume(np.ones((2, 3, 4), dtype), "x").dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", [">u2", ">i4", ">f4", ">f8"])
def test_native_converts_big_endian_data(dtype):
    data = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    out = native(data)
    assert out.dtype.isnative and out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, data)
    assert not data.dtype.isnative  # the input is left as it is


def test_native_leaves_native_data_alone_and_widens_half_floats():
    data = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    assert native(data) is data
    half = np.arange(6, dtype=">f2").reshape(1, 2, 3)
    out = native(half)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, half.astype(np.float32))
    np.testing.assert_array_equal(native([[1, 2]]), [[1, 2]])


def test_kernel_input_is_a_read_only_c_ordered_native_view_without_copying():
    data = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    view = kernel_input(data)
    assert not view.flags.writeable and view.flags.c_contiguous
    assert np.shares_memory(view, data) and data.flags.writeable  # the caller's array stays writeable
    frozen = data.copy()
    frozen.flags.writeable = False
    assert kernel_input(frozen) is frozen  # a memory-mapped file's planes, as they are
    strided = kernel_input(data[:, :, ::2])
    assert strided.flags.c_contiguous and not strided.flags.writeable
    np.testing.assert_array_equal(strided, data[:, :, ::2])
    in_place = read_only(data[:, :, ::2])  # a whole stack read in place by the correction: no copy
    assert not in_place.flags.writeable and np.shares_memory(in_place, data) and not in_place.flags.c_contiguous
    big = kernel_input(data.astype(">u2"))
    assert big.dtype == np.uint16 and not big.flags.writeable
    np.testing.assert_array_equal(big, data)


def test_kernel_ready_and_kernel_dtype():
    assert kernel_ready("u2") and kernel_ready(np.float32) and kernel_ready("=i8")
    assert not kernel_ready(">u2") and not kernel_ready("f2")
    assert kernel_dtype(">u2") == np.uint16 and kernel_dtype(">f8") == np.float64
    assert kernel_dtype("f2") == np.float32 and kernel_dtype(">f2") == np.float32
    assert kernel_dtype("i4") == np.int32


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_refuses_nan_and_inf(bad):
    vol = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    vol[1, 0, 1] = bad
    with pytest.raises(FidregError, match=r"^moving: contains NaN or infinite values$"):
        check_finite_and_varying(vol, "moving")


@pytest.mark.parametrize("value,shown", [(0, "0.0"), (1234, "1234.0"), (2.5, "2.5")])
def test_check_varying_refuses_a_constant_volume(value, shown):
    vol = np.full((2, 3, 4), value, dtype=np.float32 if isinstance(value, float) else np.uint16)
    with pytest.raises(
        FidregError, match=rf"^reference: image is constant \(all voxels equal {shown}\); nothing to register$"
    ):
        check_finite_and_varying(vol, "reference")


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float16])
def test_check_passes_finite_varying_volumes(dtype):
    vol = np.zeros((2, 3, 4), dtype)
    vol[0, 0, 0] = 1
    assert check_finite_and_varying(vol, "x") is None
    full_range = np.array([[[0, 65535]]], np.uint16)  # no overflow in the range
    assert check_finite_and_varying(full_range, "x") is None
