"""Turn whatever the user passed into a checked 3D (z, y, x) array."""

from __future__ import annotations

import numpy as np

from .errors import FidregError


def as_volume(data, name: str) -> np.ndarray:
    """Return ``data`` as a 3D (z, y, x) array without copying when possible.

    Singleton axes beyond three are squeezed ((1, 60, 512, 512) -> (60, 512, 512));
    a single-plane stack (1, y, x) stays 3D. 2D and true 4D+ input is refused
    with a message naming ``name``.
    """
    if data is None:
        raise FidregError(f"{name}: no image given")
    arr = data if hasattr(data, "shape") and hasattr(data, "dtype") else np.asarray(data)
    shape = tuple(arr.shape)
    while arr.ndim > 3 and 1 in arr.shape:
        axis = list(arr.shape).index(1)
        arr = arr.reshape(arr.shape[:axis] + arr.shape[axis + 1 :])
    if arr.ndim != 3:
        hint = " (a single image: give it a z axis of length 1)" if arr.ndim == 2 else ""
        raise FidregError(f"{name}: expected a 3D (z, y, x) stack, got {arr.ndim}D array of shape {shape}{hint}")
    if min(arr.shape) == 0:
        raise FidregError(f"{name}: stack is empty, shape {shape}")
    kind = np.dtype(arr.dtype).kind
    if kind not in "uif":
        raise FidregError(f"{name}: unsupported data type {arr.dtype} (need integers or floats)")
    return arr


def native(planes) -> np.ndarray:
    """``planes`` as an ndarray in the machine's byte order (big-endian TIFFs memory-map as
    '>u2'); the compiled kernels read native numbers only. No copy when already native."""
    arr = np.asarray(planes)
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def check_finite_and_varying(vol: np.ndarray, name: str) -> None:
    """Refuse NaN/inf and constant volumes (checked on a reduced copy, see callers)."""
    if not np.all(np.isfinite(vol)):
        raise FidregError(f"{name}: contains NaN or infinite values")
    if float(np.ptp(vol)) == 0.0:
        raise FidregError(f"{name}: image is constant (all voxels equal {float(vol.flat[0])}); nothing to register")
