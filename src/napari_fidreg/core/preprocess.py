"""Preprocessing before correlation: hot pixels, background, windows.

Each step is a plain function on float32 arrays so that it can be tested and used
on its own; :func:`prepare` chains them the way the registration does.
"""

from __future__ import annotations

import numpy as np

from .interpolate import linear_taps
from .kernels import bin_planes, box_extreme, gaussian_yx, median9_at, normalize_window, subtract_rows
from .validate import kernel_input

_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
_NO_MIN = np.zeros((0, 0), dtype=np.float32)  # bin_planes without the minimum over z


def neighbour_median(take, ys: np.ndarray, xs: np.ndarray, shape_yx, offsets=_NEIGHBOURS) -> np.ndarray:
    """Median over ``offsets`` of ``take(y, x)`` around the pixels (ys, xs), edges repeated.

    ``take(yy, xx)`` returns the values at those pixels (of a frame, of every plane of a
    stack, or of a lazy stack): the one neighbourhood gather behind the hot-pixel
    test, the hot-pixel replacement and the binned copy's correction.
    """
    ny, nx = shape_yx
    samples = [take(np.clip(ys + dy, 0, ny - 1), np.clip(xs + dx, 0, nx - 1)) for dy, dx in offsets]
    return np.median(np.stack(samples), axis=0)


def hot_pixel_mask(zmin: np.ndarray, *, threshold: float = 8.0) -> np.ndarray:
    """Find camera hot pixels from the per-(y, x) minimum over z.

    A hot pixel is bright in every plane at the same (y, x), so it survives the
    minimum over z while fiducials, which occupy a few planes, do not. It is also
    isolated: most of its excess over the frame's median is not shared with its
    3x3 neighbourhood, which tells it apart from a fiducial in a single-plane
    stack.

    Parameters
    ----------
    zmin : (y, x) array
        Minimum over z of the stack (of both stacks, for a pair: hot pixels are
        camera-fixed).
    threshold : float
        Robust standard deviations above the 3x3 median.

    Returns
    -------
    (y, x) bool array
    """
    zmin = np.ascontiguousarray(zmin, dtype=np.float32)
    ny, nx = zmin.shape
    # The robust noise of (pixel - 3x3 median) from a sample of pixels, and the exact
    # 3x3 median only where the pixel stands out of its neighbourhood's minimum: a full
    # median filter costs 0.5 s on a 2048^2 frame, this ~0.1 s.
    rng = np.random.default_rng(0)
    n_sample = min(ny * nx, 200_000)
    idx = rng.choice(ny * nx, n_sample, replace=False) if n_sample < ny * nx else np.arange(ny * nx)
    sy, sx = np.divmod(idx, nx)
    resid_sample = zmin[sy, sx] - _median9(zmin, sy, sx)
    mad = float(np.median(np.abs(resid_sample - np.median(resid_sample))))
    if mad == 0:
        # Quantised data (an 8-bit camera, dim counts): more than half of the residuals are
        # exactly 0, the MAD is 0, and every pixel a count above its neighbours would be
        # "hot" (39 000 of a 512^2 8-bit frame, 15 %, replaced and slow). The noise is then
        # no less than the data's step, the smallest non-zero residual.
        steps = np.abs(resid_sample[resid_sample != 0])
        mad = float(steps.min()) if steps.size else 0.0
    sigma = max(1.4826 * mad, 1e-6 * max(float(np.abs(zmin).max()), 1.0))
    floor = np.empty_like(zmin)  # its 3x3 minimum
    box_extreme(zmin[None], 1, False, floor[None])
    cy, cx = np.nonzero(zmin - floor > threshold * sigma)
    mask = np.zeros((ny, nx), dtype=bool)
    if cy.size == 0:
        return mask
    resid = zmin[cy, cx] - _median9(zmin, cy, cx)
    excess = zmin[cy, cx] - float(np.median(zmin[sy, sx]))
    keep = (resid > threshold * sigma) & (resid > 0.5 * excess)
    mask[cy[keep], cx[keep]] = True
    return mask


