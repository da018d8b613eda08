"""Apply a global shift or a smooth block-shift field to any 3D stack.

``corrected(p) = moving(p - shift(p))`` with trilinear interpolation; voxels whose
source lies outside the moving stack get ``fill_value`` (0 by default). The
shift field is kept on the block grid and interpolated on the fly (bilinear in
y/x between block centres, linear in z when there are z-blocks, constant
beyond the outer centres): a full-resolution field would cost three times the
stack's memory. The output keeps the input's dtype (integers are rounded and
clipped to their range).
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .errors import FidregError
from .preprocess import _interp_matrix
from .result import Registration
from .validate import as_volume


@numba.njit(nogil=True, cache=True, fastmath=False)
def _sample_plane(src, z, sz, sy, sx, fill, out):  # pragma: no cover - compiled
    """out[y, x] = trilinear src at (z - sz, y - sy, x - sx); fill outside."""
    nz, ny, nx = src.shape
    oy, ox = out.shape
    for y in range(oy):
        for x in range(ox):
            zs = z - sz[y, x]
            ys = y - sy[y, x]
            xs = x - sx[y, x]
            if zs < -1e-4 or ys < -1e-4 or xs < -1e-4 or zs > nz - 1 + 1e-4 or ys > ny - 1 + 1e-4 or xs > nx - 1 + 1e-4:
                out[y, x] = fill
                continue
            z0 = min(max(int(np.floor(zs)), 0), max(nz - 2, 0))
            y0 = min(max(int(np.floor(ys)), 0), max(ny - 2, 0))
            x0 = min(max(int(np.floor(xs)), 0), max(nx - 2, 0))
            z1 = min(z0 + 1, nz - 1)
            y1 = min(y0 + 1, ny - 1)
            x1 = min(x0 + 1, nx - 1)
            fz = min(max(zs - z0, 0.0), 1.0)
            fy = min(max(ys - y0, 0.0), 1.0)
            fx = min(max(xs - x0, 0.0), 1.0)
            c00 = src[z0, y0, x0] * (1 - fx) + src[z0, y0, x1] * fx
            c01 = src[z0, y1, x0] * (1 - fx) + src[z0, y1, x1] * fx
            c10 = src[z1, y0, x0] * (1 - fx) + src[z1, y0, x1] * fx
            c11 = src[z1, y1, x0] * (1 - fx) + src[z1, y1, x1] * fx
            c0 = c00 * (1 - fy) + c01 * fy
            c1 = c10 * (1 - fy) + c11 * fy
            out[y, x] = c0 * (1 - fz) + c1 * fz


class ShiftField:
    """A shift field on a rectilinear grid of block centres, evaluated per plane.

    A global shift is the special case of a 1x1x1 grid.
    """

    def __init__(self, centres: tuple[np.ndarray, np.ndarray, np.ndarray], shifts: np.ndarray):
        self.centres = centres
        self.shifts = np.asarray(shifts, dtype=np.float64)  # (gz, gy, gx, 3)
        self._planes: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    @classmethod
    def constant(cls, shift) -> ShiftField:
        s = np.asarray(shift, dtype=np.float64).reshape(1, 1, 1, 3)
        return cls((np.zeros(1), np.zeros(1), np.zeros(1)), s)

    @classmethod
    def from_registration(cls, reg: Registration, *, use_blocks: bool = True) -> ShiftField:
        if use_blocks and reg.has_blocks:
            centres, shifts = reg.block_field()
            return cls(centres, shifts)
        return cls.constant(reg.global_shift)

    @property
    def is_constant(self) -> bool:
        return self.shifts.shape[:3] == (1, 1, 1)

    def yx_fields(self, shape_yx: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Full-resolution (sz, sy, sx) planes for each z level of the grid."""
        ny, nx = shape_yx
        _, cy, cx = self.centres
        wy = (
            _interp_matrix(np.interp(np.arange(ny), cy, np.arange(len(cy))), len(cy))
            if len(cy) > 1
            else np.ones((ny, 1), np.float32)
        )
        wx = (
            _interp_matrix(np.interp(np.arange(nx), cx, np.arange(len(cx))), len(cx))
            if len(cx) > 1
            else np.ones((nx, 1), np.float32)
        )
        levels = []
        for iz in range(self.shifts.shape[0]):
            levels.append(
                tuple((wy @ self.shifts[iz, :, :, k].astype(np.float32) @ wx.T).astype(np.float32) for k in range(3))
            )
        return levels

    def z_weights(self, nz: int) -> list[tuple[int, int, float]]:
        """For each output plane: (lower level, upper level, weight of upper)."""
        cz = self.centres[0]
        if len(cz) == 1:
            return [(0, 0, 0.0)] * nz
        pos = np.interp(np.arange(nz), cz, np.arange(len(cz)))
        lo = np.minimum(np.floor(pos).astype(int), len(cz) - 2)
        return [(int(a), int(a) + 1, float(p - a)) for a, p in zip(lo, pos)]


