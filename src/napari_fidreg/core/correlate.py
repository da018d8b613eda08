"""Normalized 3D cross-correlation with a sub-pixel peak and a quality score.

Method
------
Both volumes are made zero-mean and unit-variance, multiplied by a separable
Tukey window, zero-padded so that every searched lag is a *linear* (not
circular) correlation (less padding where the window has already silenced the
samples that would wrap around: :func:`fft_length`), and correlated with float32 real FFTs
(``scipy.fft.rfftn``). The integer peak is searched within ``max_shift``; its
3x3x3 neighbourhood is divided by the windows' autocorrelation at those lags
(this removes the bias toward zero lag that limited overlap, the z axis
especially, causes) and fitted with a log-quadratic *with cross terms* (a
3D Gaussian of any orientation, by central differences: the per-axis 3-point
fits plus the cross terms, which matter because dense, anisotropic texture
gives tilted peaks that per-axis fits miss by up to half a pixel). Where that fit does not apply
(an axis without search range, a non-positive sample, a saddle) each axis gets
its own 3-point Gaussian fit, or a parabola when a sample is not positive.

Sign convention: the returned shift is what to apply to ``moving`` to align it
onto ``reference`` (scikit-image's ``phase_cross_correlation`` convention), so
``scipy.ndimage.shift(moving, shift)`` registers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .params import Params
from .preprocess import normalize_windowed, window_1d, window_autocorrelation


@dataclass(frozen=True)
class ShiftEstimate:
    """One pairwise estimate.

    Attributes
    ----------
    shift : (dz, dy, dx) float array
        Shift to apply to the moving volume, in pixels.
    score : float
        Normalized cross-correlation at the peak, in [-1, 1].
    sharpness : float
        Peak-to-sidelobe ratio: (peak - mean) / std of the correlation over all
        searched lags. Noise-only blocks give ~3-5, fiducial-rich blocks > 15.
    at_limit : bool
        The peak sits on the edge of the searched range on some axis: the true
        shift may be larger than ``max_shift``.
    """

    shift: np.ndarray
    score: float
    sharpness: float
    at_limit: bool = False


def correlate(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    max_shift: tuple[float, float, float],
    z_taper: float = Params.z_taper,
    yx_taper: float = Params.yx_taper,
    workers: int = 1,
    refine: int = 0,
) -> ShiftEstimate:
    """Estimate the shift of ``moving`` onto ``reference`` (same shape, float32, preprocessed).

    Both arrays are modified in place (normalised and windowed): pass copies you own.

    Parameters
    ----------
    reference, moving : (z, y, x) float32 arrays of equal shape
    max_shift : (dz, dy, dx)
        Largest |shift| searched per axis, in pixels (capped at the extent - 1).
    z_taper, yx_taper : float
        Tukey fractions of the windows along z and y/x (default: :class:`Params`').
    workers : int
        Threads for the FFTs.
    refine : int
        Extra passes: the moving volume is Fourier-shifted by the current
        estimate (before windowing, so the window stays fixed on the reference)
        and the small residual is measured again. Windowing biases an estimate
        in proportion to its distance from zero lag, so one pass removes almost
        all of it (z error 0.01-0.025 px -> < 0.005 px on synthetic beads).
    """
    shape = reference.shape
    windows = (
        window_1d(shape[0], z_taper),
        window_1d(shape[1], yx_taper),
        window_1d(shape[2], yx_taper),
    )
    limits = [min(int(np.ceil(m)), n - 1) for m, n in zip(max_shift, shape)]
    fshape = [fft_length(n, m, w) for n, m, w in zip(shape, limits, windows)]
    raw = moving.copy() if refine > 0 else None
    ref, e_ref = normalize_windowed(reference, windows)
    # conj(FFT(ref)) is kept: the refinement passes correlate against it again
    f_ref = sfft.rfftn(ref, fshape, workers=workers)
    np.conjugate(f_ref, out=f_ref)
    est = _correlate_spectrum(f_ref, e_ref, moving, windows, limits, fshape, workers, keep_ref=refine > 0)
    for _ in range(refine):
        shifted = fourier_shift(raw, est.shift, workers=workers)
        small = [min(2, m) for m in limits]
        residual = _correlate_spectrum(f_ref, e_ref, shifted, windows, small, fshape, workers)
        est = ShiftEstimate(est.shift + residual.shift, residual.score, est.sharpness, est.at_limit)
    return est


def fft_length(n: int, max_lag: int, window: np.ndarray, tol: float = 1e-5) -> int:
    """Shortest fast FFT length along an axis for lags up to ``max_lag`` without wrap-around.

    A circular correlation of length ``L`` adds, at lag ``d``, the linear lag
    ``d - L``, whose overlap is the ``n + d - L`` outermost samples at opposite
    ends. Zero padding to ``n + max_lag`` removes it; but the window has already
    taken those samples to nearly zero, so a shorter length (often ``n`` itself,
    a power of two for 256-px blocks) is enough when the window products there
    carry less than ``tol`` of the window's energy. This halves the FFT cost of
    a 60x256x256 block (72x270x270 -> 64x256x256).
    """
    w = window.astype(np.float64)
    energy = float(np.dot(w, w))
    length = n
    while True:
        length = sfft.next_fast_len(length, real=True)
        k = n + max_lag - length
        if k <= 0 or float(np.dot(w[:k], w[n - k :])) <= tol * energy:
            return length
        length += 1


def _correlate_spectrum(f_ref, e_ref, moving, windows, limits, fshape, workers, keep_ref=True) -> ShiftEstimate:
    """Correlate ``moving`` (normalised and windowed in place) with a reference spectrum.

    Without ``keep_ref`` the product overwrites ``f_ref``, so that one spectrum fewer
    is alive during the inverse transform (the memory peak of the coarse step).
    """
    mov, e_mov = normalize_windowed(moving, windows)
    if e_ref == 0 or e_mov == 0:
        return ShiftEstimate(np.zeros(3), 0.0, 0.0, False)
    f_mov = sfft.rfftn(mov, fshape, workers=workers)
    if keep_ref:
        f_mov *= f_ref
    else:
        f_ref *= f_mov
        f_mov = f_ref
    # xcorr[d] = sum_x ref[x] * mov[x + d]; its peak is at minus the shift to apply. Only the
    # searched lags are transformed back, and the whole correlation's mean and spread (for the
    # sharpness) come from the spectrum itself.
    lags = [np.arange(-m, m + 1) for m in limits]
    mean, std = _spectrum_moments(f_mov, fshape)
    window = _lag_window(f_mov, fshape, lags, workers)
    del f_mov
    peak = np.unravel_index(int(np.argmax(window)), window.shape)
    peak_value = float(window[peak])
    at_limit = any(limits[k] > 0 and peak[k] in (0, window.shape[k] - 1) for k in range(3))

    lag = np.array([lags[k][peak[k]] for k in range(3)], dtype=np.float64)
    frac = np.zeros(3)
    for k in range(3):
        if limits[k] == 0 or peak[k] in (0, window.shape[k] - 1):
            continue
        idx = list(peak)
        samples = []
        for step in (-1, 0, 1):
            idx[k] = peak[k] + step
            samples.append(float(window[tuple(idx)]))
        auto = window_autocorrelation(windows[k], lag[k] + np.array([-1, 0, 1]))
        auto = np.where(auto > 1e-6, auto, 1e-6)
        frac[k] = _fit_peak(np.asarray(samples) / auto)
    # the full 3x3x3 fit where it applies; the per-axis fits otherwise
    full = _fit_peak_3d(window, peak, lag, windows, limits)
    if full is not None:
        frac = full

    sharpness = (peak_value - mean) / std if std > 0 else 0.0
    score = float(np.clip(peak_value / np.sqrt(e_ref * e_mov), -1.0, 1.0))
    return ShiftEstimate(-(lag + frac), score, float(sharpness), bool(at_limit))


def _lag_window(spectrum: np.ndarray, fshape, lags, workers: int) -> np.ndarray:
    """``irfftn(spectrum, fshape)[np.ix_(*lags)]`` (lags taken modulo ``fshape``), computed
    one axis at a time, keeping after each inverse transform only the lags searched.

    ``spectrum`` (a product of half spectra, last axis ``fshape[-1] // 2 + 1``) is
    overwritten. A block searched +-5 px of 64x256x256 needs 11^3 of its 4.2 M lags:
    the z transform runs on the whole spectrum, the y one on 11/64 of it, the x one on
    11 x 11 rows, about a third of a full inverse transform (each line's transform is
    the one ``irfftn`` makes: the same numbers, to rounding).
    """
    nz, ny, nx = fshape
    kz, ky, kx = (lag % n for lag, n in zip(lags, fshape))
    part = sfft.ifft(spectrum, axis=0, workers=workers, overwrite_x=True)[kz]
    part = sfft.ifft(part, axis=1, workers=workers, overwrite_x=True)[:, ky]
    return sfft.irfft(part, n=nx, axis=2, workers=workers)[:, :, kx]


def _spectrum_moments(spectrum: np.ndarray, fshape) -> tuple[float, float]:
    """Mean and standard deviation over all lags of ``irfftn(spectrum, fshape)``, from the
    spectrum (Parseval): the mean is the zero-frequency term over N, the mean square the
    power over N^2, each column of the half spectrum but the first (and the last, for an
    even length) counted twice for its conjugate."""
    n = float(np.prod(fshape))
    weights = np.full(spectrum.shape[-1], 2.0)
    weights[0] = 1.0
    if fshape[-1] % 2 == 0:
        weights[-1] = 1.0
    flat = spectrum.reshape(-1, spectrum.shape[-1]).view(np.float32 if spectrum.dtype == np.complex64 else np.float64)
    # einsum, not np.dot: OpenBLAS's dot wakes its own threads, which on a machine whose
    # cores run the block threads took milliseconds per call (a batch of small stacks 20 % slower)
    columns = np.einsum("ij,ij->j", flat, flat, dtype=np.float64)  # |re|^2 + |im|^2, interleaved
    power = float(np.einsum("j,j->", columns.reshape(-1, 2).sum(axis=1), weights))
    mean = float(spectrum.flat[0].real) / n
    return mean, float(np.sqrt(max(power / (n * n) - mean * mean, 0.0)))


def _fit_peak_3d(window, peak, lag, windows, limits):
    """Sub-sample peak of a log-quadratic with cross terms through the 3x3x3 neighbourhood.

    Gradient and Hessian of the log-correlation by central differences: the
    diagonal from the 3 samples on each axis (exactly the per-axis log-parabola
    fits when the peak is not tilted), the cross terms from the face-diagonal
    samples. Per-axis fits through the integer peak are biased when the peak is
    tilted (dense, anisotropic texture); the cross terms remove that. Returns None
    where the neighbourhood is incomplete, not positive, or not a maximum.
    """
    idx = []
    for k in range(3):
        if limits[k] == 0 or peak[k] in (0, window.shape[k] - 1):
            return None
        idx.append(slice(peak[k] - 1, peak[k] + 2))
    c = window[tuple(idx)].astype(np.float64)
    autos = [np.maximum(window_autocorrelation(windows[k], lag[k] + np.array([-1, 0, 1])), 1e-6) for k in range(3)]
    c = c / (autos[0][:, None, None] * autos[1][None, :, None] * autos[2][None, None, :])
    if np.any(c <= 0):
        return None
    f = np.log(c)
    g = np.array([(f[2, 1, 1] - f[0, 1, 1]) / 2, (f[1, 2, 1] - f[1, 0, 1]) / 2, (f[1, 1, 2] - f[1, 1, 0]) / 2])
    h = np.diag([f[2, 1, 1] + f[0, 1, 1], f[1, 2, 1] + f[1, 0, 1], f[1, 1, 2] + f[1, 1, 0]]) - 2 * f[1, 1, 1]
    h[0, 1] = h[1, 0] = (f[2, 2, 1] - f[2, 0, 1] - f[0, 2, 1] + f[0, 0, 1]) / 4
    h[0, 2] = h[2, 0] = (f[2, 1, 2] - f[2, 1, 0] - f[0, 1, 2] + f[0, 1, 0]) / 4
    h[1, 2] = h[2, 1] = (f[1, 2, 2] - f[1, 2, 0] - f[1, 0, 2] + f[1, 0, 0]) / 4
    if np.any(np.linalg.eigvalsh(h) >= 0):
        return None
    offset = -np.linalg.solve(h, g)
    if np.any(np.abs(offset) > 1):
        return None
    return offset


def _fit_peak(c: np.ndarray) -> float:
    """Sub-sample offset of a peak from three samples (left, centre, right)."""
    left, centre, right = c
    if left > 0 and centre > 0 and right > 0:
        ll, lc, lr = np.log(left), np.log(centre), np.log(right)
        denom = ll - 2 * lc + lr
        if denom < 0:
            return float(np.clip(0.5 * (ll - lr) / denom, -0.5, 0.5))
    denom = left - 2 * centre + right
    if denom < 0:
        return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
    return 0.0


def fourier_shift(vol: np.ndarray, shift, *, workers: int = 1) -> np.ndarray:
    """``vol`` shifted by ``shift`` (applied as ``ndimage.shift`` would) with a padded real FFT.

    Padding by the shift's size plus a margin keeps content from wrapping around;
    what moves in from outside is zero.
    """
    shape = vol.shape
    pad = [sfft.next_fast_len(n + int(np.ceil(abs(s))) + 4, real=True) if n > 1 else 1 for n, s in zip(shape, shift)]
    spec = sfft.rfftn(vol, pad, workers=workers)
    for axis, (n, s) in enumerate(zip(pad, shift)):
        if n == 1 or s == 0:
            continue
        freq = sfft.rfftfreq(n) if axis == 2 else sfft.fftfreq(n)
        phase = np.exp(-2j * np.pi * freq * s).astype(np.complex64)
        bshape = [1, 1, 1]
        bshape[axis] = len(freq)
        spec *= phase.reshape(bshape)
    out = sfft.irfftn(spec, pad, workers=workers)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]], dtype=np.float32)
