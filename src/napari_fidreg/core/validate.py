"""Turn whatever the user passed into a checked 3D (z, y, x) array."""

from __future__ import annotations

import numpy as np

from .errors import FidregError


def as_volume(data, name: str) -> np.ndarray:
    """Return ``data`` as a 3D (z, y, x) array without copying when possible.

    A single image (y, x) becomes a stack of one plane (1, y, x), which registers as
    2D (the z shift is 0). Singleton axes beyond three are squeezed ((1, 60, 512, 512)
    -> (60, 512, 512)). True 4D+ input is refused with a message naming ``name``.
    """
    if data is None:
        raise FidregError(f"{name}: no image given")
    arr = data if hasattr(data, "shape") and hasattr(data, "dtype") else np.asarray(data)
    shape = tuple(arr.shape)
    if (arr.ndim > 3 or arr.ndim == 2) and not hasattr(arr, "reshape"):
        arr = np.asarray(arr)  # a lazy array that cannot drop or add an axis in place (zarr 3)
    arr = drop_singletons(arr, 3)
    if arr.ndim == 2:
        arr = arr.reshape((1, *arr.shape))
    if arr.ndim != 3:
        raise FidregError(
            f"{name}: expected a 3D (z, y, x) stack or a 2D (y, x) image, got {arr.ndim}D array of shape {shape}"
        )
    if min(arr.shape) == 0:
        raise FidregError(f"{name}: stack is empty, shape {shape}")
    check_dtype(arr, name)
    return arr


def drop_singletons(arr, ndim: int):
    """``arr`` without singleton axes beyond ``ndim`` ((1, 60, 512, 512) -> (60, 512, 512))."""
    while arr.ndim > ndim and 1 in arr.shape:
        axis = list(arr.shape).index(1)
        arr = arr.reshape(arr.shape[:axis] + arr.shape[axis + 1 :])
    return arr


def check_dtype(arr, name: str) -> None:
    """Refuse what is not integers or floats (booleans, complex, text), naming ``name``."""
    if np.dtype(arr.dtype).kind not in "uif":
        raise FidregError(f"{name}: unsupported data type {arr.dtype} (need integers or floats)")


def native(planes) -> np.ndarray:
    """``planes`` as an ndarray the compiled kernels can read: native byte order (big-endian
    TIFFs memory-map as '>u2') and no float16 (numba has no half floats: float32 then).
    No copy when already so."""
    arr = np.asarray(planes)
    if not kernel_ready(arr.dtype):
        return arr.astype(kernel_dtype(arr.dtype))
    return arr


def kernel_input(planes) -> np.ndarray:
    """``planes`` as the compiled kernels take their input: :func:`native`, C-contiguous
    and read-only (a view; no copy when already so).

    Read-only whether memory-mapped from a file (tifffile maps files read-only) or in
    memory (a compressed file decoded, a napari layer): numba compiles a kernel for each
    array type it meets (~1 s each on a first run), and writeable and read-only arrays
    are two types to it.
    """
    return read_only(np.ascontiguousarray(native(planes)))


def read_only(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when read-only, else a read-only view of it (see :func:`kernel_input`)."""
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def kernel_ready(dtype) -> bool:
    """Whether the compiled kernels read ``dtype`` as it is."""
    dtype = np.dtype(dtype)
    return dtype.isnative and dtype != np.float16


def kernel_dtype(dtype) -> np.dtype:
    """The dtype the compiled kernels work in for data of ``dtype``."""
    dtype = np.dtype(dtype).newbyteorder("=")
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def check_finite_and_varying(vol: np.ndarray, name: str) -> None:
    """Refuse NaN/inf and constant volumes (checked on a reduced copy, see callers)."""
    if not np.all(np.isfinite(vol)):
        raise FidregError(f"{name}: contains NaN or infinite values")
    if float(np.ptp(vol)) == 0.0:
        raise FidregError(f"{name}: image is constant (all voxels equal {float(vol.flat[0])}); nothing to register")


def checked_voxel_size(voxel_size) -> tuple[float, float, float] | None:
    """``voxel_size`` as three positive finite floats (z, y, x) in µm, None for None."""
    if voxel_size is None:
        return None
    try:
        vs = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        vs = ()
    if len(vs) != 3 or not all(np.isfinite(vs)) or min(vs) <= 0:
        raise FidregError(f"voxel_size must be three positive numbers (z, y, x), got {voxel_size!r}")
    return vs  # type: ignore[return-value]
