"""Map point coordinates (spot localizations) of a moving round into the reference frame.

A registration's shift field ``s`` is defined on *reference* positions: the corrected
stack is ``corrected(p) = moving(p - s(p))``. A spot found at ``q`` in the moving stack
therefore sits at the reference position ``p`` that solves ``p - s(p) = q``. With a
global shift that is ``p = q + s``; with a block field ``s`` varies with ``p``, and
evaluating it at ``q`` instead (the forward field) would be off by the field's change
over the shift itself (0.1-0.5 px on a deforming sample). The equation is solved by
fixed-point iteration ``p <- q + s(p)``, which converges when the field changes by less
than a pixel per pixel (a smooth field changes by a few pixels over a block).

The field is evaluated exactly as :mod:`.warp` applies it (bilinear in y/x between block
centres, linear in z between z-levels, held constant beyond the outer centres), so a
mapped spot lands where the corrected stack shows it.
"""

from __future__ import annotations

import numpy as np

from .errors import FidregError
from .interpolate import linear_taps
from .result import Registration

MAX_ITERATIONS = 50
TOLERANCE = 1e-6  # px: far below any localization precision


def field_at(registration: Registration, points, *, use_blocks: bool = True) -> np.ndarray:
    """The shift field ``s(p)`` (px, (dz, dy, dx) per row) at reference positions ``points``.

    Parameters
    ----------
    registration : Registration
    points : array-like, shape (n, 3)
        (z, y, x) positions in reference pixels.
    use_blocks : bool
        Evaluate the block field when the registration has one (default), else
        the global shift everywhere.
    """
    p = _as_points(points)
    if not (use_blocks and registration.has_blocks):
        return np.broadcast_to(np.asarray(registration.global_shift, float), p.shape).copy()
    centres, shifts = registration.block_field()
    (iz0, wz), (iy0, wy), (ix0, wx) = (_taps(p[:, k], c) for k, c in enumerate(centres))
    gz, gy, gx = shifts.shape[:3]
    out = np.zeros_like(p)
    # trilinear over the 8 surrounding grid nodes (a node repeats on an axis of one node)
    for dz, fz in ((0, 1 - wz), (1, wz)):
        for dy, fy in ((0, 1 - wy), (1, wy)):
            for dx, fx in ((0, 1 - wx), (1, wx)):
                node = shifts[np.minimum(iz0 + dz, gz - 1), np.minimum(iy0 + dy, gy - 1), np.minimum(ix0 + dx, gx - 1)]
                out += (fz * fy * fx)[:, None] * node
    return out


def map_points(registration: Registration, points, *, use_blocks: bool = True) -> np.ndarray:
    """Map (z, y, x) positions of the moving stack into the reference frame.

    Parameters
    ----------
    registration : Registration
        Registration of the moving stack onto the reference.
    points : array-like, shape (n, 3)
        Positions in the moving stack, pixels (z, y, x); fractional values welcome.
    use_blocks : bool
        Use the block field when there is one (default), else the global shift.

    Returns
    -------
    ndarray, shape (n, 3)
        Positions in the reference frame, where the corrected stack
        (:func:`napari_fidreg.core.warp`) shows the same spot.

    Raises
    ------
    FidregError
        When a position is not finite, or when the iteration does not converge
        (a block field that folds over itself).

    Notes
    -----
    Solves ``p - s(p) = q`` for each moving position ``q`` by fixed-point iteration
    (see the module docstring); with a global shift this is ``p = q + shift``.
    """
    q = _as_points(points)
    if not (use_blocks and registration.has_blocks):
        return q + np.asarray(registration.global_shift, float)
    _refuse_folds(registration)
    p = q + field_at(registration, q)
    for _ in range(MAX_ITERATIONS):
        nxt = q + field_at(registration, p)
        change = np.abs(nxt - p).max(initial=0.0)
        p = nxt
        if change < TOLERANCE:
            return p
    raise FidregError(
        f"mapping points through the block field did not converge (last change {change:.2g} px): "
        "the field changes faster than the positions it moves; use the global shift (use_blocks=False)"
    )


def _refuse_folds(registration: Registration) -> None:
    """A field whose shift along an axis changes by a pixel or more per pixel folds the
    stack over itself: two moving positions map to one, and the inverse is not defined."""
    centres, shifts = registration.block_field()
    for axis in range(3):
        if len(centres[axis]) < 2:
            continue
        slope = np.diff(shifts[..., axis], axis=axis) / np.diff(centres[axis]).reshape(
            [-1 if k == axis else 1 for k in range(3)]
        )
        if np.abs(slope).max() >= 1.0:
            raise FidregError(
                f"the block field folds along {'zyx'[axis]} (its shift changes by {np.abs(slope).max():.2f} px per px "
                "between block centres): points cannot be mapped through it; use the global shift (use_blocks=False)"
            )


def _as_points(points) -> np.ndarray:
    try:
        p = np.array(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise FidregError("points must be numbers, an (n, 3) array of (z, y, x) positions") from None
    if p.ndim == 1 and p.size == 3:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != 3:
        raise FidregError(f"points must be an (n, 3) array of (z, y, x) positions, got shape {p.shape}")
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise FidregError(f"point {int(np.flatnonzero(bad)[0])} is not finite: {p[bad][0].tolist()}")
    return p


def _taps(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower grid node and upper weight along one axis, held constant beyond the ends: the
    warp's own taps (:func:`.interpolate.linear_taps`), in float64."""
    pos = np.interp(x, centres, np.arange(len(centres), dtype=np.float64))  # fractional node index
    return linear_taps(pos, len(centres))
