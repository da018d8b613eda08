"""Apply a global shift or a smooth block-shift field to any 3D stack.

``corrected(p) = moving(p - shift(p))`` with trilinear interpolation (or, with
``order=0``, the nearest voxel: for label images); voxels whose
source lies outside the moving stack get ``fill_value`` (0 by default). The
shift field is kept on the block grid and interpolated on the fly (bilinear in
y/x between block centres, linear in z when there are z-blocks, constant
beyond the outer centres): a full-resolution field would cost three times the
stack's memory. The output keeps the input's dtype (integers are rounded and
clipped to their range).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import FidregError
from .interpolate import interp_matrix, linear_taps
from .kernels import sample_plane, sample_plane_nearest, sample_plane_yx
from .progress import Progress, drain
from .result import Registration
from .validate import as_volume, kernel_dtype, kernel_input, kernel_ready, read_only

STAGE = "correcting"


def _yx_tables(sy: np.ndarray, sx: np.ndarray, ny: int, nx: int):
    """Per-(y, x) source indices and weights for a field constant along z."""
    oy, ox = sy.shape
    tol = 1e-4
    ys = np.arange(oy, dtype=np.float32)[:, None] - sy
    xs = np.arange(ox, dtype=np.float32)[None, :] - sx
    inside = (ys >= -tol) & (xs >= -tol) & (ys <= ny - 1 + tol) & (xs <= nx - 1 + tol)
    # in place and in float32 throughout: float32 - int32 would make float64 temporaries,
    # 32 MiB each on a 2048^2 frame (what the memory-capped test runs out of)
    y0, fy = linear_taps(ys, ny)
    x0, fx = linear_taps(xs, nx)
    return y0, x0, fy, fx, inside


def _slab_range(z: int, sz: np.ndarray, nz_src: int) -> tuple[int, int]:
    """The source planes [a, b) that output plane ``z`` reads, clipped to the stack."""
    return max(int(np.floor(z - float(sz.max()))), 0), min(int(np.ceil(z - float(sz.min()))) + 1, nz_src)


class ShiftField:
    """A shift field on a rectilinear grid of block centres, evaluated per plane.

    A global shift is the special case of a 1x1x1 grid.
    """

    def __init__(self, centres: tuple[np.ndarray, np.ndarray, np.ndarray], shifts: np.ndarray):
        self.centres = centres
        self.shifts = np.asarray(shifts, dtype=np.float64)  # (gz, gy, gx, 3)

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
            interp_matrix(np.interp(np.arange(ny), cy, np.arange(len(cy))), len(cy))
            if len(cy) > 1
            else np.ones((ny, 1), np.float32)
        )
        wx = (
            interp_matrix(np.interp(np.arange(nx), cx, np.arange(len(cx))), len(cx))
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
    fill_value: float = 0.0,
    use_blocks: bool = True,
    workers: int = 2,
    order: int = 1,
) -> np.ndarray:
    """Return ``moving`` corrected by a registration (or a plain (dz, dy, dx) shift).

    Parameters
    ----------
    moving : array-like (z, y, x)
        Any stack of the moving round (fiducials or another channel). Not modified.
    registration_or_shift : Registration, ShiftField or sequence of 3 floats
    output_shape : (z, y, x), optional
        Shape of the corrected stack (the reference's); default the input's.
    fill_value : float
        Value where the source lies outside ``moving`` (default 0).
    use_blocks : bool
        Use the block-shift field when the registration has one (default),
        else the global shift.
    workers : int
        Threads (planes are processed in parallel).
    order : {1, 0}
        1: trilinear interpolation (default). 0: nearest voxel, for label images: every
        output value is one of the input's values (or ``fill_value``), the dtype kept.
    """
    return drain(
        iter_warp(
            moving,
            registration_or_shift,
            output_shape=output_shape,
            fill_value=fill_value,
            use_blocks=use_blocks,
            workers=workers,
            order=order,
        )
    )


def iter_warp(
    moving,
    registration_or_shift,
    *,
    output_shape=None,
    fill_value=0.0,
    use_blocks=True,
    workers=2,
    out=None,
    order=1,
    on_plane: Callable[[int, np.ndarray], None] | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """Generator form of :func:`warp`: yields a :class:`Progress` per plane, returns the corrected stack.

    ``out`` may be a preallocated array of ``output_shape``, or any object with a ``dtype``
    that takes ``out[z] = plane`` (the stack writer's :class:`~.writers.TiffPlanes`).
    ``on_plane(z, plane)``, when given, is called in the worker thread with each corrected
    (y, x) plane as soon as it is stored (while it is in cache), from several threads at once;
    ``plane`` holds the values as stored in ``out`` (in its dtype).
    """
    src = as_volume(moving, "image to correct")
    if isinstance(registration_or_shift, Registration):
        field = ShiftField.from_registration(registration_or_shift, use_blocks=use_blocks)
    elif isinstance(registration_or_shift, ShiftField):
        field = registration_or_shift
    else:
        try:
            shift = np.asarray(registration_or_shift, dtype=float).ravel()
        except (TypeError, ValueError):
            shift = np.full(1, np.nan)
        if shift.shape != (3,) or not np.all(np.isfinite(shift)):
            raise FidregError(f"shift must be three finite numbers (dz, dy, dx), got {registration_or_shift!r}")
        field = ShiftField.constant(shift)
    try:
        fill = float(fill_value)
    except (TypeError, ValueError):
        raise FidregError(f"fill_value must be a number, got {fill_value!r}") from None
    if order not in (0, 1):
        raise FidregError(f"order must be 1 (trilinear) or 0 (nearest voxel, for labels), got {order!r}")
    shape = tuple(src.shape) if output_shape is None else tuple(int(v) for v in output_shape)
    if len(shape) != 3:
        raise FidregError(f"output_shape must be (z, y, x), got {output_shape!r}")
    dtype = src.dtype.newbyteorder("=")  # the output is written in native byte order
    if out is None:
        out = np.empty(shape, dtype=dtype)
    levels = field.yx_fields(shape[1:])
    zw = field.z_weights(shape[0])
    is_int = np.dtype(dtype).kind in "ui"
    lo, hi = (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if is_int else (0.0, 0.0)
    # In-memory stacks (and memmaps) are read in place by the kernel; lazy arrays (zarr)
    # and non-native byte orders are read (and converted) as the few planes each output
    # plane needs (a slab).
    in_memory = isinstance(src, np.ndarray) and kernel_ready(src.dtype)
    # read-only, as kernel_input gives the slabs: one compiled type; a strided stack (a channel
    # of a ZCYX hyperstack) read in place, as it is, not copied
    whole = read_only(src) if in_memory else None
    work = kernel_dtype(dtype)  # what the kernels write: float16 is computed in float32
    nz_src = src.shape[0]
    tables = None
    if order == 1 and len(levels) == 1 and src.shape[2] >= 2:  # the usual case, no z-blocks: the fast path
        sz0, sy0, sx0 = levels[0]
        tables = (-sz0,) + _yx_tables(sy0, sx0, src.shape[1], src.shape[2])

    def plane(z: int) -> None:
        lo_level, hi_level, w = zw[z]
        if lo_level == hi_level or w == 0.0:
            sz, sy, sx = levels[lo_level]
        else:
            sz, sy, sx = (levels[lo_level][k] * (1 - w) + levels[hi_level][k] * w for k in range(3))
        # write straight into the output plane when it is plain memory (or a memmap)
        direct = isinstance(out, np.ndarray) and out.dtype == work and out[z].flags.c_contiguous
        buf = np.asarray(out[z]) if direct else np.empty(shape[1:], dtype=work)
        if order == 0:
            a, b = (0, nz_src) if in_memory else _slab_range(z, sz, nz_src)
            if b <= a:
                buf.fill(fill)
            else:
                sample_plane_nearest(whole if in_memory else kernel_input(src[a:b]), float(z), float(a),
                                     sz, sy, sx, fill, buf)  # fmt: skip
        elif tables is not None and in_memory:
            zs_base, y0, x0, fy, fx, inside = tables
            sample_plane_yx(whole, float(z), zs_base, y0, x0, fy, fx, inside, fill, lo, hi, is_int, buf)
        elif in_memory:
            sample_plane(whole, float(z), 0.0, sz, sy, sx, fill, lo, hi, is_int, buf)
        else:
            a, b = _slab_range(z, sz, nz_src)
            if b <= a:
                buf.fill(fill)
            else:
                # [a, b) holds every source plane inside the stack, clipped to the stack, so
                # the kernels' bounds checks on the slab fill exactly what lies outside it
                slab = kernel_input(src[a:b])
                if tables is not None:  # z counted from the slab's first plane
                    zs_base, y0, x0, fy, fx, inside = tables
                    sample_plane_yx(slab, float(z - a), zs_base, y0, x0, fy, fx, inside, fill, lo, hi, is_int, buf)
                else:
                    sample_plane(slab, float(z), float(a), sz, sy, sx, fill, lo, hi, is_int, buf)
        if not direct:  # cast here, so that on_plane sees the values stored
            dtype = np.dtype(getattr(out, "dtype", buf.dtype))
            if buf.dtype != dtype and dtype.kind in "ui":
                # into integers of another type (a series round onto a reference of another
                # dtype): rounded and clipped as the kernels do, not truncated or wrapped
                info = np.iinfo(dtype)
                buf = np.clip(np.floor(buf + 0.5) if buf.dtype.kind == "f" else buf, info.min, info.max)
            out[z] = buf = buf.astype(dtype, copy=False)
        if on_plane is not None:
            on_plane(z, buf)

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for i, _ in enumerate(pool.map(plane, range(shape[0]))):
            yield Progress(STAGE, i + 1, shape[0])
    finally:
        # stopped early (a Cancel, Ctrl-C): the planes not started are dropped here, not left to
        # the finaliser of map's iterator (which cancels them only once it is collected)
        pool.shutdown(wait=True, cancel_futures=True)
    return out
