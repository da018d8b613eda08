"""Checks of a registration read from a file: every number finite, a consistent block grid,
shifts that leave the stacks overlapping.

A shifts file can be edited by hand, truncated, or written by another tool; whatever it
holds, a registration that reaches the warp must be one the warp can apply (a NaN or
1e9 shift once reached the compiled kernel as an index). Each problem is one line
naming the field.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from .errors import FidregError


def numbers(value: Any, field: str, n: int = 3, *, integer: bool = False, positive: bool = False) -> tuple:
    """``value`` as a tuple of ``n`` finite numbers (ints with ``integer``), or a one-line error."""
    kind = "integers" if integer else "numbers"
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise FidregError(f"{field} must be a list of {n} {kind}, got {_short(value)}")
    out = []
    for v in value:
        ok = isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)
        if ok and integer:
            ok = float(v).is_integer()
        if not ok or (positive and v <= 0):
            what = f"{n} finite {'positive ' if positive else ''}{kind}"
            raise FidregError(f"{field} must be {what}, got {_short(value)}")
        out.append(int(v) if integer else float(v))
    return tuple(out)


def number(value: Any, field: str) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        raise FidregError(f"{field} must be a finite number, got {_short(value)}")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_overlap(shift, shape, field: str) -> None:
    """A shift that moves the stack entirely off itself cannot be applied (nothing would remain)."""
    for k, (s, n) in enumerate(zip(shift, shape)):
        if abs(s) >= max(n, 1) and not (n == 1 and s == 0):
            raise FidregError(
                f"{field} {list(shift)} moves the stack out of itself along {'zyx'[k]} (extent {n}): not a usable shift"
            )


def check_grid(blocks, grid_shape, moving_shape) -> None:
    """Blocks in (z, y, x) raster order of ``grid_shape``, on one rectilinear grid, shifts usable."""
    if not blocks:
        if any(grid_shape):
            raise FidregError(f"grid_shape {list(grid_shape)} but no blocks")
        return
    expected = int(np.prod(grid_shape))
    if len(blocks) != expected:
        raise FidregError(f"{len(blocks)} blocks do not fill grid_shape {list(grid_shape)} ({expected} blocks)")
    for i, (b, idx) in enumerate(zip(blocks, np.ndindex(*grid_shape))):
        if tuple(b.index) != idx:
            raise FidregError(f"block {i} has index {list(b.index)}, expected {list(idx)} (raster order)")
        check_overlap(b.shift, moving_shape, f"block {list(idx)} shift")
    # one origin and size per grid row, column and level, increasing: the field is rectilinear
    for axis in range(3):
        seen: dict[int, tuple[int, int]] = {}
        for b in blocks:
            key = (b.origin[axis], b.size[axis])
            if seen.setdefault(b.index[axis], key) != key:
                raise FidregError(
                    f"blocks with {'zyx'[axis]} index {b.index[axis]} do not share one origin and size: not a grid"
                )
        starts = [seen[i][0] for i in range(grid_shape[axis])]
        if any(a >= b for a, b in zip(starts, starts[1:])):
            raise FidregError(f"block origins along {'zyx'[axis]} are not increasing ({starts}): duplicate blocks?")