def _median9(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """3x3 median (centre included) at the given pixels of a float32 frame."""
    out = np.empty(len(ys), dtype=np.float32)
    # contiguous: the indices of np.nonzero are strided views, which would load a second signature
    median9_at(img, np.ascontiguousarray(ys, dtype=np.int64), np.ascontiguousarray(xs, dtype=np.int64), out)
    return out


def replace_hot_pixels(vol: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace, in place, every masked (y, x) column by its 8-neighbour median per plane.

    ``vol`` is a float array (z, y, x) that the caller owns; ``mask`` is (y, x).
    Returns ``vol``.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return vol
    vol[:, ys, xs] = neighbour_median(lambda yy, xx: vol[:, yy, xx], ys, xs, mask.shape)
    return vol


def subtract_background(vol: np.ndarray, *, sigma: float = 8.0) -> np.ndarray:
    """Subtract a smooth per-plane background, in place; returns ``vol``.

    The background is the lower envelope of each plane (a grey opening wider than
    a fiducial) smoothed with a Gaussian of ``sigma`` pixels. It is estimated on a
    copy binned to ~1.5 ``sigma`` (the envelope is smooth at that scale, and the filters
    are the costly part) and interpolated back linearly. Using the lower envelope rather than a plain blur
    keeps bright fiducials from raising their own background. The result is
    unclipped (noise stays centred).
    """
    _, ny, nx = vol.shape
    factor = max(1, min(int(round(1.5 * sigma)), ny // 4, nx // 4))
    env = background_envelope(bin_mean(vol, factor), sigma / factor)
    if factor == 1:
        vol -= env
        return vol
    gy, gx = env.shape[1:]
    iy0, wy = linear_taps(((np.arange(ny) + 0.5) / factor - 0.5).astype(np.float32), gy)
    ix0, wx = linear_taps(((np.arange(nx) + 0.5) / factor - 0.5).astype(np.float32), gx)
    iy1, ix1 = np.minimum(iy0 + 1, gy - 1), np.minimum(ix0 + 1, gx - 1)
    # along x on the small grid (two taps), then along y at full size in one compiled
    # pass: numpy's fancy-indexed full-size temporaries took 10x longer, and a BLAS
    # product serialised the block threads
    along_x = env[:, :, ix0] * (1 - wx) + env[:, :, ix1] * wx
    subtract_rows(vol, np.ascontiguousarray(along_x, dtype=np.float32), iy0, iy1, wy)
    return vol


def background_envelope(small: np.ndarray, sigma: float) -> np.ndarray:
    """Per-plane smooth lower envelope of ``small`` (``sigma`` in its own pixels).

    A grey opening wider than a fiducial, then a Gaussian. The opening (minimum then
    maximum filter) follows the lower envelope but, unlike a minimum filter alone,
    leaves linear gradients unbiased.
    """
    half = int(np.ceil(1.5 * sigma))  # a (2 half + 1)^2 square, as ndimage.grey_opening's size
    env = np.empty_like(small, dtype=np.float32)
    box_extreme(np.ascontiguousarray(small, dtype=np.float32), half, False, env)  # erosion,
    box_extreme(env, half, True, env)  # then dilation: the opening
    out = np.empty_like(env)
    gaussian_yx(env, gaussian_weights(sigma), out)
    return out


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The normalised Gaussian taps of ``scipy.ndimage.gaussian_filter1d`` (float64), to
    ``truncate`` sigmas: the weights of :func:`~.kernels.gaussian_yx`."""
    if float(sigma) <= 1e-15:  # ndimage leaves such an axis alone (the taps would be 1/0)
        return np.ones(1)
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1).astype(np.float64)
    phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x**2)
    return phi / phi.sum()


def bin_mean(vol: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor bins in y/x (float32); a ragged edge bin averages what it has.

    One compiled pass over the volume: numpy's strided adds made one pass per offset
    in the bin, over non-contiguous memory along x (12 ms -> ~2 ms for a 68x272x272
    block binned by 12). ``vol`` is read in its own dtype (a uint16 stack needs no
    full-size float copy first: the QC projections bin raw planes).
    """
    if factor == 1:
        return np.array(vol, dtype=np.float32, order="C", copy=True)
    vol = kernel_input(vol)
    nz, ny, nx = vol.shape
    out = np.zeros((nz, -(-ny // factor), -(-nx // factor)), dtype=np.float32)
    # an empty minimum of the input's dtype: for uint16 the coarse scan's compiled signature
    bin_planes(vol, 0, ny, 0, nx, factor, out, _NO_MIN if vol.dtype == np.float32 else np.zeros((0, 0), vol.dtype))
    out /= bin_counts(ny, factor)[None, :, None] * bin_counts(nx, factor)[None, None, :]
    return out


def bin_counts(n: int, factor: int) -> np.ndarray:
    """Pixels in each of the ``ceil(n / factor)`` bins (the last bin of a ragged edge holds fewer)."""
    return np.minimum(factor, n - np.arange(-(-n // factor)) * factor).astype(np.float32)


def window_1d(n: int, fraction: float) -> np.ndarray:
    """Tukey window of length ``n`` whose tapered part is ``fraction`` of it."""
    if n < 3 or fraction <= 0:
        return np.ones(n, dtype=np.float32)
    return tukey(n, fraction).astype(np.float32) + np.float32(1e-3)


def tukey(n: int, alpha: float) -> np.ndarray:
    """scipy.signal.windows.tukey(n, alpha) (symmetric), without importing scipy.signal.

    scipy.signal pulls in scipy.stats: half a second of start-up for every CLI call
    and every dask worker, for one window formula.
    """
    if alpha >= 1:
        alpha = 1.0
    i = np.arange(n, dtype=np.float64)
    width = int(np.floor(alpha * (n - 1) / 2.0))
    w = np.ones(n)
    left = i[: width + 1]
    right = i[n - width - 1 :]
    w[: width + 1] = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * left / alpha / (n - 1))))
    w[n - width - 1 :] = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * right / alpha / (n - 1))))
    return w


def window_autocorrelation(w: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of a 1D window at integer lags.

    ``a(d) = sum_i w[i] w[i + d] / sum_i w[i]**2``. Multiplying two stacks by the
    window scales their correlation at lag ``d`` by ``a(d)`` on average; dividing
    it out removes the pull of the peak toward zero lag.
    """
    n = len(w)
    full = np.correlate(w.astype(np.float64), w.astype(np.float64), mode="full")
    full /= full[n - 1]
    lags = np.asarray(lags).astype(int)
    idx = np.clip(lags + n - 1, 0, 2 * n - 2)
    out = full[idx]
    out[np.abs(lags) >= n] = 0.0
    return out


def normalize_windowed(vol: np.ndarray, windows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, float]:
    """Zero-mean, unit-variance, windowed, in place; returns (vol, energy).

    ``vol`` is a C-contiguous float32 array. ``energy`` is the sum of squares
    after windowing, used to normalise the correlation to [-1, 1]. A constant
    volume has energy 0.
    """
    if vol.dtype != np.float32 or not vol.flags.c_contiguous:
        raise TypeError("normalize_windowed needs a C-contiguous float32 array")
    wz, wy, wx = (np.ascontiguousarray(w, dtype=np.float32) for w in windows)
    return vol, float(normalize_window(vol, wz, wy, wx))


def prepare(vol: np.ndarray, *, hot_mask: np.ndarray | None, background: bool, background_sigma: float) -> np.ndarray:
    """Float32 copy of ``vol`` with hot pixels replaced and background removed."""
    out = np.array(vol, dtype=np.float32, order="C", copy=True)
    return clean(out, hot_mask=hot_mask, background=background, background_sigma=background_sigma)


def clean(vol: np.ndarray, *, hot_mask: np.ndarray | None, background: bool, background_sigma: float) -> np.ndarray:
    """:func:`prepare`'s steps on ``vol`` itself (a float array the caller owns, a chunk of
    one say), in place; returns ``vol``."""
    if hot_mask is not None and hot_mask.any():
        replace_hot_pixels(vol, hot_mask)
    if background:
        subtract_background(vol, sigma=background_sigma)
    return vol
