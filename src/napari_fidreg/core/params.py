"""Registration parameters: one frozen, validated, serialisable object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import FidregError

Subvolume = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Params:
    """Every option of a registration, with its default.

    Parameters
    ----------
    block_size : int or None
        Edge of the square y/x blocks for local shifts, in pixels. ``None`` (default)
        measures the global shift only. 128-256 suits bead fiducials; a block should
        hold at least a few fiducials.
    block_size_z : int or None
        Block depth in planes. ``None`` (default) uses the whole depth of the
        (sub-)volume, which is what a typical 40-100-plane fiducial stack needs.
    subvolume : ((z0, z1), (y0, y1), (x0, x1)) or None
        Half-open index ranges of the reference stack that the computation is
        restricted to. ``None`` uses the whole common volume.
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
        Tukey window fraction along z and along y/x applied before correlating; the
        window's autocorrelation is divided out of the peak samples, which removes
        the bias toward zero that limited z overlap causes.
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
        Blocks whose normalized correlation peak is below this are rejected. The
        score is diluted by noise and by planes without fiducials (a block of a few
        dim beads scores 0.01-0.03 with a clear peak), so it is a loose test; the
        sharpness is the main one.
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
        resolution.
    workers : int
        Threads for FFTs and block work.
    fill_value : float
        Value of voxels that the correction moves in from outside the moving stack.
    """

    block_size: int | None = None
    block_size_z: int | None = None
    subvolume: Subvolume | None = None
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
    workers: int = 2
    fill_value: float = 0.0

    def __post_init__(self) -> None:
        for name in ("block_size", "block_size_z"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value <= 0):
                raise FidregError(f"{name} must be a positive integer, got {value!r}")
        if self.subvolume is not None:
            object.__setattr__(self, "subvolume", _check_subvolume(self.subvolume))
        for name in ("z_taper", "yx_taper"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise FidregError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("hot_pixel_threshold", "background_sigma", "max_local_shift"):
            if getattr(self, name) <= 0:
                raise FidregError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_shift is not None:
            ms = tuple(float(v) for v in self.max_shift)
            if len(ms) != 3 or min(ms) < 0:
                raise FidregError(f"max_shift must be three numbers >= 0, got {self.max_shift!r}")
            object.__setattr__(self, "max_shift", ms)
        if not _is_int(self.workers) or self.workers < 1:
            raise FidregError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not _is_int(self.n_global_blocks) or self.n_global_blocks < 1:
            raise FidregError(f"n_global_blocks must be >= 1, got {self.n_global_blocks!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        d = asdict(self)
        if d["subvolume"] is not None:
            d["subvolume"] = [list(r) for r in d["subvolume"]]
        if d["max_shift"] is not None:
            d["max_shift"] = list(d["max_shift"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Params:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise FidregError(f"unknown parameters: {', '.join(sorted(unknown))}")
        d = dict(d)
        if d.get("subvolume") is not None:
            d["subvolume"] = tuple(tuple(r) for r in d["subvolume"])
        if d.get("max_shift") is not None:
            d["max_shift"] = tuple(d["max_shift"])
        return cls(**d)

    def with_(self, **changes: Any) -> Params:
        """A copy with some fields changed (validated again)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise FidregError(f"unknown parameters: {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_subvolume(sub: Any) -> Subvolume:
    try:
        ranges = tuple((int(a), int(b)) for a, b in sub)
    except (TypeError, ValueError):
        raise FidregError(f"subvolume must be three (start, stop) pairs for z, y, x, got {sub!r}") from None
    if len(ranges) != 3:
        raise FidregError(f"subvolume must have three ranges (z, y, x), got {len(ranges)}")
    for axis, (a, b) in zip("zyx", ranges):
        if a < 0 or b <= a:
            raise FidregError(f"subvolume {axis} range {a}:{b} is empty or inverted (need 0 <= start < stop)")
    return ranges  # type: ignore[return-value]


def parse_subvolume(text: str) -> Subvolume:
    """Parse ``"z0:z1,y0:y1,x0:x1"`` (an empty bound means the stack's edge is not allowed)."""
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
    return _check_subvolume(ranges)
