"""Linear interpolation weights shared by the background model and the warp."""

from __future__ import annotations

import numpy as np


def linear_taps(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower sample index and upper-sample weight for linear interpolation at ``pos``.

    The index is clipped to ``[0, n - 2]`` and the weight to ``[0, 1]``, so that the
    upper sample ``min(index + 1, n - 1)`` always exists and positions beyond either
    end take the edge value. ``pos`` must be a float32 array the caller owns: it is
    overwritten by the weights, which spares a full-size temporary (32 MiB per
    2048x2048 frame in the warp).
    """
    base = np.floor(pos)
    np.clip(base, 0, max(n - 2, 0), out=base)
    pos -= base
    np.clip(pos, 0, 1, out=pos)
    return base.astype(np.int32), pos


def interp_matrix(coords: np.ndarray, n: int) -> np.ndarray:
    """Dense ``(len(coords), n)`` matrix of linear-interpolation weights, edges held."""
    i0, w1 = linear_taps(np.array(coords, dtype=np.float32), n)
    i1 = np.minimum(i0 + 1, n - 1)
    m = np.zeros((len(coords), n), dtype=np.float32)
    rows = np.arange(len(coords))
    np.add.at(m, (rows, i0), 1 - w1)
    np.add.at(m, (rows, i1), w1)
    return m
