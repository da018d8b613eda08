"""Synthetic fiducial stacks with known shifts: the demo, the sample data, tests, benchmarks.

Beads are Gaussian spots (sigma ~1.3 px in y/x, ~2.5 planes in z) rendered
analytically at sub-pixel positions, on a smooth uneven background, with
Poisson and read noise and camera hot pixels at the same (y, x) in both stacks
and every plane. The moving stack's beads sit at ``p - shift(p)`` so that the
known ``shift`` is exactly what the registration should report (the shift to
apply to the moving stack).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LocalShift = Callable[[np.ndarray], np.ndarray]
"""Local shift (beyond the global one) at (n, 3) reference positions."""


@dataclass
class SyntheticPair:
    """A reference/moving pair and its truth."""

    reference: np.ndarray
    moving: np.ndarray
    shift: np.ndarray
    """Global shift to apply to ``moving`` (dz, dy, dx)."""
    beads: np.ndarray
    """(n, 3) bead positions in the reference."""
    amplitudes: np.ndarray
    local_shift: LocalShift | None
    """Local shift (beyond the global one) at (n, 3) positions, or None."""
    hot_pixels: np.ndarray
    """(n, 2) (y, x) of the hot pixels."""

    def shift_at(self, points: np.ndarray) -> np.ndarray:
        """Total shift to apply to ``moving`` at (n, 3) reference positions."""
        points = np.atleast_2d(points).astype(float)
        out = np.broadcast_to(self.shift, points.shape).copy()
        if self.local_shift is not None:
            out += self.local_shift(points)
        return out

    def block_truth(self, origin, size, *, z_taper: float | None = None, yx_taper: float | None = None):
        """Shift a block should report: its beads' shifts weighted by brightness^2 and window.

        The windows default to :class:`Params`' defaults. Returns None when the block
        holds no bead.
        """
        from .params import Params
        from .preprocess import window_1d

        defaults = Params()
        z_taper = defaults.z_taper if z_taper is None else z_taper
        yx_taper = defaults.yx_taper if yx_taper is None else yx_taper

        origin = np.asarray(origin)
        size = np.asarray(size)
        rel = self.beads - origin
        inside = np.all((rel >= 0) & (rel < size), axis=1)
        if not inside.any():
            return None
        weights = self.amplitudes[inside] ** 2
        for k, frac in enumerate((z_taper, yx_taper, yx_taper)):
            w = window_1d(int(size[k]), frac)
            idx = np.clip(np.round(rel[inside, k]).astype(int), 0, size[k] - 1)
            weights = weights * w[idx] ** 2
        shifts = self.shift_at(self.beads[inside])
        return (shifts * weights[:, None]).sum(axis=0) / weights.sum()


class SmoothDeformation:
    """A smooth local shift field with the given peak amplitude per axis (pixels).

    A class rather than a closure so that a pair and its truth can be pickled
    (the benchmark caches them).
    """

    def __init__(self, shape, amplitude=(0.5, 1.5, 1.5)):
        self.ny, self.nx = shape[1], shape[2]
        self.amp = np.asarray(amplitude, dtype=float)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        y = points[:, 1] / self.ny
        x = points[:, 2] / self.nx
        return np.stack(
            [
                self.amp[0] * np.sin(np.pi * x) * np.cos(np.pi * y),
                self.amp[1] * np.sin(np.pi * (x + 0.5 * y)),
                self.amp[2] * np.cos(np.pi * (y - 0.3 * x)),
            ],
            axis=1,
        )


def fiducial_pair(
    shape: tuple[int, int, int] = (60, 256, 256),
    shift: tuple[float, float, float] = (1.3, -4.6, 7.25),
    *,
    density: float = 1e-3,
    sigma: tuple[float, float, float] = (2.5, 1.3, 1.3),
    amplitude: float = 800.0,
    background: float = 300.0,
    uneven_background: float = 400.0,
    read_noise: float = 3.0,
    n_hot_pixels: int | None = None,
    hot_pixel_value: float = 3000.0,
    deformation: tuple[float, float, float] | None = None,
    empty_region: tuple[slice, slice] | None = None,
    seed: int = 0,
) -> SyntheticPair:
    """Make a reference/moving fiducial pair with a known shift.

    Parameters
    ----------
    shape : (z, y, x)
    shift : (dz, dy, dx)
        Global shift to apply to the moving stack to align it onto the reference.
    density : float
        Beads per (y, x) pixel of the field.
    sigma : (z, y, x)
        Gaussian spot size in pixels.
    amplitude : float
        Median bead peak above background, in counts (log-normal spread).
    background, uneven_background : float
        Flat offset and amplitude of a smooth illumination pattern that differs
        between the two stacks and is fixed to the camera, not the sample.
    read_noise : float
        Gaussian read noise (counts) on top of Poisson noise.
    n_hot_pixels : int or None
        Hot pixels (same (y, x) in both stacks, all planes); default 1 per 4000 px.
    deformation : (az, ay, ax) or None
        Amplitude of a smooth local shift field added to ``shift``.
    empty_region : (slice_y, slice_x) or None
        A (y, x) region left without beads, to test blocks without fiducials.
    seed : int
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    shift = np.asarray(shift, dtype=float)
    margin = np.abs(shift) + 3 * np.asarray(sigma) + (2.0 if deformation else 0.0)
    # Beads fill the field plus a margin so that the moving stack's edges are not empty.
    lo = -margin
    hi = np.asarray(shape) + margin
    lo[0], hi[0] = 0.25 * nz - 0.5, 0.75 * nz - 0.5  # a slab in the middle, as on a coverslip
    if nz == 1:
        lo[0] = hi[0] = 0.0
    n_beads = max(1, int(density * (hi[1] - lo[1]) * (hi[2] - lo[2])))
    beads = rng.uniform(lo, hi, size=(n_beads, 3))
    if empty_region is not None:
        sy, sx = empty_region
        ys = range(ny)[sy]
        xs = range(nx)[sx]
        drop = (
            (beads[:, 1] >= ys.start - 4)
            & (beads[:, 1] < ys.stop + 4)
            & (beads[:, 2] >= xs.start - 4)
            & (beads[:, 2] < xs.stop + 4)
        )
        beads = beads[~drop]
    amplitudes = amplitude * rng.lognormal(0.0, 0.4, size=len(beads))
    local = SmoothDeformation(shape, deformation) if deformation is not None else None

    total = np.broadcast_to(shift, beads.shape).copy()
    if local is not None:
        total += local(beads)
    moved = beads - total  # content of the moving stack sits at p - shift

    if n_hot_pixels is None:
        n_hot_pixels = max(1, ny * nx // 4000)
    hot = np.stack([rng.integers(0, ny, n_hot_pixels), rng.integers(0, nx, n_hot_pixels)], axis=1)
    hot_values = hot_pixel_value * rng.uniform(0.3, 1.5, n_hot_pixels)

    def render(positions: np.ndarray, bg_phase: float, noise_seed: int) -> np.ndarray:
        vol = np.zeros(shape, dtype=np.float32)
        _render_spots(vol, positions, amplitudes, np.asarray(sigma, dtype=float))
        yy = np.linspace(0, 1, ny, dtype=np.float32)[:, None]
        xx = np.linspace(0, 1, nx, dtype=np.float32)[None, :]
        pattern = background + uneven_background * (
            0.5 + 0.5 * np.sin(2.2 * yy + bg_phase) * np.cos(1.7 * xx - bg_phase)
        )
        zprof = 1.0 + 0.2 * np.linspace(-1, 1, nz, dtype=np.float32)[:, None, None]
        vol += (pattern[None] * zprof).astype(np.float32)
        noise_rng = np.random.default_rng(noise_seed)
        vol = noise_rng.poisson(vol).astype(np.float32)
        vol += noise_rng.normal(0, read_noise, size=shape).astype(np.float32)
        vol[:, hot[:, 0], hot[:, 1]] += hot_values.astype(np.float32)
        return np.clip(np.rint(vol), 0, 65535).astype(np.uint16)

    ref = render(beads, 0.0, seed + 1)
    mov = render(moved, 0.7, seed + 2)
    return SyntheticPair(ref, mov, shift, beads, amplitudes, local, hot)


def _render_spots(vol: np.ndarray, positions: np.ndarray, amplitudes: np.ndarray, sigma: np.ndarray) -> None:
    """Add separable Gaussian spots at sub-pixel positions (clipped to the volume)."""
    radius = np.ceil(4 * sigma).astype(int)
    shape = np.asarray(vol.shape)
    for pos, amp in zip(positions, amplitudes):
        centre = np.rint(pos).astype(int)
        lo = np.maximum(centre - radius, 0)
        hi = np.minimum(centre + radius + 1, shape)
        if np.any(hi <= lo):
            continue
        profiles = [
            np.exp(-0.5 * ((np.arange(lo[k], hi[k]) - pos[k]) / sigma[k]) ** 2).astype(np.float32) for k in range(3)
        ]
        vol[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += (
            np.float32(amp) * profiles[0][:, None, None] * profiles[1][None, :, None] * profiles[2][None, None, :]
        )
