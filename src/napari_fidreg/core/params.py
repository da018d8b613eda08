"""The registration algorithm's parameters: one frozen, validated, serialisable object.

Only what changes the measured shifts lives here. Where to look (``subvolume``),
how fast to run (``workers``) and how to correct (``fill_value``) are keywords of the
calls that use them (:func:`~napari_fidreg.core.register`,
:func:`~napari_fidreg.core.warp`), so one ``Params`` serves every stack of a batch.
Every default is defined here once; the CLI, the widget and the lower-level
functions take theirs from these fields.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from .errors import FidregError

Subvolume = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
DEFAULT_WORKERS = 2  # threads per registration or correction (a keyword of the calls, not a Params field)


MIN_BLOCK_YX = 16  # px: a block (or what of it lies inside the moving stack) narrower is not measured
MIN_BLOCK_Z = 3  # planes: likewise, in a stack of more than one plane (a single image: 1)


def check_measurable_blocks(params: Params, n_planes: int) -> None:
    """Refuse block sizes under what is measured (:data:`MIN_BLOCK_YX`, :data:`MIN_BLOCK_Z`): every
    block would be rejected as not measured (a new user's ``--block-size 8`` ran to the end so)."""
    checks = [("block_size", params.block_size, MIN_BLOCK_YX, "px", "the global shift only")]
    if n_planes > 1:
        checks.append(("block_size_z", params.block_size_z, MIN_BLOCK_Z, "planes", "the whole depth"))
    for name, value, least, unit, otherwise in checks:
        if value is not None and value < least:
            raise FidregError(
                f"{name} must be at least {least} {unit} (a smaller block holds too little to correlate), "
                f"or None for {otherwise}; got {value}"
            )


@dataclass(frozen=True)
class Params:
    """Every parameter of the registration algorithm, with its default.

    Parameters
    ----------
    block_size : int or None
        Edge of the square y/x blocks for local shifts, in pixels. ``None`` (default)
        measures the global shift only. 128-256 suits bead fiducials; a block should
        hold at least a few fiducials.
    block_size_z : int or None
        Block depth in planes. ``None`` (default) uses the whole depth of the
        (sub-)volume, which is what a typical 40-100-plane fiducial stack needs.
    hot_pixels : bool
        Detect camera hot pixels (bright in every plane at the same (y, x)) and
        replace them by the median of their 8 neighbours before correlating.
    hot_pixel_threshold : float
        A pixel is hot when its per-(y, x) minimum over z exceeds the 3x3 median of
        that minimum by this many robust standard deviations.
    background : bool
        Subtract a smooth per-plane background (lower envelope, then Gaussian).
    background_sigma : float
        Scale of that background in y/x pixels; larger than a fiducial. When no
        block gives a confident peak, or only marginal ones (sharpness below 1.5x
        ``min_sharpness``), as with dense texture such as a nuclear stain, the
        registration tries half this scale (never below 4) and keeps it when its
        peaks are sharper; the result's ``params`` and a warning then say so.
    z_taper, yx_taper : float
        Tukey window fraction in [0, 1] along z and along y/x applied before
        correlating; the window's autocorrelation is divided out of the peak
        samples, which removes the bias toward zero that limited z overlap causes.
    max_shift : (dz, dy, dx) or None
        Largest global shift searched, in pixels. ``None``: a third of the depth and
        a quarter of the y/x extent.
    max_local_shift : float
        Largest departure of a block's shift from the global shift, in pixels.
    refine_blocks : bool
        Give every block the refinement pass that the global shift gets (its
        residual measured again after shifting the moving block by the estimate).
        It roughly halves block errors on real stacks (e.g. 0.03 -> 0.01 px RMS in z
        on Bintu beads in 64-px blocks), and the block stage takes ~2.4x as long
        (60x2048x2048 with 256-px blocks: 4.7 -> 8.1 s in memory).
    min_score : float
        Blocks whose normalized correlation peak (in [-1, 1]) is below this are
        rejected. The score is diluted by noise and by planes without fiducials (a
        block of a few dim beads scores 0.01-0.03 with a clear peak), so it is a
        loose test; the sharpness is the main one.
    min_sharpness : float
        Blocks whose peak-to-sidelobe ratio is below this are rejected (noise-only
        blocks give 4-6, blocks with a few fiducials 15 and more).
    outlier_mad : float
        Blocks farther than this many robust standard deviations (MAD) from the
        median block shift, on any axis, are rejected.
    outlier_floor : float
        Departures below this many pixels are never called outliers (a smooth
        deformation is not an outlier).
    n_global_blocks : int
        How many of the richest blocks refine the coarse global shift at full
        resolution. Raise it (e.g. 16-32) for sparse fiducials or a strongly
        deforming sample.
    """

    block_size: int | None = None
    block_size_z: int | None = None
    hot_pixels: bool = True
    hot_pixel_threshold: float = 8.0
    background: bool = True
    background_sigma: float = 8.0
    z_taper: float = 0.8
    yx_taper: float = 0.25
    max_shift: tuple[float, float, float] | None = None
    max_local_shift: float = 5.0
    refine_blocks: bool = False
    min_score: float = 0.01
    min_sharpness: float = 8.0
    outlier_mad: float = 4.0
    outlier_floor: float = 1.0
    n_global_blocks: int = 8

    def __post_init__(self) -> None:
        for name in ("block_size", "block_size_z"):
            # positive only: a result saved with smaller blocks still loads; measuring with them
            # is refused by check_measurable_blocks
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value <= 0):
                raise FidregError(f"{name} must be a positive integer or None, got {value!r}")
            object.__setattr__(self, name, None if value is None else int(value))
        if not _is_int(self.n_global_blocks) or self.n_global_blocks < 1:
            raise FidregError(f"n_global_blocks must be an integer >= 1, got {self.n_global_blocks!r}")
        object.__setattr__(self, "n_global_blocks", int(self.n_global_blocks))
        for name in ("hot_pixels", "background", "refine_blocks"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise FidregError(f"{name} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))
        for name, (lo, hi, lo_open) in _RANGES.items():
            value = getattr(self, name)
            if not _is_real(value):
                raise FidregError(f"{name} must be a finite number, got {value!r}")
            if value < lo or (lo_open and value == lo) or value > hi:
                raise FidregError(f"{name} must be {_bounds(lo, hi, lo_open)}, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.max_shift is not None:
            ms = self.max_shift
            ok = isinstance(ms, (list, tuple, np.ndarray)) and len(ms) == 3 and all(_is_real(v) for v in ms)
            ms = tuple(float(v) for v in ms) if ok else ()
            if len(ms) != 3 or not all(v >= 0 for v in ms):
                raise FidregError(f"max_shift must be three finite numbers >= 0 (dz, dy, dx), got {self.max_shift!r}")
            object.__setattr__(self, "max_shift", ms)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        d = asdict(self)
        if d["max_shift"] is not None:
            d["max_shift"] = list(d["max_shift"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Params:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(d, dict):
            raise FidregError(f"parameters must be a mapping of names to values, got {type(d).__name__}")
        _check_names(d)
        d = dict(d)
        if d.get("max_shift") is not None:
            d["max_shift"] = tuple(d["max_shift"]) if isinstance(d["max_shift"], list) else d["max_shift"]
        return cls(**d)

    def with_(self, **changes: Any) -> Params:
        """A copy with some fields changed (validated again)."""
        _check_names(changes)
        return replace(self, **changes)


# name: (lowest, highest, lowest excluded)
_RANGES = {
    "hot_pixel_threshold": (0.0, math.inf, True),
    "background_sigma": (0.0, math.inf, True),
    "z_taper": (0.0, 1.0, False),
    "yx_taper": (0.0, 1.0, False),
    "max_local_shift": (0.0, math.inf, True),
    "min_score": (-1.0, 1.0, False),
    "min_sharpness": (0.0, math.inf, False),
    "outlier_mad": (0.0, math.inf, True),
    "outlier_floor": (0.0, math.inf, False),
}

NAMES = tuple(f.name for f in fields(Params))
"""The parameter names, in definition order."""


def _check_names(d: dict[str, Any]) -> None:
    unknown = set(d) - set(NAMES)
    if unknown:
        raise FidregError(f"unknown parameters: {', '.join(sorted(map(str, unknown)))}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _bounds(lo: float, hi: float, lo_open: bool) -> str:
    if hi == math.inf:
        return f"> {lo:g}" if lo_open else f">= {lo:g}"
    return f"in [{lo:g}, {hi:g}]"


def check_subvolume(sub: Any) -> Subvolume:
    """``sub`` as three (start, stop) int pairs for z, y, x, or a one-line error."""
    try:
        pairs = [tuple(r) for r in sub]
    except TypeError:
        pairs = []
    if not pairs or any(len(r) != 2 or not all(_is_int(v) for v in r) for r in pairs):
        raise FidregError(f"subvolume must be three (start, stop) pairs for z, y, x, got {sub!r}")
    ranges = tuple((int(a), int(b)) for a, b in pairs)
    if len(ranges) != 3:
        raise FidregError(f"subvolume must have three ranges (z, y, x), got {len(ranges)}")
    for axis, (a, b) in zip("zyx", ranges):
        if a < 0 or b <= a:
            raise FidregError(f"subvolume {axis} range {a}:{b} is empty or inverted (need 0 <= start < stop)")
    return ranges  # type: ignore[return-value]


def parse_subvolume(text: str) -> Subvolume:
    """Parse ``"z0:z1,y0:y1,x0:x1"`` (half-open pixel ranges; both bounds required)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise FidregError(f"subvolume {text!r}: expected z0:z1,y0:y1,x0:x1")
    ranges = []
    for axis, part in zip("zyx", parts):
        bounds = part.split(":")
        if len(bounds) != 2:
            raise FidregError(f"subvolume {text!r}: {axis} range {part!r} is not start:stop")
        try:
            ranges.append((int(bounds[0]), int(bounds[1])))
        except ValueError:
            raise FidregError(f"subvolume {text!r}: {axis} range {part!r} is not integers") from None
    return check_subvolume(ranges)
