"""The engine's compiled (numba) loops, in one place.

Each kernel does in one pass what numpy would do in several passes with full-size
temporaries; each is ``nogil`` so that the block and plane threads run in parallel.
The callers (:mod:`.scan`, :mod:`.preprocess`, :mod:`.warp`) hold the logic; the
kernels hold arithmetic only. ``cache=True`` keeps the machine code between
processes (``__pycache__``), so only the first run on a machine compiles, for each
array type it meets: inputs are passed read-only (:func:`.validate.kernel_input`), one
type per dtype, and ``fidreg compile`` (:mod:`.precompile`) compiles them all up front.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def bin_planes(planes, y0, y1, x0, x1, factor, small, zmin):  # pragma: no cover - compiled
    """``small[z, bin] += planes[z]`` summed over ``factor`` x ``factor`` bins of the region
    [y0, y1) x [x0, x1); and, when ``zmin`` is not empty, ``zmin = min(zmin, planes over z)``
    over the whole frame.

    One kernel serves the coarse step's single read of each stack (binned copy and
    minimum over z together: 0.41 -> 0.26 s per 60x2048x2048 stack against numpy) and
    the background's binned mean (12 -> 2 ms per 68x272x272 block).
    """
    nz, ny, nx = planes.shape
    nbx = small.shape[2]
    nfull = min((x1 - x0) // factor, nbx)  # bins of ``factor`` pixels; a ragged last one after
    with_min = zmin.shape[0] > 0
    acc = np.empty(nbx, np.float32)
    no_count = np.empty(0, np.int64)  # the scan counts no zeros
    for z in range(nz):
        for y in range(ny):
            row = planes[z, y]
            if with_min:
                mrow = zmin[y]
                for x in range(nx):
                    mrow[x] = min(mrow[x], row[x])
            if y0 <= y < y1:
                srow = small[z, (y - y0) // factor]
                _row_bin_sums(row, x0, x1, factor, nfull, acc, no_count)
                for b in range(nbx):
                    srow[b] += acc[b]


@numba.njit(nogil=True, cache=True, inline="always")
def _row_bin_sums(row, x0, x1, factor, nfull, acc, zeros):  # pragma: no cover - compiled
    """``acc[b]`` = the sum of ``row[x0 + b * factor :][:factor]`` (clipped at ``x1``), each
    bin's pixels added in order in float32; and, unless ``zeros`` is empty, ``zeros[b]`` =
    how many of them are 0. The full bins advance together, one pixel of each at a time,
    so that the loop runs across bins (vectorised; a loop within a bin of a few pixels did
    not): the same additions in the same order, 2.7x faster unbinned. One helper for the
    scan and the QC reduction, whose binned copies must be equal to the bit."""
    count = zeros.shape[0] > 0
    for b in range(nfull):
        acc[b] = 0
        if count:
            zeros[b] = 0
    for k in range(factor):
        for b in range(nfull):
            v = row[x0 + b * factor + k]
            acc[b] += v
            if count:
                zeros[b] += v == 0
    for b in range(nfull, acc.shape[0]):
        start = x0 + b * factor
        a = np.float32(0)
        c = 0
        for x in range(start, min(start + factor, x1)):
            a += row[x]
            c += row[x] == 0
        acc[b] = a
        if count:
            zeros[b] = c


@numba.njit(nogil=True, cache=True)
def bin_data(planes, factor, out):  # pragma: no cover - compiled
    """``out[z, by, bx]`` = mean of the non-zero pixels of each ``factor`` x ``factor`` bin of
    ``planes[z]``, or 0 where more than half of the bin is zero (a correction's fill).

    The QC projections' reduction in one pass: the bin's sum and its count of zeros
    together, where numpy took a comparison, a test and a second binning (60 -> 30 ms
    for 8 planes of 2048^2 binned by 6, and no 32 MiB mask). A ragged edge bin counts
    the pixels it has. The arithmetic is :func:`bin_planes`' and then the mean's, in
    float32 and in the same order (row sums added row by row, then ``sum / n``, then
    ``/ (1 - fill)``), so that the binned copies equal the coarse scan's to the bit: the
    QC's 'before' comes from the scan, its 'after' from here.
    """
    nz, ny, nx = planes.shape
    nby, nbx = out.shape[1], out.shape[2]
    nfull = min(nx // factor, nbx)
    sums = np.empty(nbx, np.float32)
    zeros = np.empty(nbx, np.int64)
    acc = np.empty(nbx, np.float32)
    n0 = np.empty(nbx, np.int64)
    for z in range(nz):
        for by in range(nby):
            y0 = by * factor
            y1 = min(y0 + factor, ny)
            sums[:] = 0
            zeros[:] = 0
            for y in range(y0, y1):
                _row_bin_sums(planes[z, y], 0, nx, factor, nfull, acc, n0)
                for b in range(nbx):
                    sums[b] += acc[b]
                    zeros[b] += n0[b]
            for b in range(nbx):
                n = np.float32((y1 - y0) * (min(b * factor + factor, nx) - b * factor))
                mean = sums[b] / n
                fill = np.float32(zeros[b]) / n
                if fill > 0.5:
                    out[z, by, b] = 0
                elif fill > 0:
                    out[z, by, b] = mean / (np.float32(1) - fill)
                else:
                    out[z, by, b] = mean


@numba.njit(nogil=True, cache=True)
def box_extreme(vol, half, use_max, out):  # pragma: no cover - compiled
    """``out[z]`` = the minimum (``use_max``: maximum) of ``vol[z]`` over a (2 ``half`` + 1)^2
    window in y/x, edges repeated (``scipy.ndimage``'s ``mode="nearest"``); ``out`` may be ``vol``.

    Separable (along x, then along y), each pass a run of contiguous element-wise
    min/max that the compiler vectorises. It replaces ``ndimage.grey_opening`` and
    ``minimum_filter``, which hold the GIL (serialising the block threads) and took
    45 ms of the 127 ms that cleaning a 60x342x342 QC stack cost.
    """
    nz, ny, nx = vol.shape
    padded = np.empty(nx + 2 * half, vol.dtype)
    rows = np.empty((ny, nx), vol.dtype)
    for z in range(nz):
        for y in range(ny):
            src = vol[z, y]
            for x in range(nx):
                padded[half + x] = src[x]
            for i in range(half):
                padded[i] = src[0]
                padded[half + nx + i] = src[nx - 1]
            acc = rows[y]
            for x in range(nx):
                acc[x] = padded[x]
            for k in range(1, 2 * half + 1):
                if use_max:
                    for x in range(nx):
                        acc[x] = max(acc[x], padded[x + k])
                else:
                    for x in range(nx):
                        acc[x] = min(acc[x], padded[x + k])
        for y in range(ny):
            dst = out[z, y]
            first = rows[max(y - half, 0)]
            for x in range(nx):
                dst[x] = first[x]
            for j in range(max(y - half, 0) + 1, min(y + half + 1, ny)):
                r = rows[j]
                if use_max:
                    for x in range(nx):
                        dst[x] = max(dst[x], r[x])
                else:
                    for x in range(nx):
                        dst[x] = min(dst[x], r[x])


@numba.njit(nogil=True, cache=True)
def gaussian_yx(vol, weights, out):  # pragma: no cover - compiled
    """``out[z]`` = ``vol[z]`` (float32) smoothed along y, then along x, by the symmetric
    ``weights`` (float64, odd length), edges repeated: ``scipy.ndimage.gaussian_filter(vol,
    (0, s, s), mode="nearest")`` to the bit, given its weights.

    The same arithmetic as ndimage's 1D correlation: each output the centre tap plus, tap by
    tap outward, ``w[j] * (x[+j] + x[-j])`` in float64, rounded to float32 after each axis.
    Here a row at a time, so that the loops run across x (vectorised), and without the GIL:
    ndimage's held it, serialising the block threads, and its import was 30 ms of every
    fresh process.
    """
    nz, ny, nx = vol.shape
    r = (weights.shape[0] - 1) // 2
    w0 = weights[r]
    rows = np.empty((ny, nx), np.float32)
    acc = np.empty(nx, np.float64)
    line = np.empty(nx + 2 * r, np.float64)
    for z in range(nz):
        for y in range(ny):  # along y: whole rows, the nearest row repeated past an edge
            src = vol[z, y]
            for x in range(nx):
                acc[x] = src[x] * w0
            for j in range(1, r + 1):
                above, below = vol[z, max(y - j, 0)], vol[z, min(y + j, ny - 1)]
                wj = weights[r + j]
                for x in range(nx):
                    acc[x] += (np.float64(below[x]) + np.float64(above[x])) * wj
            for x in range(nx):
                rows[y, x] = acc[x]
        for y in range(ny):  # along x: each row padded with its edge values
            row = rows[y]
            for i in range(r):
                line[i] = row[0]
                line[r + nx + i] = row[nx - 1]
            for x in range(nx):
                line[r + x] = row[x]
            for x in range(nx):
                acc[x] = line[r + x] * w0
            for j in range(1, r + 1):
                wj = weights[r + j]
                for x in range(nx):
                    acc[x] += (line[r + x + j] + line[r + x - j]) * wj
            dst = out[z, y]
            for x in range(nx):
                dst[x] = acc[x]


@numba.njit(nogil=True, cache=True)
def median9_at(img, ys, xs, out):  # pragma: no cover - compiled
    """``out[i]`` = the median of the 3x3 neighbourhood (centre included, edges repeated) of
    ``img`` at (``ys[i]``, ``xs[i]``).

    The hot-pixel test's median, by the 19 compare-exchanges of a median-of-9 network
    (branch-free min/max; Paeth's, as in N. Devillard's "Fast median search"): numpy's
    gathers and median over a (9, n) stack took 16 ms for a 256^2 frame, 100 ms at 2048^2.
    """
    ny, nx = img.shape
    for i in range(ys.shape[0]):
        y, x = ys[i], xs[i]
        ym, yp = max(y - 1, 0), min(y + 1, ny - 1)
        xm, xp = max(x - 1, 0), min(x + 1, nx - 1)
        p0, p1, p2 = img[ym, xm], img[ym, x], img[ym, xp]
        p3, p4, p5 = img[y, xm], img[y, x], img[y, xp]
        p6, p7, p8 = img[yp, xm], img[yp, x], img[yp, xp]
        p1, p2 = min(p1, p2), max(p1, p2)
        p4, p5 = min(p4, p5), max(p4, p5)
        p7, p8 = min(p7, p8), max(p7, p8)
        p0, p1 = min(p0, p1), max(p0, p1)
        p3, p4 = min(p3, p4), max(p3, p4)
        p6, p7 = min(p6, p7), max(p6, p7)
        p1, p2 = min(p1, p2), max(p1, p2)
        p4, p5 = min(p4, p5), max(p4, p5)
        p7, p8 = min(p7, p8), max(p7, p8)
        p3 = max(p0, p3)
        p5 = min(p5, p8)
        p4, p7 = min(p4, p7), max(p4, p7)
        p6 = max(p3, p6)
        p4 = max(p1, p4)
        p2 = min(p2, p5)
        p4 = min(p4, p7)
        p4, p2 = min(p4, p2), max(p4, p2)
        p4 = max(p6, p4)
        out[i] = min(p4, p2)


@numba.njit(nogil=True, cache=True)
def subtract_rows(block, rows, i0, i1, w):  # pragma: no cover - compiled
    """``block[z, y, :] -= (1 - w[y]) * rows[z, i0[y], :] + w[y] * rows[z, i1[y], :]``."""
    nz, ny, nx = block.shape
    for z in range(nz):
        for y in range(ny):
            a = rows[z, i0[y]]
            b = rows[z, i1[y]]
            wb = w[y]
            wa = 1 - wb
            out = block[z, y]
            for x in range(nx):
                out[x] -= wa * a[x] + wb * b[x]


@numba.njit(nogil=True, cache=True, fastmath=True)
def normalize_window(vol, wz, wy, wx):  # pragma: no cover - compiled
    """Zero mean, unit variance, times the separable window, in place; returns the energy.

    Two passes (statistics, then scale and window) where numpy took seven.
    """
    flat = vol.reshape(-1)
    n = flat.size
    total = 0.0
    for i in range(n):
        total += flat[i]
    mean = total / n
    var = 0.0
    for i in range(n):
        d = flat[i] - mean
        var += d * d
    std = np.sqrt(var / n)
    inv = 1.0 / std if std > 0 else 1.0
    nz, ny, nx = vol.shape
    energy = 0.0
    m = np.float32(mean)
    for z in range(nz):
        for y in range(ny):
            scale = np.float32(wz[z] * wy[y] * inv)
            row = vol[z, y]
            for x in range(nx):
                v = (row[x] - m) * scale * wx[x]
                row[x] = v
                energy += v * v
    return energy


@numba.njit(nogil=True, cache=True, inline="always")
def _outside(zs, ys, xs, nz, ny, nx):  # pragma: no cover - compiled
    """Whether a source position lies outside the stack (1e-4 px of slack at the edges): the
    one rule of the trilinear and the nearest-voxel kernels, so both cover the same voxels."""
    return zs < -1e-4 or ys < -1e-4 or xs < -1e-4 or zs > nz - 1 + 1e-4 or ys > ny - 1 + 1e-4 or xs > nx - 1 + 1e-4


@numba.njit(nogil=True, cache=True)
def sample_plane(src, z, z_offset, sz, sy, sx, fill, lo, hi, is_int, out):  # pragma: no cover - compiled
    """``out[y, x]`` = trilinear ``src`` at (z - sz, y - sy, x - sx), in out's dtype; fill outside.

    ``src`` holds the stack's planes from ``z_offset`` on. The kernel reads the
    source dtype and writes the output dtype (integers rounded and clipped to
    [lo, hi]), which avoids converting whole planes back and forth in numpy.
    """
    nz, ny, nx = src.shape
    oy, ox = out.shape
    for y in range(oy):
        for x in range(ox):
            zs = z - sz[y, x] - z_offset
            ys = y - sy[y, x]
            xs = x - sx[y, x]
            if _outside(zs, ys, xs, nz, ny, nx):
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
            v = c0 * (1 - fz) + c1 * fz
            if is_int:
                v = min(max(np.floor(v + 0.5), lo), hi)
            out[y, x] = v


@numba.njit(nogil=True, cache=True, fastmath=True)
def sample_plane_yx(src, z, zs_base, y0s, x0s, fys, fxs, inside, fill, lo, hi, is_int, out):  # pragma: no cover
    """Fast path of :func:`sample_plane` when the field does not vary along z.

    The y/x source indices and weights (``y0s``, ``x0s``, ``fys``, ``fxs``,
    ``inside``) are computed once for all planes; only z is resolved here
    (``zs = z + zs_base``). A smooth field keeps the source's (z0, y0, x0 - x)
    constant over long runs of each output row; inside a run the eight taps are
    contiguous loads from four source rows, which the compiler vectorises (2.4x
    faster than a gather per voxel). Needs ``src.shape[2] >= 2``.
    """
    nz, ny, nx = src.shape
    oy, ox = out.shape
    z_idx = np.empty(ox, np.int64)
    fz = np.empty(ox, np.float32)
    ok = np.empty(ox, np.bool_)
    acc = np.empty(ox, np.float32)
    top = np.float32(nz - 1)
    for y in range(oy):
        for x in range(ox):  # z index and weight per voxel: arithmetic only
            zs = np.float32(z) + zs_base[y, x]
            ok[x] = inside[y, x] and zs >= -1e-4 and zs <= top + 1e-4
            zc = min(max(zs, np.float32(0)), top)
            z0 = min(np.int64(zc), nz - 2) if nz > 1 else 0
            z_idx[x] = z0
            fz[x] = zc - z0
        x = 0
        while x < ox:  # runs of constant (z0, y0, x0 - x)
            z0 = z_idx[x]
            y0 = y0s[y, x]
            d = x0s[y, x] - x
            end = x + 1
            while end < ox and z_idx[end] == z0 and y0s[y, end] == y0 and x0s[y, end] - end == d:
                end += 1
            z1 = min(z0 + 1, nz - 1)
            y1 = min(y0 + 1, ny - 1)
            lo_x, hi_x = x + d, end + d + 1  # x0 <= nx - 2 (see warp._yx_tables): hi_x <= nx
            _trilinear_run(
                src[z0, y0, lo_x:hi_x], src[z0, y1, lo_x:hi_x], src[z1, y0, lo_x:hi_x], src[z1, y1, lo_x:hi_x],
                fxs[y, x:end], fys[y, x:end], fz[x:end], acc[x:end],
            )  # fmt: skip
            x = end
        row = out[y]
        for x in range(ox):
            v = acc[x]
            if is_int:
                v = np.float32(np.floor(min(max(v + np.float32(0.5), np.float32(lo)), np.float32(hi))))
            row[x] = v if ok[x] else fill


@numba.njit(nogil=True, cache=True, fastmath=True, inline="always")
def _trilinear_run(r00, r01, r10, r11, fx, fy, fz, acc):  # pragma: no cover - compiled
    """acc[i] = trilinear of the four source rows at (i + fx[i], fy[i], fz[i]); contiguous."""
    for i in range(acc.shape[0]):
        g = fx[i]
        c00 = np.float32(r00[i]) + (np.float32(r00[i + 1]) - np.float32(r00[i])) * g
        c01 = np.float32(r01[i]) + (np.float32(r01[i + 1]) - np.float32(r01[i])) * g
        c10 = np.float32(r10[i]) + (np.float32(r10[i + 1]) - np.float32(r10[i])) * g
        c11 = np.float32(r11[i]) + (np.float32(r11[i + 1]) - np.float32(r11[i])) * g
        c0 = c00 + (c01 - c00) * fy[i]
        c1 = c10 + (c11 - c10) * fy[i]
        acc[i] = c0 + (c1 - c0) * fz[i]


@numba.njit(nogil=True, cache=True)
def sample_plane_nearest(src, z, z_offset, sz, sy, sx, fill, out):  # pragma: no cover - compiled
    """``out[y, x]`` = ``src`` at the voxel nearest to (z - sz, y - sy, x - sx); fill outside.

    For labels: a copied value, never a blend of two labels. Inside and outside as in
    :func:`sample_plane`, so a corrected label image covers what the corrected image covers.
    """
    nz, ny, nx = src.shape
    oy, ox = out.shape
    for y in range(oy):
        for x in range(ox):
            zs = z - sz[y, x] - z_offset
            ys = y - sy[y, x]
            xs = x - sx[y, x]
            if _outside(zs, ys, xs, nz, ny, nx):
                out[y, x] = fill
                continue
            zi = min(max(int(np.floor(zs + 0.5)), 0), nz - 1)
            yi = min(max(int(np.floor(ys + 0.5)), 0), ny - 1)
            xi = min(max(int(np.floor(xs + 0.5)), 0), nx - 1)
            out[y, x] = src[zi, yi, xi]


def warm_up() -> None:
    """Run numba's one-time set-up now: its first dispatch in a process (~0.3 s: typing and
    lowering registries, LLVM, scipy.linalg for its BLAS check) otherwise falls on the first
    registration. A GUI calls this in a thread of its own when it opens.

    One kernel on a tiny array, with the types the engine passes it (its background step's:
    float32 volumes, float64 weights), so that the signature loaded is one the registration
    loads anyway (from the cache on disk once a registration has run; compiled otherwise).
    """
    vol = np.zeros((1, 4, 4), dtype=np.float32)
    gaussian_yx(vol, np.ones(1), np.empty_like(vol))


def dispatchers() -> list:
    """The compiled kernels of this module (numba dispatchers: their ``signatures`` and ``stats``)."""
    return [f for f in globals().values() if isinstance(f, numba.core.registry.CPUDispatcher)]