def warp(
    moving,
    registration_or_shift,
    *,
    output_shape=None,
    fill_value: float | None = None,
    use_blocks: bool = True,
    workers: int = 2,
) -> np.ndarray:
    """Return ``moving`` corrected by a registration (or a plain (dz, dy, dx) shift).

    Parameters
    ----------
    moving : array-like (z, y, x)
        Any stack of the moving round (fiducials or another channel). Not modified.
    registration_or_shift : Registration or sequence of 3 floats
    output_shape : (z, y, x), optional
        Shape of the corrected stack (the reference's); default the input's.
    fill_value : float, optional
        Value where the source lies outside ``moving``; default the
        registration's ``fill_value`` parameter (0).
    use_blocks : bool
        Use the block-shift field when the registration has one (default),
        else the global shift.
    workers : int
        Threads (planes are processed in parallel).
    """
    gen = iter_warp(
        moving,
        registration_or_shift,
        output_shape=output_shape,
        fill_value=fill_value,
        use_blocks=use_blocks,
        workers=workers,
    )
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def iter_warp(
    moving, registration_or_shift, *, output_shape=None, fill_value=None, use_blocks=True, workers=2, out=None
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Generator form of :func:`warp`: yields (planes done, planes total).

    ``out`` may be a preallocated array (a memmap, say) of ``output_shape``.
    """
    src = as_volume(moving, "image to correct")
    if isinstance(registration_or_shift, Registration):
        field = ShiftField.from_registration(registration_or_shift, use_blocks=use_blocks)
        if fill_value is None:
            fill_value = registration_or_shift.params.fill_value
    else:
        try:
            shift = np.asarray(registration_or_shift, dtype=float).ravel()
        except (TypeError, ValueError):
            shift = np.full(1, np.nan)
        if shift.shape != (3,) or not np.all(np.isfinite(shift)):
            raise FidregError(f"shift must be three finite numbers (dz, dy, dx), got {registration_or_shift!r}")
        field = ShiftField.constant(shift)
    fill = 0.0 if fill_value is None else float(fill_value)
    shape = tuple(src.shape) if output_shape is None else tuple(int(v) for v in output_shape)
    if len(shape) != 3:
        raise FidregError(f"output_shape must be (z, y, x), got {output_shape!r}")
    dtype = src.dtype
    if out is None:
        out = np.empty(shape, dtype=dtype)
    levels = field.yx_fields(shape[1:])
    zw = field.z_weights(shape[0])
    # Source planes are read lazily: only the slab a plane needs (plus one).
    src_arr = np.asarray(src) if isinstance(src, np.ndarray) else src

    def plane(z: int) -> None:
        lo, hi, w = zw[z]
        if lo == hi or w == 0.0:
            sz, sy, sx = levels[lo]
        else:
            sz, sy, sx = (levels[lo][k] * (1 - w) + levels[hi][k] * w for k in range(3))
        zmin = z - float(sz.max())
        zmax = z - float(sz.min())
        a = max(int(np.floor(zmin)), 0)
        b = min(int(np.ceil(zmax)) + 1, src.shape[0])
        buf = np.empty(shape[1:], dtype=np.float32)
        if b <= a:
            buf.fill(fill)
        else:
            slab = np.ascontiguousarray(src_arr[a:b], dtype=np.float32)
            # Coordinates relative to the slab; outside the slab but inside the stack cannot happen.
            _sample_plane(slab, float(z - a), sz + 0.0, sy, sx, np.float32(fill), buf)
            if a > 0 or b < src.shape[0]:
                # Voxels whose source z is outside [0, nz-1] of the *stack* must be filled,
                # not clamped to the slab: recompute that mask explicitly.
                zs = z - sz
                buf[(zs < -1e-4) | (zs > src.shape[0] - 1 + 1e-4)] = fill
        out[z] = _to_dtype(buf, dtype)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, _ in enumerate(pool.map(plane, range(shape[0]))):
            yield i + 1, shape[0]
    return out


def _to_dtype(buf: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        np.rint(buf, out=buf)
        np.clip(buf, info.min, info.max, out=buf)
    return buf.astype(dtype, copy=False)
